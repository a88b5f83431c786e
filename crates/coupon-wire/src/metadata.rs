//! Metadata in JSON: an object of string values, `{"crm_id": "42", "channel": "email"}`, on books,
//! claims, redemptions and rollbacks. It is checked as the body is read, so a bad entry fails the
//! body with a sentence that names the key (`metadata: the value of "x" must be a string`).

use std::collections::BTreeMap;
use std::fmt;

use coupon_core::metadata::{MAX_KEYS, MAX_VALUE};
use coupon_core::{self as domain, CouponError};
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;

/// Checked metadata, as a request carries it and an answer shows it (`{}` when there is none).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Metadata(pub domain::Metadata);

impl From<domain::Metadata> for Metadata {
    fn from(m: domain::Metadata) -> Self {
        Metadata(m)
    }
}

impl From<Metadata> for domain::Metadata {
    fn from(m: Metadata) -> Self {
        m.0
    }
}

impl Serialize for Metadata {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.entries().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(Entries)
    }
}

/// Reads the object's entries one by one, so that a value that is not a string is reported with
/// its key rather than as serde's "invalid type" at a position.
struct Entries;

impl<'de> Visitor<'de> for Entries {
    type Value = Metadata;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("metadata: an object whose values are strings")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Metadata, A::Error> {
        let mut entries = BTreeMap::new();
        while let Some(key) = map.next_key::<String>()? {
            match map.next_value::<serde_json::Value>()? {
                serde_json::Value::String(value) => {
                    entries.insert(key, value);
                }
                _ => {
                    return Err(serde::de::Error::custom(format!(
                        "metadata: the value of {key:?} must be a string"
                    )))
                }
            }
        }
        domain::Metadata::new(entries)
            .map(Metadata)
            .map_err(|e: CouponError| serde::de::Error::custom(e))
    }
}

impl utoipa::PartialSchema for Metadata {
    fn schema() -> RefOr<Schema> {
        let value = ObjectBuilder::new()
            .schema_type(Type::String)
            .max_length(Some(MAX_VALUE));
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "The shop's own notes: string values, stored and returned as given.",
            ))
            .additional_properties(Some(value))
            .property_names(Some(super::text::metadata_key()))
            .max_properties(Some(MAX_KEYS))
            .into()
    }
}

impl utoipa::ToSchema for Metadata {}

#[cfg(test)]
mod tests {
    use super::*;
    use coupon_core::metadata::MAX_KEY;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<Metadata, String> {
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    #[test]
    fn reads_and_writes_an_object_of_strings() {
        let m = parse(json!({"crm_id": "42", "channel": ""})).unwrap();
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!({"channel": "", "crm_id": "42"})
        );
        assert_eq!(serde_json::to_value(Metadata::default()).unwrap(), json!({}));
    }

    #[test]
    fn names_the_key_at_fault() {
        assert_eq!(
            parse(json!({"ok": "1", "n": 5})).unwrap_err(),
            "metadata: the value of \"n\" must be a string"
        );
        let long_key = "k".repeat(MAX_KEY + 1);
        assert!(parse(json!({ long_key.clone(): "v" })).unwrap_err().contains(&long_key));
        let long_value = "v".repeat(MAX_VALUE + 1);
        assert!(parse(json!({ "note": long_value })).unwrap_err().contains("\"note\""));
        let many: serde_json::Map<_, _> = (0..=MAX_KEYS).map(|i| (format!("k{i}"), json!("v"))).collect();
        assert!(parse(many.into()).unwrap_err().starts_with("metadata: at most 50 keys"));
        assert!(parse(json!(["not", "an", "object"])).unwrap_err().contains("metadata"));
    }
}
