//! The draft of a book: what an admin asks for when creating a book or changing one, and the
//! checks that turn it into a book (or a change) the store may write.

use uuid::Uuid;

use crate::book::MAX_SUPPLY;
use crate::{Book, BookStatus, CodeMode, CodePattern, CodeText, CouponError, Discount, Metadata, Policies, Timestamp};

/// Upper bound of every per-user and per-code limit.
pub const MAX_LIMIT: i64 = 1_000_000;
/// The longest claim TTL: a year and a day.
pub const MAX_CLAIM_TTL: i64 = 366 * 86_400;
/// The longest checkout lock: a day.
pub const MAX_LOCK_TTL: i64 = 86_400;

/// A new book as an admin describes it, not yet checked: `into_draft` checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBook {
    pub name: String,
    pub description: String,
    pub category: Option<String>,
    pub tags: Vec<String>,
    pub discount: Discount,
    pub starts_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
    pub status: BookStatus,
    pub code_mode: CodeMode,
    /// The shared code (shared mode only).
    pub code: Option<String>,
    pub total_codes: Option<i64>,
    /// Codes are generated from it at creation (unique mode only).
    pub code_pattern: Option<String>,
    /// `book.low_stock` is announced when the pool falls to this many codes.
    pub low_stock_threshold: Option<i64>,
    pub policies: Policies,
    pub metadata: Metadata,
}

/// A book ready to be stored, with the codes to create along with it.
#[derive(Debug, Clone)]
pub struct BookDraft {
    pub book: Book,
    pub pattern: Option<CodePattern>,
}

impl NewBook {
    /// An active unique-mode book with no window, no supply cap and the default policies.
    pub fn new(name: impl Into<String>, discount: Discount) -> Self {
        NewBook {
            name: name.into(),
            description: String::new(),
            category: None,
            tags: Vec::new(),
            discount,
            starts_at: None,
            expires_at: None,
            status: BookStatus::Active,
            code_mode: CodeMode::Unique,
            code: None,
            total_codes: None,
            code_pattern: None,
            low_stock_threshold: None,
            policies: Policies::default(),
            metadata: Metadata::default(),
        }
    }

    /// Checks the whole description (texts, window, supply, mode, policies, in that order) and
    /// makes the book and the pattern its codes are drawn from.
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
        let low_stock_threshold = check_threshold(self.low_stock_threshold)?;

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
        let asked = self.policies;
        let policies = Policies {
            max_codes_per_user: limit("max_codes_per_user", asked.max_codes_per_user)?,
            max_redemptions_per_user: limit("max_redemptions_per_user", asked.max_redemptions_per_user)?,
            max_redemptions_per_code: check_range(
                "max_redemptions_per_code",
                asked.max_redemptions_per_code,
                1,
                MAX_LIMIT,
            )?,
            claims_per_user_per_day: limit("claims_per_user_per_day", asked.claims_per_user_per_day)?,
            claim_ttl_seconds: asked
                .claim_ttl_seconds
                .map(|s| check_range("claim_ttl_seconds", s, 1, MAX_CLAIM_TTL))
                .transpose()?,
            lock_ttl_seconds: check_range("lock_ttl_seconds", asked.lock_ttl_seconds, 1, MAX_LOCK_TTL)?,
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
                status: self.status,
                code_mode: self.code_mode,
                code,
                code_pattern: pattern.as_ref().map(|p| p.as_str().to_owned()),
                total_codes,
                low_stock_threshold,
                policies,
                metadata: self.metadata,
                created_at: now,
                updated_at: now,
            },
            pattern,
        })
    }
}

/// The fields an admin may change after creation; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BookPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    /// `Some(None)` removes the end of the window.
    pub expires_at: Option<Option<Timestamp>>,
    pub status: Option<BookStatus>,
    /// Replaces the book's metadata.
    pub metadata: Option<Metadata>,
    /// `Some(None)` turns low-stock alerts off.
    pub low_stock_threshold: Option<Option<i64>>,
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
        if let Some(metadata) = patch.metadata {
            self.metadata = metadata;
        }
        if let Some(threshold) = patch.low_stock_threshold {
            self.low_stock_threshold = check_threshold(threshold)?;
        }
        // The patch cannot move starts_at: a new end before it conflicts with the stored book.
        check_window_order(self.starts_at, self.expires_at).map_err(|_| CouponError::WindowConflict)?;
        self.updated_at = now;
        Ok(())
    }
}

/// At most `max` characters as sent (the OpenAPI document's `maxLength`, padding included), and at
/// least `min` once trimmed.
fn check_text(field: &'static str, s: String, min: usize, max: usize) -> Result<String, CouponError> {
    let sent = s.chars().count();
    let s = s.trim().to_owned();
    if s.chars().count() < min || sent > max {
        return Err(CouponError::invalid(
            field,
            format!("must have {min} to {max} characters"),
        ));
    }
    Ok(s)
}

/// A low-stock threshold counts codes: none, or from 0 (announced with the sale's end) up to the
/// largest supply.
fn check_threshold(threshold: Option<i64>) -> Result<Option<i64>, CouponError> {
    threshold
        .map(|n| check_range("low_stock_threshold", n, 0, MAX_SUPPLY))
        .transpose()
}

fn check_range(field: &'static str, n: i64, min: i64, max: i64) -> Result<i64, CouponError> {
    if n < min || n > max {
        return Err(CouponError::invalid(field, format!("must be from {min} to {max}")));
    }
    Ok(n)
}

/// A window that closes before it opens is a mistake (the book would never be live), refused.
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
    use crate::testing::{draft, ten_percent};
    use crate::{Discount, DiscountKind};

    #[test]
    fn applies_the_default_policies() {
        let b = draft(|_| {}).unwrap().book;
        assert_eq!(b.policies.max_codes_per_user, Some(1));
        assert_eq!(b.policies.lock_ttl_seconds, 300);
        assert_eq!(b.policies.max_redemptions_per_code, 1);
        assert_eq!(b.status, BookStatus::Active);
        let b = draft(|b| b.policies.max_codes_per_user = None).unwrap().book;
        assert_eq!(b.policies.max_codes_per_user, None);
    }

    #[test]
    fn checks_modes_and_patterns() {
        let five_off = Discount::new(DiscountKind::FixedAmount { amount: 500 }, "USD".into(), None, None).unwrap();
        let shared = |code: Option<&str>| {
            let mut b = NewBook::new("S", five_off.clone());
            b.code_mode = CodeMode::Shared;
            b.code = code.map(Into::into);
            b.total_codes = Some(5);
            b.into_draft(Uuid::nil(), Timestamp::from_millis(0))
        };
        assert!(shared(None).is_err());
        assert_eq!(
            shared(Some(" welcome10 ")).unwrap().book.code.as_deref(),
            Some("WELCOME10")
        );
        let patterned = |pattern: &str, total: Option<i64>| {
            draft(|b| {
                b.code_pattern = Some(pattern.into());
                b.total_codes = total;
            })
        };
        assert!(patterned("A-####", None).is_err(), "pattern without total");
        assert!(patterned("A-###", Some(10)).is_err(), "space too small");
        assert!(patterned("A-#####", Some(10)).is_ok());
        assert!(draft(|b| b.name = String::new()).is_err());
        assert!(draft(|b| b.policies.max_codes_per_user = Some(0)).is_err());
        assert!(draft(|b| {
            b.starts_at = Timestamp::parse_rfc3339("2026-02-01T00:00:00Z");
            b.expires_at = Timestamp::parse_rfc3339("2026-01-01T00:00:00Z");
        })
        .is_err());
    }

    #[test]
    fn names_the_field_at_fault() {
        let field = |edit: fn(&mut NewBook)| match draft(edit) {
            Err(CouponError::Invalid(i)) => i.field,
            other => panic!("not refused: {other:?}"),
        };
        assert_eq!(field(|b| b.name = " ".into()), "name");
        assert_eq!(field(|b| b.tags = vec!["t".into(); 33]), "tags");
        assert_eq!(field(|b| b.total_codes = Some(MAX_SUPPLY + 1)), "total_codes");
        assert_eq!(field(|b| b.code = Some("X".into())), "code");
        assert_eq!(
            field(|b| b.policies.max_redemptions_per_code = 0),
            "max_redemptions_per_code"
        );
        assert_eq!(
            field(|b| b.policies.claim_ttl_seconds = Some(MAX_CLAIM_TTL + 1)),
            "claim_ttl_seconds"
        );
        assert_eq!(
            field(|b| b.policies.lock_ttl_seconds = MAX_LOCK_TTL + 1),
            "lock_ttl_seconds"
        );
        assert!(draft(|b| b.policies.claim_ttl_seconds = Some(MAX_CLAIM_TTL)).is_ok());
        assert_eq!(NewBook::new("S", ten_percent()).status, BookStatus::Active);
    }

    #[test]
    fn a_patch_is_checked_and_an_archived_book_refuses_it() {
        let mut b = draft(|_| {}).unwrap().book;
        let later = Timestamp::from_millis(5);
        let rename = BookPatch {
            name: Some(" Autumn ".into()),
            expires_at: Some(Some(Timestamp::from_millis(10))),
            ..Default::default()
        };
        b.apply_patch(rename, later).unwrap();
        assert_eq!(
            (b.name.as_str(), b.expires_at, b.updated_at),
            ("Autumn", Some(Timestamp::from_millis(10)), later)
        );
        let open_ended = BookPatch {
            expires_at: Some(None),
            ..Default::default()
        };
        b.apply_patch(open_ended, later).unwrap();
        assert_eq!(b.expires_at, None);
        let empty = BookPatch {
            name: Some(String::new()),
            ..Default::default()
        };
        assert!(b.apply_patch(empty, later).is_err());
        b.status = BookStatus::Archived;
        assert_eq!(
            b.apply_patch(BookPatch::default(), later),
            Err(CouponError::BookInactive)
        );
    }
}
