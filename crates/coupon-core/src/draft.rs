//! The draft of a book: what an admin asks for when creating a book or changing one, and the
//! checks that turn it into a book (or a change) the store may write.

use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::book::MAX_SUPPLY;
use crate::discount::DiscountWire;
use crate::{Book, BookStatus, CodeMode, CodePattern, CodeText, CouponError, Discount, Policies, Timestamp};

const MAX_LIMIT: i64 = 1_000_000;
const MAX_CLAIM_TTL: i64 = 366 * 86_400;
const MAX_LOCK_TTL: i64 = 86_400;

/// `POST /coupons`: a book as an admin describes it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBook {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[schema(value_type = DiscountWire)]
    pub discount: Discount,
    #[serde(default)]
    pub starts_at: Option<Timestamp>,
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
    #[serde(default)]
    pub status: Option<BookStatus>,
    #[serde(default)]
    pub code_mode: CodeMode,
    /// The shared code (shared mode only).
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub total_codes: Option<i64>,
    /// Codes are generated from it at creation (unique mode only).
    #[serde(default)]
    pub code_pattern: Option<String>,
    /// Default 1; null for unlimited.
    #[serde(default, deserialize_with = "explicit")]
    #[schema(value_type = Option<i64>)]
    pub max_codes_per_user: Option<Option<i64>>,
    #[serde(default)]
    pub max_redemptions_per_user: Option<i64>,
    /// Default 1.
    #[serde(default)]
    pub max_redemptions_per_code: Option<i64>,
    #[serde(default)]
    pub claims_per_user_per_day: Option<i64>,
    #[serde(default)]
    pub claim_ttl_seconds: Option<i64>,
    /// Default 300.
    #[serde(default)]
    pub lock_ttl_seconds: Option<i64>,
}

/// Tells an absent field (outer `None`) from an explicit `null` (`Some(None)`).
fn explicit<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A book ready to be stored, with the codes to create along with it.
#[derive(Debug, Clone)]
pub struct BookDraft {
    pub book: Book,
    pub pattern: Option<CodePattern>,
}

impl NewBook {
    pub fn into_draft(self, id: Uuid, now: Timestamp) -> Result<BookDraft, CouponError> {
        let name = check_text("name", self.name, 1, 200)?;
        let description = check_text("description", self.description, 0, 5000)?;
        let category = self.category.map(|c| check_text("category", c, 1, 100)).transpose()?;
        if self.tags.len() > 32 {
            return Err(CouponError::invalid("tags", "at most 32 tags"));
        }
        let tags = self
            .tags
            .into_iter()
            .map(|t| check_text("tags", t, 1, 50))
            .collect::<Result<Vec<_>, _>>()?;
        check_window_order(self.starts_at, self.expires_at)?;
        let total_codes = self
            .total_codes
            .map(|n| check_range("total_codes", n, 1, MAX_SUPPLY))
            .transpose()?;

        let (code, pattern) = match self.code_mode {
            CodeMode::Unique => {
                if self.code.is_some() {
                    return Err(CouponError::invalid("code", "only a shared book has a code"));
                }
                let pattern = self.code_pattern.as_deref().map(CodePattern::parse).transpose()?;
                if let Some(p) = &pattern {
                    let count = total_codes
                        .ok_or_else(|| CouponError::invalid("total_codes", "a code_pattern needs total_codes"))?;
                    p.check_capacity(count as u64)?;
                }
                (None, pattern)
            }
            CodeMode::Shared => {
                if self.code_pattern.is_some() {
                    return Err(CouponError::invalid(
                        "code_pattern",
                        "a shared book has one code, not a pattern",
                    ));
                }
                let code = self
                    .code
                    .as_deref()
                    .ok_or_else(|| CouponError::invalid("code", "a shared book needs its code"))?;
                if total_codes.is_none() {
                    return Err(CouponError::invalid("total_codes", "a shared book needs total_codes"));
                }
                (Some(CodeText::parse(code)?.into_string()), None)
            }
        };

        let limit = |field, v: Option<i64>| v.map(|n| check_range(field, n, 1, MAX_LIMIT)).transpose();
        let policies = Policies {
            max_codes_per_user: limit("max_codes_per_user", self.max_codes_per_user.unwrap_or(Some(1)))?,
            max_redemptions_per_user: limit("max_redemptions_per_user", self.max_redemptions_per_user)?,
            max_redemptions_per_code: check_range(
                "max_redemptions_per_code",
                self.max_redemptions_per_code.unwrap_or(1),
                1,
                MAX_LIMIT,
            )?,
            claims_per_user_per_day: limit("claims_per_user_per_day", self.claims_per_user_per_day)?,
            claim_ttl_seconds: self
                .claim_ttl_seconds
                .map(|s| check_range("claim_ttl_seconds", s, 1, MAX_CLAIM_TTL))
                .transpose()?,
            lock_ttl_seconds: check_range(
                "lock_ttl_seconds",
                self.lock_ttl_seconds.unwrap_or(300),
                1,
                MAX_LOCK_TTL,
            )?,
        };

        Ok(BookDraft {
            book: Book {
                id,
                name,
                description,
                category,
                tags,
                discount: self.discount,
                starts_at: self.starts_at,
                expires_at: self.expires_at,
                status: self.status.unwrap_or(BookStatus::Active),
                code_mode: self.code_mode,
                code,
                code_pattern: pattern.as_ref().map(|p| p.as_str().to_owned()),
                total_codes,
                policies,
                created_at: now,
                updated_at: now,
            },
            pattern,
        })
    }
}

/// `PATCH /coupons/{id}`: the fields an admin may change after creation.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BookPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// An explicit null removes the end of the window.
    #[serde(default, deserialize_with = "explicit")]
    #[schema(value_type = Option<Timestamp>)]
    pub expires_at: Option<Option<Timestamp>>,
    #[serde(default)]
    pub status: Option<BookStatus>,
}

impl Book {
    /// Applies an admin's change; an archived book changes no more.
    pub fn apply_patch(&mut self, patch: BookPatch, now: Timestamp) -> Result<(), CouponError> {
        if self.status == BookStatus::Archived {
            return Err(CouponError::BookInactive);
        }
        if let Some(name) = patch.name {
            self.name = check_text("name", name, 1, 200)?;
        }
        if let Some(description) = patch.description {
            self.description = check_text("description", description, 0, 5000)?;
        }
        if let Some(expires_at) = patch.expires_at {
            self.expires_at = expires_at;
        }
        if let Some(status) = patch.status {
            self.status = status;
        }
        check_window_order(self.starts_at, self.expires_at)?;
        self.updated_at = now;
        Ok(())
    }
}

fn check_text(field: &'static str, s: String, min: usize, max: usize) -> Result<String, CouponError> {
    let s = s.trim().to_owned();
    let len = s.chars().count();
    if len < min || len > max {
        return Err(CouponError::invalid(
            field,
            format!("must have {min} to {max} characters"),
        ));
    }
    Ok(s)
}

fn check_range(field: &'static str, n: i64, min: i64, max: i64) -> Result<i64, CouponError> {
    if n < min || n > max {
        return Err(CouponError::invalid(field, format!("must be from {min} to {max}")));
    }
    Ok(n)
}

fn check_window_order(starts: Option<Timestamp>, expires: Option<Timestamp>) -> Result<(), CouponError> {
    if let (Some(s), Some(e)) = (starts, expires) {
        if e < s {
            return Err(CouponError::invalid("expires_at", "must not be before starts_at"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn draft(v: serde_json::Value) -> Result<BookDraft, CouponError> {
        let new: NewBook = serde_json::from_value(v).expect("well-formed");
        new.into_draft(Uuid::nil(), Timestamp::from_millis(0))
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
}
