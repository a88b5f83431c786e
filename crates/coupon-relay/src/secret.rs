//! A webhook endpoint's signing secret.

use std::fmt;

use rand::{CryptoRng, RngCore};

/// What every generated secret starts with, so one pasted into a log or a ticket is recognisable
/// (and a secret scanner can find it).
pub const SECRET_PREFIX: &str = "whsec_";

/// A signing secret. The HMAC key is the whole text, prefix included, so a receiver uses the string
/// it was shown as is and never has to decode anything.
///
/// `Debug` is redacted and there is no `Display`: the only way to the text is [`Secret::expose`],
/// which a caller writes once (to the database, or to the admin who created the endpoint).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A fresh secret: `whsec_` and 32 random bytes in lowercase hex. 256 bits is HMAC-SHA256's
    /// full strength; hex survives any copy and paste, any config format and any shell.
    pub fn generate() -> Self {
        Self::generate_with(&mut rand::rng())
    }

    /// [`Secret::generate`] from a given generator; it must be a cryptographic one.
    pub fn generate_with<R: CryptoRng + RngCore + ?Sized>(rng: &mut R) -> Self {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        let mut text = String::with_capacity(SECRET_PREFIX.len() + 64);
        text.push_str(SECRET_PREFIX);
        crate::signature::push_hex(&mut text, &bytes);
        Self(text)
    }

    /// A secret read back from storage. Any text is accepted: endpoints created before a format
    /// change keep working.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The secret's text, to store it or to show it once to whoever created the endpoint.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_have_the_prefix_and_64_hex_digits_and_differ() {
        let a = Secret::generate();
        let b = Secret::generate();
        let hex = a.expose().strip_prefix(SECRET_PREFIX).unwrap();
        assert_eq!(hex.len(), 64);
        assert!(hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')));
        assert_ne!(a, b);
    }

    #[test]
    fn debug_never_shows_the_text() {
        let secret = Secret::new("whsec_topsecret");
        assert!(!format!("{secret:?}").contains("topsecret"));
    }
}
