//! Books as the API shows them: the book with its policies inline, and counts over its codes.

use coupon_core as domain;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Discount, Metadata, Timestamp};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BookStatus {
    Active,
    /// No new claims; held codes may still be locked and redeemed.
    Paused,
    /// Read-only, for good.
    Archived,
}

impl From<BookStatus> for domain::BookStatus {
    fn from(s: BookStatus) -> Self {
        match s {
            BookStatus::Active => domain::BookStatus::Active,
            BookStatus::Paused => domain::BookStatus::Paused,
            BookStatus::Archived => domain::BookStatus::Archived,
        }
    }
}

impl From<domain::BookStatus> for BookStatus {
    fn from(s: domain::BookStatus) -> Self {
        match s {
            domain::BookStatus::Active => BookStatus::Active,
            domain::BookStatus::Paused => BookStatus::Paused,
            domain::BookStatus::Archived => BookStatus::Archived,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CodeMode {
    /// Every instance has its own code.
    #[default]
    Unique,
    /// One code text (e.g. `WELCOME10`) with `total_codes` instances that users claim.
    Shared,
}

impl From<CodeMode> for domain::CodeMode {
    fn from(m: CodeMode) -> Self {
        match m {
            CodeMode::Unique => domain::CodeMode::Unique,
            CodeMode::Shared => domain::CodeMode::Shared,
        }
    }
}

impl From<domain::CodeMode> for CodeMode {
    fn from(m: domain::CodeMode) -> Self {
        match m {
            domain::CodeMode::Unique => CodeMode::Unique,
            domain::CodeMode::Shared => CodeMode::Shared,
        }
    }
}

/// What a book allows each user and each code. `None` means unlimited.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Policies {
    pub max_codes_per_user: Option<i64>,
    pub max_redemptions_per_user: Option<i64>,
    pub max_redemptions_per_code: i64,
    pub claims_per_user_per_day: Option<i64>,
    /// An unredeemed claim lapses after this long and its code returns to the pool.
    pub claim_ttl_seconds: Option<i64>,
    pub lock_ttl_seconds: i64,
}

impl From<domain::Policies> for Policies {
    fn from(p: domain::Policies) -> Self {
        Policies {
            max_codes_per_user: p.max_codes_per_user,
            max_redemptions_per_user: p.max_redemptions_per_user,
            max_redemptions_per_code: p.max_redemptions_per_code,
            claims_per_user_per_day: p.claims_per_user_per_day,
            claim_ttl_seconds: p.claim_ttl_seconds,
            lock_ttl_seconds: p.lock_ttl_seconds,
        }
    }
}

// No doc comment: it would become the schema's description, which the document has never had.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Book {
    pub coupon_book_id: Uuid,
    pub name: String,
    pub description: String,
    pub category: Option<String>,
    pub tags: Vec<String>,
    pub discount: Discount,
    pub starts_at: Option<Timestamp>,
    /// Inclusive: the book is usable up to and including this instant.
    pub expires_at: Option<Timestamp>,
    pub status: BookStatus,
    pub code_mode: CodeMode,
    /// The shared code, in shared mode.
    pub code: Option<String>,
    pub code_pattern: Option<String>,
    /// The supply cap: the book never holds more codes (or shared instances) than this.
    pub total_codes: Option<i64>,
    /// `book.low_stock` is announced when the codes left to claim fall to this many.
    pub low_stock_threshold: Option<i64>,
    #[serde(flatten)]
    pub policies: Policies,
    pub metadata: Metadata,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Book {
    pub fn of(b: &domain::Book) -> Self {
        b.clone().into()
    }
}

impl From<domain::Book> for Book {
    fn from(b: domain::Book) -> Self {
        Book {
            coupon_book_id: b.id,
            name: b.name,
            description: b.description,
            category: b.category,
            tags: b.tags,
            discount: b.discount.into(),
            starts_at: b.starts_at.map(Timestamp),
            expires_at: b.expires_at.map(Timestamp),
            status: b.status.into(),
            code_mode: b.code_mode.into(),
            code: b.code,
            code_pattern: b.code_pattern,
            total_codes: b.total_codes,
            low_stock_threshold: b.low_stock_threshold,
            policies: b.policies.into(),
            metadata: b.metadata.into(),
            created_at: Timestamp(b.created_at),
            updated_at: Timestamp(b.updated_at),
        }
    }
}

/// Counts over a book's codes, as of one instant.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct BookStats {
    /// Codes (or shared instances) in the book, uploaded ones included.
    pub total_generated: i64,
    /// Held by users now: active, locked and redeemed.
    pub total_assigned: i64,
    pub total_locked: i64,
    /// Codes redeemed as often as they allow.
    pub total_redeemed: i64,
    /// Redemptions not rolled back, for codes that may be redeemed more than once.
    pub total_redemptions: i64,
    /// The discount those redemptions applied, in minor units.
    pub total_discount_applied: i64,
    pub available: i64,
}

impl From<domain::BookStats> for BookStats {
    fn from(s: domain::BookStats) -> Self {
        BookStats {
            total_generated: s.total_generated,
            total_assigned: s.total_assigned,
            total_locked: s.total_locked,
            total_redeemed: s.total_redeemed,
            total_redemptions: s.total_redemptions,
            total_discount_applied: s.total_discount_applied,
            available: s.available,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coupon_core::{DiscountKind, NewBook};
    use serde_json::json;

    #[test]
    fn a_book_is_written_with_its_id_and_policies_inline() {
        let discount = domain::Discount::new(
            DiscountKind::Percentage { basis_points: 1250 },
            "EUR".into(),
            None,
            None,
        )
        .unwrap();
        let mut new = NewBook::new("Summer", discount);
        new.tags = vec!["sun".into()];
        new.expires_at = domain::Timestamp::parse_rfc3339("2026-09-01T00:00:00Z");
        let draft = new
            .into_draft(Uuid::nil(), domain::Timestamp::from_millis(1_000))
            .unwrap();
        assert_eq!(
            serde_json::to_value(Book::from(draft.book)).unwrap(),
            json!({
                "coupon_book_id": "00000000-0000-0000-0000-000000000000",
                "name": "Summer", "description": "", "category": null, "tags": ["sun"],
                "discount": {"type": "percentage", "value": 12.5, "currency": "EUR",
                             "max_discount": null, "min_order_amount": null},
                "starts_at": null, "expires_at": "2026-09-01T00:00:00.000Z",
                "status": "active", "code_mode": "unique", "code": null, "code_pattern": null,
                "total_codes": null, "low_stock_threshold": null,
                "max_codes_per_user": 1, "max_redemptions_per_user": null, "max_redemptions_per_code": 1,
                "claims_per_user_per_day": null, "claim_ttl_seconds": null, "lock_ttl_seconds": 300,
                "metadata": {},
                "created_at": "1970-01-01T00:00:01.000Z", "updated_at": "1970-01-01T00:00:01.000Z",
            })
        );
    }
}
