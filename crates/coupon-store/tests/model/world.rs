//! The small world of a book: a few codes, a few users and policies drawn at random, and how the
//! book is created through the service.

use coupon_core::{BookDraft, BookStatus, CodeMode, Discount, DiscountKind, NewBook, Policies, Timestamp};
use proptest::prelude::*;
use proptest::sample::select;
use uuid::Uuid;

/// 2026-06-01T12:00:00Z, noon UTC: every sequence starts here and only moves forward.
pub const T0: i64 = 1_780_315_200_000;
pub const SECOND: i64 = 1000;
pub const MINUTE: i64 = 60 * SECOND;
pub const HOUR: i64 = 60 * MINUTE;
pub const DAY: i64 = 24 * HOUR;

pub const USERS: [&str; 4] = ["alice", "bob", "carol", "dave"];

/// What a discount takes off, as the admin set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Off {
    /// Basis points of the order.
    Percent(i64),
    /// Minor units.
    Fixed(i64),
}

/// A book and its users, fixed for the whole sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct World {
    /// One shared code with `supply` instances, or `supply` codes of their own.
    pub shared: bool,
    pub supply: usize,
    /// `total_codes` of a unique book: room for `cap - supply` codes added later (none: no cap).
    pub cap: Option<i64>,
    pub users: usize,
    pub max_codes_per_user: Option<i64>,
    pub claims_per_day: Option<i64>,
    pub claim_ttl: Option<i64>,
    pub lock_ttl: i64,
    pub max_uses: i64,
    pub max_user_redemptions: Option<i64>,
    pub off: Off,
    pub max_discount: Option<i64>,
    pub min_order: Option<i64>,
    /// Milliseconds after `T0`, possibly negative.
    pub starts_at: Option<i64>,
    pub expires_at: Option<i64>,
}

impl World {
    pub fn user(&self, i: usize) -> &'static str {
        USERS[i % self.users]
    }

    /// The book as the admin would create it; its codes are added by the caller.
    pub fn draft(&self, shared_code: Option<String>) -> BookDraft {
        let kind = match self.off {
            Off::Percent(bp) => DiscountKind::Percentage { basis_points: bp },
            Off::Fixed(amount) => DiscountKind::FixedAmount { amount },
        };
        let discount = Discount::new(kind, "USD".into(), self.max_discount, self.min_order).expect("a valid discount");
        let mut book = NewBook::new("Model sale", discount);
        book.status = BookStatus::Active;
        book.starts_at = self.starts_at.map(|ms| Timestamp::from_millis(T0 + ms));
        book.expires_at = self.expires_at.map(|ms| Timestamp::from_millis(T0 + ms));
        if self.shared {
            book.code_mode = CodeMode::Shared;
            book.code = shared_code;
            book.total_codes = Some(self.supply as i64);
        } else {
            book.total_codes = self.cap;
        }
        book.policies = Policies {
            max_codes_per_user: self.max_codes_per_user,
            max_redemptions_per_user: self.max_user_redemptions,
            max_redemptions_per_code: self.max_uses,
            claims_per_user_per_day: self.claims_per_day,
            claim_ttl_seconds: self.claim_ttl,
            lock_ttl_seconds: self.lock_ttl,
        };
        book.into_draft(Uuid::now_v7(), Timestamp::from_millis(T0))
            .expect("a valid book")
    }
}

fn percent_or_fixed() -> impl Strategy<Value = Off> {
    prop_oneof![
        select(vec![1000i64, 2500, 3333, 10_000]).prop_map(Off::Percent),
        select(vec![100i64, 500, 2000]).prop_map(Off::Fixed),
    ]
}

/// A window around `T0`: open, not started yet, or closing within hours or days.
fn window() -> impl Strategy<Value = (Option<i64>, Option<i64>)> {
    let starts = prop_oneof![
        3 => Just(None),
        1 => Just(Some(-HOUR)),
        1 => select(vec![10 * SECOND, 10 * MINUTE]).prop_map(Some),
    ];
    let lasts = prop_oneof![
        3 => Just(None),
        1 => select(vec![MINUTE, HOUR, DAY + 1, 2 * DAY]).prop_map(Some),
    ];
    (starts, lasts).prop_map(|(starts, lasts)| (starts, lasts.map(|d| starts.unwrap_or(0).max(0) + d)))
}

pub fn world() -> impl Strategy<Value = World> {
    let shared = prop_oneof![2 => Just(false), 1 => Just(true)];
    // Small supplies sell out, which is where claims, lapses and rollbacks meet.
    let supply = prop_oneof![1 => Just(1usize), 3 => 2usize..=5];
    let mode = (shared, supply, prop::option::of(0i64..=2));
    let claims = (
        prop_oneof![1 => Just(None), 3 => (1i64..=3).prop_map(Some)],
        prop::option::of(1i64..=3),
        prop::option::of(select(vec![60i64, 3600, 86_400])),
    );
    let checkout = (
        select(vec![30i64, 300, 3600]),
        prop_oneof![2 => Just(1i64), 1 => 2i64..=3],
        prop::option::of(1i64..=3),
    );
    let money = (
        percent_or_fixed(),
        prop::option::of(select(vec![0i64, 300, 1500])),
        prop::option::of(select(vec![1000i64, 5000])),
    );
    (mode, claims, checkout, money, window()).prop_map(
        |(
            (shared, supply, room),
            (max_codes_per_user, claims_per_day, claim_ttl),
            (lock_ttl, max_uses, max_user_redemptions),
            (off, max_discount, min_order),
            (starts_at, expires_at),
        )| World {
            shared,
            supply,
            cap: room.map(|r| supply as i64 + r),
            // The plan sets how many users its books share.
            users: USERS.len(),
            // A user holds one instance of a shared code at most: which of several a lock or
            // a redemption acts on is the service's choice, and its answers do not name it.
            max_codes_per_user: if shared { Some(1) } else { max_codes_per_user },
            claims_per_day,
            claim_ttl,
            lock_ttl,
            max_uses,
            max_user_redemptions,
            off,
            max_discount,
            min_order,
            starts_at,
            expires_at,
        },
    )
}
