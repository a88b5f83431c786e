//! The bodies that describe a book: a new one (`POST /coupons`) and a change (`PATCH
//! /coupons/{book_id}`). They carry the JSON's defaults and its `null`s; `coupon_core`'s draft
//! checks them.

use coupon_core as domain;
use serde::{Deserialize, Deserializer};
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::ToSchema;

use super::{discount, text, BookStatus, CodeMode, Discount, Metadata, Timestamp};

/// `POST /coupons`: a book as an admin describes it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBook {
    /// Trimmed; 1 to 200 characters.
    #[schema(schema_with = text::name)]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 5000)]
    pub description: String,
    #[serde(default)]
    #[schema(schema_with = text::category)]
    pub category: Option<String>,
    #[serde(default)]
    #[schema(schema_with = text::tags)]
    pub tags: Vec<String>,
    // Checked as it is read, so that a bad discount fails the body, as it always has.
    #[serde(deserialize_with = "discount::checked")]
    #[schema(value_type = Discount)]
    pub discount: domain::Discount,
    #[serde(default)]
    pub starts_at: Option<Timestamp>,
    /// Not before `starts_at` (400 `invalid_request` naming `expires_at`).
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
    #[serde(default)]
    pub status: Option<BookStatus>,
    #[serde(default)]
    pub code_mode: CodeMode,
    /// The shared code (shared mode only).
    #[serde(default)]
    #[schema(schema_with = text::shared_code)]
    pub code: Option<String>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 10_000_000)]
    pub total_codes: Option<i64>,
    /// Codes are generated from it at creation (unique mode only).
    #[serde(default)]
    #[schema(schema_with = text::code_pattern)]
    pub code_pattern: Option<String>,
    /// `book.low_stock` is announced once when the codes left to claim fall to this many, and
    /// again only after they rose above it. None by default.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 10_000_000)]
    pub low_stock_threshold: Option<i64>,
    /// Default 1; null for unlimited.
    #[serde(default, deserialize_with = "explicit")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 1_000_000)]
    pub max_codes_per_user: Option<Option<i64>>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub max_redemptions_per_user: Option<i64>,
    /// Default 1.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub max_redemptions_per_code: Option<i64>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub claims_per_user_per_day: Option<i64>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31_622_400)]
    pub claim_ttl_seconds: Option<i64>,
    /// Default 300.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 86_400)]
    pub lock_ttl_seconds: Option<i64>,
    /// The shop's notes on the book; none by default.
    #[serde(default)]
    pub metadata: Option<Metadata>,
}

impl NewBook {
    /// What the fields of a new book require of each other, for the document: a shared book
    /// names its code and `total_codes` and has no pattern; a unique one has no code, and
    /// `total_codes` when it has a pattern. (`into_draft` checks the same.)
    pub fn mode_rules() -> Schema {
        let null = || ObjectBuilder::new().schema_type(Type::Null);
        let mode = |m: &str| ObjectBuilder::new().schema_type(Type::String).enum_values(Some([m]));
        let shared = ObjectBuilder::new()
            .title(Some("shared"))
            .property("code_mode", mode("shared"))
            .property("code", ObjectBuilder::new().schema_type(Type::String))
            .property("total_codes", ObjectBuilder::new().schema_type(Type::Integer))
            .property("code_pattern", null())
            .required("code_mode")
            .required("code")
            .required("total_codes");
        let unique = || {
            ObjectBuilder::new()
                .property("code_mode", mode("unique"))
                .property("code", null())
        };
        let listed = unique().title(Some("unique")).property("code_pattern", null());
        let drawn = unique()
            .title(Some("unique, drawn from a pattern"))
            .property("code_pattern", ObjectBuilder::new().schema_type(Type::String))
            .property("total_codes", ObjectBuilder::new().schema_type(Type::Integer))
            .required("code_pattern")
            .required("total_codes");
        OneOfBuilder::new().item(listed).item(drawn).item(shared).into()
    }
}

/// Tells an absent field (outer `None`) from an explicit `null` (`Some(None)`).
fn explicit<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

impl From<NewBook> for domain::NewBook {
    /// An absent field keeps the domain's default; an explicit `null` is "unlimited" where a
    /// limit may be.
    fn from(w: NewBook) -> Self {
        let mut new = domain::NewBook::new(w.name, w.discount);
        new.description = w.description;
        new.category = w.category;
        new.tags = w.tags;
        new.starts_at = w.starts_at.map(Into::into);
        new.expires_at = w.expires_at.map(Into::into);
        if let Some(status) = w.status {
            new.status = status.into();
        }
        new.code_mode = w.code_mode.into();
        new.code = w.code;
        new.total_codes = w.total_codes;
        new.code_pattern = w.code_pattern;
        new.low_stock_threshold = w.low_stock_threshold;
        let policies = &mut new.policies;
        if let Some(max) = w.max_codes_per_user {
            policies.max_codes_per_user = max;
        }
        policies.max_redemptions_per_user = w.max_redemptions_per_user;
        if let Some(max) = w.max_redemptions_per_code {
            policies.max_redemptions_per_code = max;
        }
        policies.claims_per_user_per_day = w.claims_per_user_per_day;
        policies.claim_ttl_seconds = w.claim_ttl_seconds;
        if let Some(ttl) = w.lock_ttl_seconds {
            policies.lock_ttl_seconds = ttl;
        }
        new.metadata = w.metadata.map(Into::into).unwrap_or_default();
        new
    }
}

/// `PATCH /coupons/{id}`: the fields an admin may change after creation.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BookPatch {
    #[serde(default)]
    #[schema(schema_with = text::new_name)]
    pub name: Option<String>,
    #[serde(default)]
    #[schema(max_length = 5000)]
    pub description: Option<String>,
    /// An explicit null removes the end of the window. Not before the book's `starts_at`.
    #[serde(default, deserialize_with = "explicit")]
    #[schema(value_type = Option<Timestamp>)]
    pub expires_at: Option<Option<Timestamp>>,
    #[serde(default)]
    pub status: Option<BookStatus>,
    /// Replaces the book's metadata; `{}` or an explicit null removes it all.
    #[serde(default, deserialize_with = "explicit")]
    #[schema(value_type = Option<Metadata>)]
    pub metadata: Option<Option<Metadata>>,
    /// An explicit null turns low-stock alerts off.
    #[serde(default, deserialize_with = "explicit")]
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 10_000_000)]
    pub low_stock_threshold: Option<Option<i64>>,
}

impl From<BookPatch> for domain::BookPatch {
    fn from(w: BookPatch) -> Self {
        domain::BookPatch {
            name: w.name,
            description: w.description,
            expires_at: w.expires_at.map(|e| e.map(Into::into)),
            status: w.status.map(Into::into),
            metadata: w.metadata.map(|m| m.map(Into::into).unwrap_or_default()),
            low_stock_threshold: w.low_stock_threshold,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coupon_core::{BookDraft, CouponError, Timestamp};
    use serde_json::json;
    use uuid::Uuid;

    fn draft(v: serde_json::Value) -> Result<BookDraft, CouponError> {
        let new: NewBook = serde_json::from_value(v).expect("well-formed");
        domain::NewBook::from(new).into_draft(Uuid::nil(), Timestamp::from_millis(0))
    }

    #[test]
    fn applies_defaults_and_tells_null_from_absent() {
        let b = draft(json!({"name": "Summer", "discount": {"type": "percentage", "value": 10}}))
            .unwrap()
            .book;
        assert_eq!(b.policies.max_codes_per_user, Some(1));
        assert_eq!(b.policies.lock_ttl_seconds, 300);
        assert_eq!(b.policies.max_redemptions_per_code, 1);
        let b =
            draft(json!({"name": "S", "discount": {"type": "percentage", "value": 10}, "max_codes_per_user": null}))
                .unwrap()
                .book;
        assert_eq!(b.policies.max_codes_per_user, None);
    }

    #[test]
    fn checks_modes_and_patterns() {
        let d = json!({"type": "fixed_amount", "value": 500});
        assert!(draft(json!({"name": "S", "discount": d, "code_mode": "shared", "total_codes": 5})).is_err());
        let shared =
            draft(json!({"name": "S", "discount": d, "code_mode": "shared", "code": " welcome10 ", "total_codes": 5}))
                .unwrap();
        assert_eq!(shared.book.code.as_deref(), Some("WELCOME10"));
        assert!(
            draft(json!({"name": "S", "discount": d, "code_pattern": "A-####"})).is_err(),
            "pattern without total"
        );
        assert!(
            draft(json!({"name": "S", "discount": d, "code_pattern": "A-###", "total_codes": 10})).is_err(),
            "space too small"
        );
        assert!(draft(json!({"name": "S", "discount": d, "code_pattern": "A-#####", "total_codes": 10})).is_ok());
        assert!(draft(json!({"name": "", "discount": d})).is_err());
        assert!(draft(json!({"name": "S", "discount": d, "max_codes_per_user": 0})).is_err());
        assert!(draft(json!({"name": "S", "discount": d, "starts_at": "2026-02-01T00:00:00Z", "expires_at": "2026-01-01T00:00:00Z"})).is_err());
    }

    #[test]
    fn every_field_reaches_the_domain() {
        let new: NewBook = serde_json::from_value(json!({
            "name": "S", "description": "D", "category": "c", "tags": ["t"],
            "discount": {"type": "fixed_amount", "value": 500, "currency": "EUR", "max_discount": 400, "min_order_amount": 1000},
            "starts_at": "2026-01-01T00:00:00Z", "expires_at": "2026-02-01T00:00:00Z", "status": "paused",
            "code_mode": "shared", "code": "X", "total_codes": 7, "max_codes_per_user": 2,
            "max_redemptions_per_user": 3, "max_redemptions_per_code": 4, "claims_per_user_per_day": 5,
            "claim_ttl_seconds": 6, "lock_ttl_seconds": 7,
        }))
        .unwrap();
        let new = domain::NewBook::from(new);
        assert_eq!(
            (new.description.as_str(), new.category.as_deref(), new.tags.as_slice()),
            ("D", Some("c"), ["t".to_owned()].as_slice())
        );
        assert_eq!(new.discount.currency, "EUR");
        assert_eq!(
            (new.discount.max_discount, new.discount.min_order_amount),
            (Some(400), Some(1000))
        );
        assert_eq!(new.starts_at, Timestamp::parse_rfc3339("2026-01-01T00:00:00Z"));
        assert_eq!(new.expires_at, Timestamp::parse_rfc3339("2026-02-01T00:00:00Z"));
        assert_eq!(new.status, domain::BookStatus::Paused);
        assert_eq!(new.code_mode, domain::CodeMode::Shared);
        assert_eq!((new.code.as_deref(), new.total_codes), (Some("X"), Some(7)));
        assert_eq!(
            new.policies,
            domain::Policies {
                max_codes_per_user: Some(2),
                max_redemptions_per_user: Some(3),
                max_redemptions_per_code: 4,
                claims_per_user_per_day: Some(5),
                claim_ttl_seconds: Some(6),
                lock_ttl_seconds: 7,
            }
        );
    }

    #[test]
    fn a_patch_tells_null_from_absent() {
        let patch = |v| domain::BookPatch::from(serde_json::from_value::<BookPatch>(v).unwrap());
        assert_eq!(patch(json!({})), domain::BookPatch::default());
        assert_eq!(patch(json!({"expires_at": null})).expires_at, Some(None));
        let full =
            patch(json!({"name": "N", "description": "D", "expires_at": "2026-01-01T00:00:00Z", "status": "archived"}));
        assert_eq!(
            full,
            domain::BookPatch {
                name: Some("N".into()),
                description: Some("D".into()),
                expires_at: Some(Timestamp::parse_rfc3339("2026-01-01T00:00:00Z")),
                status: Some(domain::BookStatus::Archived),
                metadata: None,
                low_stock_threshold: None,
            }
        );
        assert_eq!(
            patch(json!({"low_stock_threshold": null})).low_stock_threshold,
            Some(None)
        );
        assert_eq!(
            patch(json!({"low_stock_threshold": 50})).low_stock_threshold,
            Some(Some(50))
        );
        assert!(
            serde_json::from_value::<BookPatch>(json!({"code": "X"})).is_err(),
            "unknown fields"
        );
        let replaced = patch(json!({"metadata": {"crm": "42"}})).metadata.unwrap();
        assert_eq!(replaced.entries().get("crm").map(String::as_str), Some("42"));
        assert_eq!(patch(json!({"metadata": null})).metadata, Some(Default::default()));
        assert_eq!(patch(json!({"metadata": {}})).metadata, Some(Default::default()));
    }
}
