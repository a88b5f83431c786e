//! Code text: what a user types at checkout. Matched case-insensitively, so it is stored in one
//! canonical form: surrounding whitespace trimmed, upper case.

use crate::CouponError;

pub const MAX_CODE_LEN: usize = 64;

/// A code in canonical form. Only `parse` builds one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CodeText(String);

impl CodeText {
    /// Canonicalizes and checks a code: 1 to 64 characters of A-Z, 0-9, `-` and `_`.
    pub fn parse(raw: &str) -> Result<Self, CouponError> {
        let code = raw.trim().to_ascii_uppercase();
        if code.is_empty() || code.len() > MAX_CODE_LEN {
            return Err(CouponError::invalid(
                "code",
                format!("a code has 1 to {MAX_CODE_LEN} characters"),
            ));
        }
        if !code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(CouponError::invalid(
                "code",
                "a code may contain only letters, digits, '-' and '_'",
            ));
        }
        Ok(CodeText(code))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::fmt::Display for CodeText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn trims_and_upper_cases() {
        assert_eq!(CodeText::parse("  summer-10 ").unwrap().as_str(), "SUMMER-10");
    }

    #[test]
    fn rejects_empty_long_and_odd_characters() {
        assert!(CodeText::parse("   ").is_err());
        assert!(CodeText::parse(&"A".repeat(65)).is_err());
        assert!(CodeText::parse("SUM MER").is_err());
        assert!(CodeText::parse("ÄBC").is_err());
    }

    proptest! {
        #[test]
        fn parsing_is_idempotent_and_case_blind(raw in "[ a-zA-Z0-9_-]{0,70}") {
            match CodeText::parse(&raw) {
                Ok(code) => {
                    prop_assert_eq!(CodeText::parse(code.as_str()).unwrap(), code.clone());
                    prop_assert_eq!(CodeText::parse(&raw.to_lowercase()).unwrap(), code);
                }
                Err(_) => prop_assert!(CodeText::parse(&raw.to_lowercase()).is_err()),
            }
        }
    }
}
