//! Coupon books: the campaigns that codes belong to, their policies, and the checks on a book that
//! come before any check on a code.

use uuid::Uuid;

use crate::{CodePattern, CouponError, Discount, Metadata, Timestamp, DEFAULT_CODE_PATTERN};

/// Upper bound of a book's supply, and of one generation or upload.
pub const MAX_SUPPLY: i64 = 10_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookStatus {
    Active,
    /// No new claims; held codes may still be locked and redeemed.
    Paused,
    /// Read-only, for good.
    Archived,
}

impl BookStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BookStatus::Active => "active",
            BookStatus::Paused => "paused",
            BookStatus::Archived => "archived",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(BookStatus::Active),
            "paused" => Some(BookStatus::Paused),
            "archived" => Some(BookStatus::Archived),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CodeMode {
    /// Every instance has its own code.
    #[default]
    Unique,
    /// One code text (e.g. `WELCOME10`) with `total_codes` instances that users claim.
    Shared,
}

impl CodeMode {
    pub fn as_str(self) -> &'static str {
        match self {
            CodeMode::Unique => "unique",
            CodeMode::Shared => "shared",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "unique" => Some(CodeMode::Unique),
            "shared" => Some(CodeMode::Shared),
            _ => None,
        }
    }
}

/// What a book allows each user and each code. `None` means unlimited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policies {
    pub max_codes_per_user: Option<i64>,
    pub max_redemptions_per_user: Option<i64>,
    pub max_redemptions_per_code: i64,
    pub claims_per_user_per_day: Option<i64>,
    /// An unredeemed claim lapses after this long and its code returns to the pool.
    pub claim_ttl_seconds: Option<i64>,
    pub lock_ttl_seconds: i64,
}

impl Default for Policies {
    /// What a book allows unless its admin says otherwise: one code per user, redeemed once, held
    /// for a checkout five minutes at a time; no daily limit and no claim TTL.
    fn default() -> Self {
        Policies {
            max_codes_per_user: Some(1),
            max_redemptions_per_user: None,
            max_redemptions_per_code: 1,
            claims_per_user_per_day: None,
            claim_ttl_seconds: None,
            lock_ttl_seconds: 300,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Book {
    pub id: Uuid,
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
    /// When the pool falls to this many codes, `book.low_stock` is announced.
    pub low_stock_threshold: Option<i64>,
    pub policies: Policies,
    pub metadata: Metadata,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Book {
    /// A new claim (of either kind) needs an active book inside its window.
    pub fn check_claimable(&self, now: Timestamp) -> Result<(), CouponError> {
        if self.status != BookStatus::Active {
            return Err(CouponError::BookInactive);
        }
        self.check_window(now)
    }

    /// Locks and redemptions need a book that is not archived, inside its window.
    pub fn check_usable(&self, now: Timestamp) -> Result<(), CouponError> {
        if self.status == BookStatus::Archived {
            return Err(CouponError::BookInactive);
        }
        self.check_window(now)
    }

    pub fn check_window(&self, now: Timestamp) -> Result<(), CouponError> {
        if self.starts_at.is_some_and(|s| now < s) {
            return Err(CouponError::NotStarted);
        }
        if self.expires_at.is_some_and(|e| now > e) {
            return Err(CouponError::Expired);
        }
        Ok(())
    }

    /// May `adding` new codes join the `generated` the book holds? Only a unique-mode book that is
    /// not archived takes codes, and never past `total_codes`.
    pub fn check_room(&self, generated: i64, adding: i64) -> Result<(), CouponError> {
        self.check_pool_editable()?;
        match self.total_codes {
            Some(total) if generated + adding > total => Err(CouponError::TotalCodesExceeded {
                held: generated,
                total,
                adding,
            }),
            _ => Ok(()),
        }
    }

    /// Codes may be added to or removed from a unique-mode book that is not archived.
    pub fn check_pool_editable(&self) -> Result<(), CouponError> {
        if self.status == BookStatus::Archived {
            return Err(CouponError::BookInactive);
        }
        if self.code_mode == CodeMode::Shared {
            return Err(CouponError::SharedBook);
        }
        Ok(())
    }

    /// The pattern to draw `count` new codes from: the one given, else the book's own, refused if
    /// its space is too small for the draw.
    pub fn generation_pattern(&self, given: Option<CodePattern>, count: u64) -> Result<CodePattern, CouponError> {
        let pattern = match given {
            Some(p) => p,
            None => CodePattern::parse(self.code_pattern.as_deref().unwrap_or(DEFAULT_CODE_PATTERN))?,
        };
        pattern.check_capacity(count)?;
        Ok(pattern)
    }
}

/// Counts over a book's codes, as of one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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
    /// The discount of those redemptions, in minor units.
    pub total_discount_applied: i64,
    pub available: i64,
}

impl BookStats {
    /// Stats from raw counts of code instances: all of them, redeemed (used up), under a live lock,
    /// active and held (lapsed claims excluded); and the redemptions not rolled back, with the
    /// discount they applied.
    pub fn from_counts(
        generated: i64,
        redeemed: i64,
        locked: i64,
        active: i64,
        redemptions: i64,
        discount_applied: i64,
    ) -> Self {
        let assigned = active + redeemed;
        BookStats {
            total_generated: generated,
            total_assigned: assigned,
            total_locked: locked,
            total_redeemed: redeemed,
            total_redemptions: redemptions,
            total_discount_applied: discount_applied,
            available: generated - assigned,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::book;

    #[test]
    fn room_for_codes_follows_mode_status_and_cap() {
        let mut capped = book(|b| b.total_codes = Some(3));
        assert_eq!(capped.check_room(1, 2), Ok(()));
        assert_eq!(capped.check_room(1, 3).unwrap_err().code(), "total_codes_exceeded");
        let open = book(|_| {});
        assert_eq!(open.check_room(1_000_000, 1), Ok(()));
        let shared = book(|b| {
            b.code_mode = CodeMode::Shared;
            b.code = Some("X".into());
            b.total_codes = Some(3);
        });
        assert_eq!(shared.check_room(0, 0).unwrap_err().code(), "shared_book");
        capped.status = BookStatus::Archived;
        assert_eq!(capped.check_room(0, 1), Err(CouponError::BookInactive));
    }

    #[test]
    fn window_is_inclusive_of_expiry() {
        let mut b = book(|b| {
            b.starts_at = Timestamp::parse_rfc3339("1970-01-01T00:00:01Z");
            b.expires_at = Timestamp::parse_rfc3339("1970-01-01T00:00:02Z");
        });
        assert_eq!(
            b.check_claimable(Timestamp::from_millis(999)),
            Err(CouponError::NotStarted)
        );
        assert_eq!(b.check_claimable(Timestamp::from_millis(2000)), Ok(()));
        assert_eq!(
            b.check_claimable(Timestamp::from_millis(2001)),
            Err(CouponError::Expired)
        );
        b.status = BookStatus::Paused;
        assert_eq!(
            b.check_claimable(Timestamp::from_millis(1500)),
            Err(CouponError::BookInactive)
        );
        assert_eq!(b.check_usable(Timestamp::from_millis(1500)), Ok(()));
    }
}
