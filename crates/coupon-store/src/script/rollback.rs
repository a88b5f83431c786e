//! Undoing a redemption when its order fails (a declined payment, a cancellation, a refund): the
//! code gets its use back and the user's count drops. The code's row is locked first, as every
//! redemption of it does, so a rollback and a redeem of one code queue on it; then the redemption,
//! then the user's row. Rolling back is allowed whatever the book's status or window: it undoes
//! money already counted.

use coupon_core::{CouponError, Redemption, Timestamp};

use super::{book, each, Decided};
use crate::backend::{Fields, Tx};
use crate::outbox::{Change, Journal};
use crate::rows;
use crate::statements::Q;
use crate::{RollbackRequest, StoreError};

write!(Rollback { batch: Vec<RollbackRequest>, now: Timestamp } -> Vec<Result<Redemption, CouponError>> =
    |tx, s, events| each(&s.batch, |req| rollback(tx, events, req, s.now)).await; keyed = batch);

/// Undoes a redemption: the code (locked first, as every redemption of it does) gets its use back
/// and is its owner's to redeem again, and the user's count drops. A redemption already rolled
/// back is answered as it is, counted once.
async fn rollback<T: Tx>(tx: &T, events: &Journal, req: &RollbackRequest, now: Timestamp) -> Decided<Redemption> {
    let redemption_id = req.redemption_id.into();
    let found = tx.first(Q::RedemptionRead { redemption_id }).await?;
    let code_id = match found {
        Some(row) => row.i64("code_id")?.into(),
        None => return Ok(Err(CouponError::NotFound("redemption"))),
    };
    let code = tx.first(Q::CodeLock { code_id }).await?;
    let code = rows::code(&code.ok_or(StoreError::Conflict("a redemption's code is gone"))?)?;
    // Read again under the code's lock: a rollback that got there first has committed.
    let row = tx.first(Q::RedemptionLock { redemption_id }).await?;
    let mut redemption = rows::redemption(&row.ok_or(StoreError::Conflict("a redemption is gone"))?)?;
    if redemption.rollback.is_some() {
        return Ok(Ok(redemption));
    }
    let book = book::load(tx, code.book_id).await?;
    let rollback = req.rollback.clone();
    let reclaim_until = book
        .policies
        .claim_ttl_seconds
        .map(|ttl| now.plus_seconds(ttl).millis());
    let user = redemption.user_id.as_str();
    let metadata = rows::metadata_json(&rollback.metadata);
    let mark = Q::RollBack {
        redemption_id: redemption.redemption_id.into(),
        rolled_back_at: rollback.rolled_back_at.millis().into(),
        reason: rollback.reason.as_deref().into(),
        metadata: (&metadata).into(),
    };
    let give_back = Q::GiveBackUse {
        code_id: code.id.into(),
        user: user.into(),
        reclaim_until: reclaim_until.into(),
    };
    let uncount = Q::UncountRedemption {
        book_id: book.id.into(),
        user: user.into(),
    };
    let (marked, given, uncounted) = futures::try_join!(tx.exec(mark), tx.exec(give_back), tx.exec(uncount))?;
    if marked != 1 || given != 1 || uncounted != 1 {
        return Err(StoreError::Conflict("rollback"));
    }
    redemption.rollback = Some(rollback);
    events.note(now, Change::RolledBack(redemption.clone()));
    Ok(Ok(redemption))
}
