//! A checkout lock: a user holds their code for one checkout until `locked_until`, and releases
//! it. The code's row is locked first (as every redemption of it does), the rules decide, and
//! only then is the lock written, with a guarded update whose row count is checked.

use coupon_core::rules;
use coupon_core::{CouponError, Timestamp};
use uuid::Uuid;

use super::code::find_for_user;
use super::{book, each, Decided};
use crate::outbox::{Change, Journal};
use crate::statements::Q;
use crate::{LockRequest, Locked, StoreError, UnlockRequest};

write!(
    /// A batch of locks: its requests run at once (pipelined on PostgreSQL), each answered alone.
    Lock { batch: Vec<LockRequest>, now: Timestamp } -> Vec<Result<Locked, CouponError>> =
    |tx, s, events| each(&s.batch, |req| lock(tx, events, req, s.now)).await; keyed = batch
);
write!(Unlock { batch: Vec<UnlockRequest>, now: Timestamp } -> Vec<Result<(), CouponError>> =
    |tx, s, events| each(&s.batch, |req| unlock(tx, events, req, s.now)).await; keyed = batch);

async fn lock<T: crate::backend::Tx>(tx: &T, events: &Journal, req: &LockRequest, now: Timestamp) -> Decided<Locked> {
    let user = req.user_id.as_str();
    let inst = decide!(find_for_user(tx, &req.code, user, None).await?);
    let book = book::load(tx, inst.book_id).await?;
    decide!(rules::check_lock(&book, &inst, user, now));
    let lock_id = Uuid::now_v7();
    let until = now.plus_seconds(book.policies.lock_ttl_seconds);
    let n = tx
        .exec(Q::LockCode {
            code_id: inst.id.into(),
            user: user.into(),
            lock_id: lock_id.into(),
            until: until.millis().into(),
            now: now.millis().into(),
        })
        .await?;
    if n != 1 {
        return Err(StoreError::Conflict("lock"));
    }
    let locked = Locked {
        code: inst.code,
        lock_id,
        locked_until: until,
    };
    let (book_id, user_id) = (inst.book_id, user.to_owned());
    events.note(
        now,
        Change::Locked {
            book_id,
            user_id,
            locked: locked.clone(),
        },
    );
    Ok(Ok(locked))
}

async fn unlock<T: crate::backend::Tx>(tx: &T, events: &Journal, req: &UnlockRequest, now: Timestamp) -> Decided<()> {
    let user = req.user_id.as_str();
    let inst = decide!(find_for_user(tx, &req.code, user, req.lock_id).await?);
    let book = book::load(tx, inst.book_id).await?;
    decide!(rules::check_unlock(&book, &inst, user, req.lock_id, now));
    let n = tx
        .exec(Q::UnlockCode {
            code_id: inst.id.into(),
            user: user.into(),
            lock_id: inst.lock_id.into(),
            now: now.millis().into(),
        })
        .await?;
    if n != 1 {
        return Err(StoreError::Conflict("unlock"));
    }
    let (book_id, user_id) = (inst.book_id, user.to_owned());
    events.note(
        now,
        Change::Unlocked {
            book_id,
            user_id,
            code: inst.code,
        },
    );
    Ok(Ok(()))
}
