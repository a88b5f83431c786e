//! Users as requests name them: the subject of a token, or the `user_id` an admin or a service acts
//! for. coupond keeps no user table; a user id is whatever the issuer of tokens calls the user.

use crate::CouponError;

/// The longest user id accepted, in characters, from a token or a request.
pub const MAX_USER_ID: usize = 200;

/// A user id that has been checked. Only `parse` builds one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(String);

impl UserId {
    /// 1 to 200 characters with no control characters (they would end up in logs and URLs).
    /// Characters, not bytes, as JSON Schema's `maxLength` counts them: what the OpenAPI document
    /// allows is accepted.
    pub fn parse(raw: impl Into<String>) -> Result<Self, CouponError> {
        let id = raw.into();
        if id.is_empty() || id.chars().count() > MAX_USER_ID || id.chars().any(char::is_control) {
            return Err(CouponError::invalid(
                "user_id",
                format!("must have 1 to {MAX_USER_ID} printable characters"),
            ));
        }
        Ok(UserId(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn takes_ids_as_given() {
        assert_eq!(UserId::parse(" Alice ").unwrap().as_str(), " Alice ");
        assert_eq!(UserId::parse("x".repeat(200)).unwrap().into_string().len(), 200);
    }

    #[test]
    fn refuses_empty_long_and_control_characters() {
        for bad in [String::new(), "x".repeat(201), "al\nice".into(), "\u{7f}".into()] {
            let e = UserId::parse(bad.clone()).unwrap_err();
            assert!(
                matches!(&e, CouponError::Invalid(i) if i.field == "user_id"),
                "{bad:?}: {e}"
            );
        }
        // The limit is in characters: 200 two-byte ones are as many as 200 ASCII ones.
        assert!(UserId::parse("é".repeat(200)).is_ok());
        assert!(UserId::parse("é".repeat(201)).is_err());
    }

    proptest! {
        #[test]
        fn accepts_exactly_short_printable_ids(raw in "\\PC{0,120}|[\\x00-\\x7f]{0,210}") {
            let expected = !raw.is_empty() && raw.chars().count() <= MAX_USER_ID && !raw.chars().any(char::is_control);
            match UserId::parse(raw.clone()) {
                Ok(id) => {
                    prop_assert!(expected);
                    prop_assert_eq!(id.as_str(), raw.as_str());
                }
                Err(_) => prop_assert!(!expected),
            }
        }
    }
}
