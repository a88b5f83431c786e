//! Code instances: one claimable unit of a book. In unique mode an instance is a code; in shared mode
//! the book's one code has many instances. Only `available`, `active` and `redeemed` are stored;
//! `locked`, `expired` and a lapsed claim are derived from timestamps, so they need no sweeper and
//! follow the injected clock exactly.

use uuid::Uuid;

use crate::{Book, Metadata, Timestamp};

/// A checkout lock on a code: its holder's to redeem under `lock_id` until `locked_until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locked {
    pub code: String,
    pub lock_id: Uuid,
    pub locked_until: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredStatus {
    Available,
    Active,
    Redeemed,
}

impl StoredStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StoredStatus::Available => "available",
            StoredStatus::Active => "active",
            StoredStatus::Redeemed => "redeemed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "available" => Some(StoredStatus::Available),
            "active" => Some(StoredStatus::Active),
            "redeemed" => Some(StoredStatus::Redeemed),
            _ => None,
        }
    }
}

/// What a code is at a given instant, as clients see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeState {
    Available,
    Active,
    Locked,
    Redeemed,
    Expired,
}

impl CodeState {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "available" => Some(CodeState::Available),
            "active" => Some(CodeState::Active),
            "locked" => Some(CodeState::Locked),
            "redeemed" => Some(CodeState::Redeemed),
            "expired" => Some(CodeState::Expired),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeInstance {
    pub id: i64,
    pub book_id: Uuid,
    pub code: String,
    pub instance: i64,
    pub status: StoredStatus,
    pub owner: Option<String>,
    pub claimed_at: Option<Timestamp>,
    pub claim_expires_at: Option<Timestamp>,
    pub lock_id: Option<Uuid>,
    pub locked_until: Option<Timestamp>,
    pub redemptions: i64,
    /// What the claim carried; empty while the code is in the pool.
    pub metadata: Metadata,
}

impl CodeInstance {
    /// The lock that holds the code now, if any.
    pub fn live_lock(&self, now: Timestamp) -> Option<Uuid> {
        match (self.lock_id, self.locked_until) {
            (Some(id), Some(until)) if until > now => Some(id),
            _ => None,
        }
    }

    /// An unredeemed claim past its TTL, with no live lock, has lapsed: the code is back in the pool.
    pub fn is_lapsed(&self, now: Timestamp) -> bool {
        self.status == StoredStatus::Active
            && self.redemptions == 0
            && self.claim_expires_at.is_some_and(|t| t <= now)
            && self.live_lock(now).is_none()
    }

    /// The user the code belongs to now.
    pub fn holder(&self, now: Timestamp) -> Option<&str> {
        if self.is_lapsed(now) {
            None
        } else {
            self.owner.as_deref()
        }
    }

    pub fn is_held_by(&self, user: &str, now: Timestamp) -> bool {
        self.holder(now) == Some(user)
    }

    pub fn state(&self, book: &Book, now: Timestamp) -> CodeState {
        if self.status == StoredStatus::Redeemed {
            CodeState::Redeemed
        } else if book.expires_at.is_some_and(|e| now > e) {
            CodeState::Expired
        } else if self.holder(now).is_none() {
            CodeState::Available
        } else if self.live_lock(now).is_some() {
            CodeState::Locked
        } else {
            CodeState::Active
        }
    }
}
