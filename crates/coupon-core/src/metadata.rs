//! Metadata: the shop's own key-value notes on a book, a claim, a redemption or a rollback
//! (a CRM id, a campaign channel, a refund ticket), stored and returned as given, never read by
//! the rules. Keys and values are strings, as in Stripe's metadata.

use std::collections::BTreeMap;

use crate::CouponError;

pub const MAX_KEYS: usize = 50;
/// The longest key, in characters.
pub const MAX_KEY: usize = 40;
/// The longest value, in characters.
pub const MAX_VALUE: usize = 500;

/// Checked metadata: at most 50 keys of 1 to 40 characters, values of at most 500. Only `new`
/// builds one with entries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Metadata(BTreeMap<String, String>);

impl Metadata {
    /// Refused as `invalid_request` on `metadata`, naming the key at fault.
    pub fn new(entries: BTreeMap<String, String>) -> Result<Self, CouponError> {
        if entries.len() > MAX_KEYS {
            return Err(CouponError::invalid(
                "metadata",
                format!("at most {MAX_KEYS} keys, not {}", entries.len()),
            ));
        }
        for (key, value) in &entries {
            let len = key.chars().count();
            if len == 0 || len > MAX_KEY || key.chars().any(char::is_control) {
                return Err(CouponError::invalid(
                    "metadata",
                    format!("key {key:?} must have 1 to {MAX_KEY} printable characters"),
                ));
            }
            if value.chars().count() > MAX_VALUE {
                return Err(CouponError::invalid(
                    "metadata",
                    format!("the value of {key:?} has more than {MAX_VALUE} characters"),
                ));
            }
        }
        Ok(Metadata(entries))
    }

    pub fn entries(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    pub fn into_entries(self) -> BTreeMap<String, String> {
        self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(pairs: &[(&str, &str)]) -> Result<Metadata, CouponError> {
        Metadata::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    fn detail(e: CouponError) -> String {
        match e {
            CouponError::Invalid(i) => {
                assert_eq!(i.field, "metadata");
                i.message
            }
            other => panic!("not invalid input: {other:?}"),
        }
    }

    #[test]
    fn takes_what_fits_and_names_the_key_at_fault() {
        assert!(meta(&[("crm_id", "42"), ("channel", "")]).is_ok());
        let long_key = "k".repeat(MAX_KEY + 1);
        assert!(detail(meta(&[(&long_key, "v")]).unwrap_err()).contains(&long_key));
        assert!(meta(&[(&"k".repeat(MAX_KEY), "v")]).is_ok());
        let long_value = "v".repeat(MAX_VALUE + 1);
        assert!(detail(meta(&[("note", &long_value)]).unwrap_err()).contains("\"note\""));
        assert!(meta(&[("note", &"v".repeat(MAX_VALUE))]).is_ok());
        assert!(detail(meta(&[("", "v")]).unwrap_err()).contains("key \"\""));
        assert!(meta(&[("a\nb", "v")]).is_err());
    }

    #[test]
    fn holds_at_most_fifty_keys() {
        let keys: Vec<String> = (0..=MAX_KEYS).map(|i| format!("k{i}")).collect();
        let pairs: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), "v")).collect();
        assert!(meta(&pairs[..MAX_KEYS]).is_ok());
        assert!(detail(meta(&pairs).unwrap_err()).contains("at most 50 keys"));
    }
}
