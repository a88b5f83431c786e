//! The keys tokens are verified with: coupond's HS256 secret, or an identity provider's public keys
//! for RS256 or ES256, from one PEM key or an RFC 7517 key set (JWKS). Loading refuses private keys
//! outright, and no error message carries key material.

use std::fmt;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::DecodingKey;
use serde_json::Value;

use super::{JwtSecret, TokenAlgorithm};

/// Why keys could not be loaded. No message carries key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("HS256 tokens are verified with the shared secret, not with public keys")]
    Symmetric,
    #[error("this is a private key: give the public key only")]
    Private,
    #[error("not a {0} public key or certificate in PEM")]
    NotPem(TokenAlgorithm),
    #[error("not JSON (line {line}, column {column})")]
    NotJson { line: usize, column: usize },
    #[error("not a JWKS document: it has no `keys` array")]
    NotJwks,
    #[error("key {0} of the set holds private parameters: publish the public keys only")]
    PrivateJwk(usize),
    #[error("key {0} of the set is not a valid {1} key")]
    BadJwk(usize, TokenAlgorithm),
    #[error("the set holds no {0} signing key")]
    NoKey(TokenAlgorithm),
}

/// The keys tokens are verified with, all for one algorithm.
#[derive(Clone)]
pub struct TokenKeys {
    algorithm: TokenAlgorithm,
    keys: Vec<(Option<String>, DecodingKey)>,
}

impl TokenKeys {
    pub fn hs256(secret: &JwtSecret) -> TokenKeys {
        TokenKeys {
            algorithm: TokenAlgorithm::Hs256,
            keys: vec![(None, DecodingKey::from_secret(&secret.0))],
        }
    }

    /// One public key (`BEGIN PUBLIC KEY`, `BEGIN RSA PUBLIC KEY`) or certificate, in PEM.
    pub fn from_pem(algorithm: TokenAlgorithm, pem: &[u8]) -> Result<TokenKeys, KeyError> {
        if pem.windows(b"PRIVATE KEY".len()).any(|w| w == b"PRIVATE KEY") {
            return Err(KeyError::Private);
        }
        let key = match algorithm {
            TokenAlgorithm::Hs256 => return Err(KeyError::Symmetric),
            TokenAlgorithm::Rs256 => DecodingKey::from_rsa_pem(pem),
            TokenAlgorithm::Es256 => DecodingKey::from_ec_pem(pem),
        }
        .map_err(|_| KeyError::NotPem(algorithm))?;
        Ok(TokenKeys {
            algorithm,
            keys: vec![(None, key)],
        })
    }

    /// The signing keys for `algorithm` in an RFC 7517 key set. Keys for other algorithms or for
    /// encryption are skipped, as are entries this library cannot read: providers publish those
    /// side by side, and refusing the whole set for them would break at the next rotation.
    pub fn from_jwks(algorithm: TokenAlgorithm, json: &[u8]) -> Result<TokenKeys, KeyError> {
        if algorithm == TokenAlgorithm::Hs256 {
            return Err(KeyError::Symmetric);
        }
        let doc: Value = serde_json::from_slice(json).map_err(|e| KeyError::NotJson {
            line: e.line(),
            column: e.column(),
        })?;
        let entries = doc.get("keys").and_then(Value::as_array).ok_or(KeyError::NotJwks)?;
        let mut keys = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            // A private key in a file meant to be public has leaked: say so rather than use it.
            if entry.get("d").is_some() {
                return Err(KeyError::PrivateJwk(i));
            }
            let Ok(jwk) = serde_json::from_value::<Jwk>(entry.clone()) else {
                continue;
            };
            if !signs_with(&jwk, algorithm) {
                continue;
            }
            let key = DecodingKey::from_jwk(&jwk).map_err(|_| KeyError::BadJwk(i, algorithm))?;
            keys.push((jwk.common.key_id.clone(), key));
        }
        if keys.is_empty() {
            return Err(KeyError::NoKey(algorithm));
        }
        Ok(TokenKeys { algorithm, keys })
    }

    pub fn algorithm(&self) -> TokenAlgorithm {
        self.algorithm
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys a token's `kid` selects: those with that id, else those without one (a single PEM
    /// key, a set whose keys are unnamed). A token without a `kid` tries every key.
    pub(super) fn for_kid(&self, kid: Option<&str>) -> Vec<&DecodingKey> {
        let with = |id: Option<&str>| -> Vec<&DecodingKey> {
            self.keys
                .iter()
                .filter(|(key_id, _)| key_id.as_deref() == id)
                .map(|(_, key)| key)
                .collect()
        };
        match kid {
            None => self.keys.iter().map(|(_, key)| key).collect(),
            Some(kid) => match with(Some(kid)) {
                named if !named.is_empty() => named,
                _ => with(None),
            },
        }
    }
}

/// Whether a key set entry is a signing key for `algorithm`.
fn signs_with(jwk: &Jwk, algorithm: TokenAlgorithm) -> bool {
    let (kind, named) = match (&jwk.algorithm, algorithm) {
        (AlgorithmParameters::RSA(_), TokenAlgorithm::Rs256) => (true, KeyAlgorithm::RS256),
        (AlgorithmParameters::EllipticCurve(p), TokenAlgorithm::Es256) => {
            (p.curve == EllipticCurve::P256, KeyAlgorithm::ES256)
        }
        _ => return false,
    };
    let alg = jwk.common.key_algorithm.is_none_or(|a| a == named);
    let usage = jwk
        .common
        .public_key_use
        .as_ref()
        .is_none_or(|u| *u == PublicKeyUse::Signature);
    kind && alg && usage
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenKeys")
            .field("algorithm", &self.algorithm)
            .field("keys", &self.keys.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RS256_PUBLIC: &[u8] = include_bytes!("../../tests/fixtures/rs256-public.pem");
    const RS256_PRIVATE: &[u8] = include_bytes!("../../tests/fixtures/rs256-private.pem");
    const ES256_PUBLIC: &[u8] = include_bytes!("../../tests/fixtures/es256-public.pem");
    const JWKS: &[u8] = include_bytes!("../../tests/fixtures/jwks.json");

    fn refusal(loaded: Result<TokenKeys, KeyError>) -> String {
        loaded.map(|_| ()).unwrap_err().to_string()
    }

    #[test]
    fn loads_public_keys_for_their_algorithm() {
        assert_eq!(
            TokenKeys::from_pem(TokenAlgorithm::Rs256, RS256_PUBLIC).unwrap().len(),
            1
        );
        assert_eq!(
            TokenKeys::from_pem(TokenAlgorithm::Es256, ES256_PUBLIC).unwrap().len(),
            1
        );
        assert_eq!(TokenKeys::from_jwks(TokenAlgorithm::Rs256, JWKS).unwrap().len(), 2);
        assert_eq!(TokenKeys::from_jwks(TokenAlgorithm::Es256, JWKS).unwrap().len(), 1);
    }

    #[test]
    fn refuses_private_keys_and_other_things() {
        let private = refusal(TokenKeys::from_pem(TokenAlgorithm::Rs256, RS256_PRIVATE));
        assert_eq!(private, "this is a private key: give the public key only");
        assert!(!private.contains("MII"), "no key material in the message");
        assert_eq!(
            refusal(TokenKeys::from_pem(TokenAlgorithm::Rs256, b"hello")),
            "not a RS256 public key or certificate in PEM"
        );
        assert!(TokenKeys::from_pem(TokenAlgorithm::Hs256, RS256_PUBLIC).is_err());
        assert_eq!(
            refusal(TokenKeys::from_jwks(TokenAlgorithm::Rs256, b"{\"keys\": [")),
            "not JSON (line 1, column 10)"
        );
        assert!(TokenKeys::from_jwks(TokenAlgorithm::Rs256, b"{}").is_err());
        let leaked = br#"{"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "d": "c2VjcmV0"}]}"#;
        let message = refusal(TokenKeys::from_jwks(TokenAlgorithm::Es256, leaked));
        assert_eq!(
            message,
            "key 0 of the set holds private parameters: publish the public keys only"
        );
        // Keys for encryption, other algorithms or unknown types are skipped, not fatal.
        let others = br#"{"keys": [{"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"},
            {"kty": "RSA", "alg": "PS512", "n": "AQAB", "e": "AQAB"}, {"kty": "XYZ"}]}"#;
        assert_eq!(
            refusal(TokenKeys::from_jwks(TokenAlgorithm::Rs256, others)),
            "the set holds no RS256 signing key"
        );
    }
}
