//! Verifying bearer tokens: HS256 with coupond's own secret, or RS256 / ES256 with an identity
//! provider's public keys (one PEM key, or a JWKS key set). The algorithm is pinned by the
//! configuration and a token whose header names another is refused: that closes the algorithm
//! confusion attacks (`alg: none`, or HS256 "signed" with the provider's public key as the secret).
//! `exp` and `nbf` are checked against the injected clock, like every other time rule.

use std::fmt;
use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{decode, decode_header, encode, Algorithm, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Role, RoleNames, TokenKeys};

/// The claims `coupond token` signs with the HS256 secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    /// Seconds since the epoch.
    pub exp: i64,
}

/// The signing secret. Its `Debug` never shows it.
#[derive(Clone)]
pub struct JwtSecret(pub(super) Vec<u8>);

impl JwtSecret {
    pub fn new(secret: impl Into<Vec<u8>>) -> Self {
        JwtSecret(secret.into())
    }

    pub fn sign(&self, claims: &Claims) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(&self.0),
        )
        .expect("HS256 signing with an in-memory key cannot fail")
    }
}

impl fmt::Debug for JwtSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JwtSecret(<redacted>)")
    }
}

/// The one algorithm tokens must be signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenAlgorithm {
    Hs256,
    Rs256,
    Es256,
}

impl TokenAlgorithm {
    pub(super) fn jwt(self) -> Algorithm {
        match self {
            TokenAlgorithm::Hs256 => Algorithm::HS256,
            TokenAlgorithm::Rs256 => Algorithm::RS256,
            TokenAlgorithm::Es256 => Algorithm::ES256,
        }
    }
}

impl fmt::Display for TokenAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.jwt())
    }
}

/// What a verified token must also say, and how much clock skew is forgiven.
#[derive(Debug, Clone, Default)]
pub struct TokenRules {
    /// When set, `iss` is required and must be this.
    pub issuer: Option<String>,
    /// When set, `aud` is required and must name this. When unset, a token that names any
    /// audience is refused (RFC 7519 4.1.3: it is meant for someone else).
    pub audience: Option<String>,
    /// Forgiven on `exp` and `nbf`, in seconds.
    pub leeway_seconds: u32,
    pub roles: RoleNames,
}

/// How the server verifies tokens. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Tokens(Arc<Verifier>);

#[derive(Debug)]
struct Verifier {
    keys: TokenKeys,
    validation: Validation,
    leeway_millis: i64,
    roles: RoleNames,
}

/// What a verified token says.
pub(crate) struct Verified {
    pub sub: String,
    pub role: Role,
}

// Why a token is refused: short, fixed sentences of ours, never the token's contents.
const NOT_VALID: &str = "the token is not valid";
const WRONG_ALGORITHM: &str = "the token is not signed with the expected algorithm";
const UNKNOWN_KEY: &str = "the token's key is not known";
const BAD_SIGNATURE: &str = "the token's signature is not valid";
const EXPIRED: &str = "the token has expired";
const NOT_YET_VALID: &str = "the token is not valid yet";
const BAD_ISSUER: &str = "the token's issuer is not accepted";
const BAD_AUDIENCE: &str = "the token's audience is not accepted";
/// A valid token that names none of coupond's role names is refused, not taken as a user: a
/// provider issues tokens for many applications and purposes, and coupond grants only what its
/// configuration maps. To admit every customer, map a name all their tokens carry (`openid`).
const NO_ROLE: &str = "the token grants no coupond role";

impl Tokens {
    pub fn new(keys: TokenKeys, rules: TokenRules) -> Tokens {
        let mut validation = Validation::new(keys.algorithm().jwt());
        // Time is checked against the service's clock in `check`, not the system's.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let mut required = vec!["exp", "sub"];
        if let Some(issuer) = &rules.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        if let Some(audience) = &rules.audience {
            validation.set_audience(&[audience]);
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        Tokens(Arc::new(Verifier {
            keys,
            validation,
            leeway_millis: i64::from(rules.leeway_seconds) * 1000,
            roles: rules.roles,
        }))
    }

    /// HS256 with `secret`, no leeway, the role in `role`: the tokens `coupond token` prints.
    pub fn hs256(secret: JwtSecret) -> Tokens {
        Tokens::new(TokenKeys::hs256(&secret), TokenRules::default())
    }

    pub fn algorithm(&self) -> TokenAlgorithm {
        self.0.keys.algorithm()
    }

    /// The token's subject and role, or why it is refused.
    pub(crate) fn verify(&self, token: &str, now_millis: i64) -> Result<Verified, &'static str> {
        let v = &self.0;
        // Unknown algorithms (`none` among them) fail to parse here.
        let header = decode_header(token).map_err(|_| NOT_VALID)?;
        if header.alg != v.keys.algorithm().jwt() {
            return Err(WRONG_ALGORITHM);
        }
        let keys = v.keys.for_kid(header.kid.as_deref());
        if keys.is_empty() {
            return Err(UNKNOWN_KEY);
        }
        for key in keys {
            match decode::<Map<String, Value>>(token, key, &v.validation) {
                Ok(data) => return self.check(&data.claims, now_millis),
                Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => continue,
                Err(e) => return Err(refusal(e.kind())),
            }
        }
        Err(BAD_SIGNATURE)
    }

    fn check(&self, claims: &Map<String, Value>, now: i64) -> Result<Verified, &'static str> {
        let leeway = self.0.leeway_millis;
        let millis = |claim: &str| claims.get(claim).map(|v| v.as_f64().map(|s| (s * 1000.0) as i64));
        match millis("exp") {
            Some(Some(exp)) if exp.saturating_add(leeway) > now => {}
            Some(Some(_)) => return Err(EXPIRED),
            _ => return Err(NOT_VALID),
        }
        match millis("nbf") {
            None => {}
            Some(Some(nbf)) if nbf.saturating_sub(leeway) <= now => {}
            Some(Some(_)) => return Err(NOT_YET_VALID),
            Some(None) => return Err(NOT_VALID),
        }
        let sub = claims.get("sub").and_then(Value::as_str).ok_or(NOT_VALID)?;
        let role = self.0.roles.role_of(claims).ok_or(NO_ROLE)?;
        Ok(Verified {
            sub: sub.to_owned(),
            role,
        })
    }
}

fn refusal(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidSignature | ErrorKind::Crypto(_) => BAD_SIGNATURE,
        ErrorKind::InvalidAlgorithm => WRONG_ALGORITHM,
        ErrorKind::InvalidIssuer => BAD_ISSUER,
        ErrorKind::InvalidAudience => BAD_AUDIENCE,
        ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
            "exp" => "the token has no expiry",
            "sub" => "the token has no subject",
            "iss" => "the token has no issuer",
            "aud" => "the token has no audience",
            _ => NOT_VALID,
        },
        _ => NOT_VALID,
    }
}
