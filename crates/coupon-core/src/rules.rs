//! The rules of claim, lock, unlock and redeem, as pure decisions over state a backend has read
//! (under a row lock or in a serialized transaction). Backends still guard every write with a
//! conditional update; these functions decide *which* error a refused request gets, in the order
//! clients are promised: book state first, then ownership, then locks, then limits.

use std::collections::HashMap;

use uuid::Uuid;

use crate::{Amount, Applied, Book, CodeInstance, CouponError, StoredStatus, Timestamp};

/// A user's counters within one book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Holdings {
    /// Codes held now (active, locked or redeemed); a lapsed claim no longer counts.
    pub held: i64,
    /// The UTC day of `day_claims`.
    pub day: i64,
    /// Claims made on `day`; a lapsed claim still counts.
    pub day_claims: i64,
    pub redeemed: i64,
}

impl Holdings {
    pub fn claims_on(&self, day: i64) -> i64 {
        if self.day == day {
            self.day_claims
        } else {
            0
        }
    }

    /// Counts one more claim made at `now`.
    pub fn count_claim(&mut self, now: Timestamp) {
        let today = now.utc_day();
        self.day_claims = self.claims_on(today) + 1;
        self.day = today;
        self.held += 1;
    }
}

/// How many of a batch of claims (one entry per request, in arrival order, naming its user) the
/// rules accept, each counted against the requests before it as if it succeeded: the number of
/// codes the batch asks for.
pub fn codes_wanted(book: &Book, holdings: &HashMap<String, Holdings>, users: &[&str], now: Timestamp) -> usize {
    let mut tentative = holdings.clone();
    users
        .iter()
        .filter(|user| {
            let h = tentative.entry(user.to_string()).or_default();
            let accepted = check_claim(book, h, now).is_ok();
            if accepted {
                h.count_claim(now);
            }
            accepted
        })
        .count()
}

/// Hands `dealt` codes to a batch of claims in arrival order, exactly as if each request ran alone
/// after the ones before it: a refused request gets its refusal, an accepted one the next code, or
/// `out_of_stock` once the codes run out. Successful claims are counted in `holdings`.
///
/// Given `codes_wanted` codes (or all that were left), no code is left over: a request refused
/// against tentative counts is refused here too, unless an earlier claim of its user failed, and
/// that only happens once the codes have run out.
pub fn hand_out<T>(
    book: &Book,
    holdings: &mut HashMap<String, Holdings>,
    users: &[&str],
    dealt: Vec<T>,
    now: Timestamp,
) -> Vec<Result<T, CouponError>> {
    let mut dealt = dealt.into_iter();
    users
        .iter()
        .map(|user| {
            let h = holdings.entry(user.to_string()).or_default();
            check_claim(book, h, now)?;
            let code = dealt.next().ok_or(CouponError::OutOfStock)?;
            h.count_claim(now);
            Ok(code)
        })
        .collect()
}

/// May this user claim one more code of this book?
pub fn check_claim(book: &Book, holdings: &Holdings, now: Timestamp) -> Result<(), CouponError> {
    book.check_claimable(now)?;
    if book.policies.max_codes_per_user.is_some_and(|max| holdings.held >= max) {
        return Err(CouponError::UserLimitReached);
    }
    if book
        .policies
        .claims_per_user_per_day
        .is_some_and(|max| holdings.claims_on(now.utc_day()) >= max)
    {
        return Err(CouponError::DailyLimitReached);
    }
    Ok(())
}

/// Where a lock, unlock or redeem finds the code: it must be the user's and not used up.
fn check_held(book: &Book, code: &CodeInstance, user: &str, now: Timestamp) -> Result<(), CouponError> {
    book.check_usable(now)?;
    if !code.is_held_by(user, now) {
        return Err(CouponError::NotAssignedToUser);
    }
    if code.status == StoredStatus::Redeemed {
        return Err(CouponError::AlreadyRedeemed);
    }
    Ok(())
}

pub fn check_lock(book: &Book, code: &CodeInstance, user: &str, now: Timestamp) -> Result<(), CouponError> {
    check_held(book, code, user, now)?;
    if code.live_lock(now).is_some() {
        return Err(CouponError::Locked);
    }
    Ok(())
}

/// Releasing a hold needs a live one; if the caller names a lock, it must be that one.
pub fn check_unlock(
    book: &Book,
    code: &CodeInstance,
    user: &str,
    lock_id: Option<Uuid>,
    now: Timestamp,
) -> Result<(), CouponError> {
    if book.status == crate::BookStatus::Archived {
        return Err(CouponError::BookInactive);
    }
    if !code.is_held_by(user, now) {
        return Err(CouponError::NotAssignedToUser);
    }
    if code.status == StoredStatus::Redeemed {
        return Err(CouponError::AlreadyRedeemed);
    }
    match code.live_lock(now) {
        None => Err(CouponError::NotLocked),
        Some(live) if lock_id.is_some_and(|id| id != live) => Err(CouponError::Locked),
        Some(_) => Ok(()),
    }
}

/// May this user redeem the code now, and for what discount? `None` when no order amount is given.
pub fn check_redeem(
    book: &Book,
    code: &CodeInstance,
    user: &str,
    holdings: &Holdings,
    lock_id: Option<Uuid>,
    order_amount: Option<Amount>,
    now: Timestamp,
) -> Result<Option<Applied>, CouponError> {
    check_held(book, code, user, now)?;
    if code.redemptions >= book.policies.max_redemptions_per_code {
        return Err(CouponError::AlreadyRedeemed);
    }
    if let Some(live) = code.live_lock(now) {
        if lock_id != Some(live) {
            return Err(CouponError::Locked);
        }
    }
    if book
        .policies
        .max_redemptions_per_user
        .is_some_and(|max| holdings.redeemed >= max)
    {
        return Err(CouponError::UserLimitReached);
    }
    match order_amount {
        Some(amount) => book.discount.apply(amount.minor_units()).map(Some),
        None if book.discount.min_order_amount.is_some() => Err(CouponError::OrderAmountRequired),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::book;
    use crate::{Discount, DiscountKind};

    const T0: i64 = 1_000_000;

    fn amount(minor_units: i64) -> Amount {
        Amount::parse("order_amount", minor_units).unwrap()
    }

    fn held(owner: &str) -> CodeInstance {
        CodeInstance {
            id: 1,
            book_id: Uuid::nil(),
            code: "C".into(),
            instance: 0,
            status: StoredStatus::Active,
            owner: Some(owner.into()),
            claimed_at: Some(Timestamp::from_millis(T0)),
            claim_expires_at: None,
            lock_id: None,
            locked_until: None,
            redemptions: 0,
            metadata: Default::default(),
        }
    }

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn claim_limits_come_in_order() {
        let b = book(|b| {
            b.policies.max_codes_per_user = Some(1);
            b.policies.claims_per_user_per_day = Some(1);
        });
        let now = at(T0);
        let day = now.utc_day();
        assert_eq!(check_claim(&b, &Holdings::default(), now), Ok(()));
        let full = Holdings {
            held: 1,
            day,
            day_claims: 1,
            redeemed: 0,
        };
        assert_eq!(check_claim(&b, &full, now), Err(CouponError::UserLimitReached));
        let lapsed = Holdings { held: 0, ..full };
        assert_eq!(check_claim(&b, &lapsed, now), Err(CouponError::DailyLimitReached));
        let yesterday = Holdings {
            held: 0,
            day: day - 1,
            ..full
        };
        assert_eq!(check_claim(&b, &yesterday, now), Ok(()));
    }

    #[test]
    fn a_lock_blocks_redeem_without_its_id() {
        let b = book(|_| {});
        let mut c = held("alice");
        let lock = Uuid::from_u128(7);
        c.lock_id = Some(lock);
        c.locked_until = Some(at(T0 + 1000));
        let h = Holdings::default();
        assert_eq!(
            check_redeem(&b, &c, "alice", &h, None, None, at(T0)),
            Err(CouponError::Locked)
        );
        assert_eq!(
            check_redeem(&b, &c, "alice", &h, Some(lock), Some(amount(1000)), at(T0))
                .unwrap()
                .unwrap()
                .discount_applied,
            100
        );
        assert_eq!(
            check_redeem(&b, &c, "bob", &h, Some(lock), None, at(T0)),
            Err(CouponError::NotAssignedToUser)
        );
        // Once the lock has run out, anyone holding the code may redeem without it.
        assert_eq!(check_redeem(&b, &c, "alice", &h, None, None, at(T0 + 1000)), Ok(None));
        assert_eq!(check_lock(&b, &c, "alice", at(T0)), Err(CouponError::Locked));
        assert_eq!(
            check_unlock(&b, &c, "alice", Some(Uuid::from_u128(8)), at(T0)),
            Err(CouponError::Locked)
        );
        assert_eq!(
            check_unlock(&b, &c, "alice", None, at(T0 + 1000)),
            Err(CouponError::NotLocked)
        );
    }

    #[test]
    fn a_claim_lapses_only_without_a_live_lock() {
        let mut c = held("alice");
        c.claim_expires_at = Some(at(T0 + 10));
        assert!(c.is_held_by("alice", at(T0 + 9)));
        assert!(!c.is_held_by("alice", at(T0 + 10)));
        c.lock_id = Some(Uuid::from_u128(1));
        c.locked_until = Some(at(T0 + 20));
        assert!(c.is_held_by("alice", at(T0 + 15)));
        assert!(!c.is_held_by("alice", at(T0 + 20)));
    }

    #[test]
    fn redeem_checks_limits_and_minimums() {
        let b = book(|b| {
            b.policies.max_redemptions_per_user = Some(1);
            b.discount = Discount::new(
                DiscountKind::FixedAmount { amount: 500 },
                "USD".into(),
                None,
                Some(1000),
            )
            .unwrap();
        });
        let c = held("alice");
        let none = Holdings::default();
        let used = Holdings { redeemed: 1, ..none };
        assert_eq!(
            check_redeem(&b, &c, "alice", &used, None, Some(amount(2000)), at(T0)),
            Err(CouponError::UserLimitReached)
        );
        assert_eq!(
            check_redeem(&b, &c, "alice", &none, None, Some(amount(999)), at(T0)),
            Err(CouponError::MinOrderNotMet)
        );
        assert_eq!(
            check_redeem(&b, &c, "alice", &none, None, None, at(T0)),
            Err(CouponError::OrderAmountRequired)
        );
        let mut spent = c.clone();
        spent.status = StoredStatus::Redeemed;
        spent.redemptions = 1;
        assert_eq!(
            check_redeem(&b, &spent, "alice", &none, None, Some(amount(2000)), at(T0)),
            Err(CouponError::AlreadyRedeemed)
        );
    }

    /// One request at a time against a stock of `stock` codes: the answers a batch must match.
    fn one_at_a_time(b: &Book, users: &[&str], stock: usize, now: Timestamp) -> Vec<Result<usize, CouponError>> {
        let mut holdings: HashMap<String, Holdings> = HashMap::new();
        let mut next = 0;
        users
            .iter()
            .map(|user| {
                let h = holdings.entry(user.to_string()).or_default();
                check_claim(b, h, now)?;
                if next == stock {
                    return Err(CouponError::OutOfStock);
                }
                h.count_claim(now);
                next += 1;
                Ok(next - 1)
            })
            .collect()
    }

    proptest::proptest! {
        #[test]
        fn a_batch_answers_as_one_request_at_a_time(
            picks in proptest::collection::vec(0usize..4, 0..24),
            stock in 0usize..30,
            max in 1i64..3,
            daily in proptest::option::of(1i64..3),
        ) {
            let b = book(|b| {
                b.policies.max_codes_per_user = Some(max);
                b.policies.claims_per_user_per_day = daily;
            });
            let names = ["a", "b", "c", "d"];
            let users: Vec<&str> = picks.iter().map(|&i| names[i]).collect();
            let now = at(T0);
            let mut holdings = HashMap::new();
            let wanted = codes_wanted(&b, &holdings, &users, now);
            let dealt: Vec<usize> = (0..wanted.min(stock)).collect();
            let answers = hand_out(&b, &mut holdings, &users, dealt, now);
            proptest::prop_assert_eq!(&answers, &one_at_a_time(&b, &users, stock, now));
            // Every dealt code went to someone: nothing is left to give back.
            let given = answers.iter().filter(|a| a.is_ok()).count();
            proptest::prop_assert_eq!(given, wanted.min(stock));
            proptest::prop_assert_eq!(holdings.values().map(|h| h.held).sum::<i64>() as usize, given);
        }
    }
}
