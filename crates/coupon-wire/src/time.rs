//! Instants as the API writes and reads them: RFC 3339, in UTC with milliseconds on the way out
//! (`2026-06-01T12:00:00.000Z`), any offset on the way in.
//!
//! The text form is the API's choice, so it lives here rather than as serde impls on the domain's
//! `Timestamp`, which the store keeps as integer milliseconds.

use coupon_core as domain;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::{KnownFormat, RefOr, SchemaFormat};

/// An instant in a request or an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp(pub domain::Timestamp);

impl From<domain::Timestamp> for Timestamp {
    fn from(t: domain::Timestamp) -> Self {
        Timestamp(t)
    }
}

impl From<Timestamp> for domain::Timestamp {
    fn from(t: Timestamp) -> Self {
        t.0
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        domain::Timestamp::parse_rfc3339(&s)
            .map(Timestamp)
            .ok_or_else(|| serde::de::Error::custom("expected an RFC 3339 timestamp"))
    }
}

impl utoipa::PartialSchema for Timestamp {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .into()
    }
}

impl utoipa::ToSchema for Timestamp {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_utc_with_millis_and_reads_any_offset() {
        let t: Timestamp = serde_json::from_str("\"2026-11-23T10:00:00.123+01:00\"").unwrap();
        assert_eq!(
            t.0,
            domain::Timestamp::parse_rfc3339("2026-11-23T09:00:00.123Z").unwrap()
        );
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"2026-11-23T09:00:00.123Z\"");
        let e = serde_json::from_str::<Timestamp>("\"yesterday\"").unwrap_err();
        assert!(e.to_string().contains("expected an RFC 3339 timestamp"), "{e}");
    }
}
