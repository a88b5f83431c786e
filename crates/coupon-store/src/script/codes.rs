//! Lock, unlock and redeem of one user's code, and the reads of codes as a user sees them. The
//! rows a decision rests on are read first (locked on PostgreSQL; SQLite's one writer serializes
//! everything), the rules decide, and only then is anything written, each write a conditional
//! update whose row count is checked: a refused request leaves nothing behind.

use coupon_core::rules::{self, Holdings};
use coupon_core::{Book, CodeInstance, CodeText, Redemption, Timestamp};
use uuid::Uuid;

use super::books;
use crate::backend::Fields;
use crate::backend::Tx;
use crate::outbox::{Change, Journal};
use crate::rows;
use crate::statements::Q;
use crate::{CodeView, LockRequest, Locked, RedeemRequest, RollbackRequest, StoreError, UnlockRequest};

/// The instance of `code` that `user` acts on, locked: one they own (the one under `lock_id`
/// first), else instance 0 so the rules can tell why it is not theirs.
async fn find_for_user<T: Tx>(
    tx: &T,
    code: &CodeText,
    user: &str,
    lock_id: Option<Uuid>,
) -> Result<CodeInstance, StoreError> {
    if let Some(row) = tx
        .first(Q::FindOwned, &[code.as_str().into(), user.into(), lock_id.into()])
        .await?
    {
        return rows::code(&row);
    }
    let row = tx.first(Q::CodeZero, &[code.as_str().into()]).await?;
    rows::code(&row.ok_or(StoreError::not_found("code"))?)
}

/// The user's counters in the book (zero if none yet), their row locked if it exists.
async fn holdings<T: Tx>(tx: &T, book_id: Uuid, user: &str) -> Result<Holdings, StoreError> {
    match tx.first(Q::Holdings, &[book_id.into(), user.into()]).await? {
        Some(row) => rows::holdings(&row),
        None => Ok(Holdings::default()),
    }
}

pub(crate) async fn lock<T: Tx>(
    tx: &T,
    events: &Journal,
    req: &LockRequest,
    now: Timestamp,
) -> Result<Locked, StoreError> {
    let user = req.user_id.as_str();
    let inst = find_for_user(tx, &req.code, user, None).await?;
    let book = books::load(tx, inst.book_id).await?;
    rules::check_lock(&book, &inst, user, now)?;
    let lock_id = Uuid::now_v7();
    let until = now.plus_seconds(book.policies.lock_ttl_seconds);
    let n = tx
        .exec(
            Q::LockCode,
            &[
                inst.id.into(),
                user.into(),
                lock_id.into(),
                until.millis().into(),
                now.millis().into(),
            ],
        )
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
    Ok(locked)
}

pub(crate) async fn unlock<T: Tx>(
    tx: &T,
    events: &Journal,
    req: &UnlockRequest,
    now: Timestamp,
) -> Result<(), StoreError> {
    let user = req.user_id.as_str();
    let inst = find_for_user(tx, &req.code, user, req.lock_id).await?;
    let book = books::load(tx, inst.book_id).await?;
    rules::check_unlock(&book, &inst, user, req.lock_id, now)?;
    let n = tx
        .exec(
            Q::UnlockCode,
            &[inst.id.into(), user.into(), inst.lock_id.into(), now.millis().into()],
        )
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
    Ok(())
}

pub(crate) async fn redeem<T: Tx>(
    tx: &T,
    events: &Journal,
    req: &RedeemRequest,
    now: Timestamp,
) -> Result<Redemption, StoreError> {
    let user = req.user_id.as_str();
    // Locking the code first serializes repeats of one redemption: the second sees the first's record.
    let inst = find_for_user(tx, &req.code, user, req.lock_id).await?;
    if let Some(order_id) = &req.order_id {
        let prior = tx
            .first(
                Q::PriorRedemption,
                &[inst.code.as_str().into(), user.into(), order_id.as_str().into()],
            )
            .await?;
        if let Some(prior) = prior {
            return rows::redemption(&prior);
        }
    }
    let (book, held) = futures::try_join!(books::load(tx, inst.book_id), holdings(tx, inst.book_id, user))?;
    let applied = rules::check_redeem(&book, &inst, user, &held, req.lock_id, req.order_amount, now)?;
    let redemption = req.record(&inst, applied, now);
    let metadata = rows::metadata_json(&redemption.metadata);
    let record = [
        redemption.redemption_id.into(),
        inst.id.into(),
        book.id.into(),
        inst.code.as_str().into(),
        user.into(),
        (&redemption.order_id).into(),
        redemption.order_amount.into(),
        redemption.discount_applied.into(),
        redemption.final_price.into(),
        now.millis().into(),
        (&metadata).into(),
    ];
    let use_code = [
        inst.id.into(),
        user.into(),
        book.policies.max_redemptions_per_code.into(),
        now.millis().into(),
        req.lock_id.into(),
    ];
    let count = [
        book.id.into(),
        user.into(),
        book.policies.max_redemptions_per_user.into(),
    ];
    let (recorded, used, counted) = futures::try_join!(
        tx.exec(Q::InsertRedemption, &record),
        tx.exec(Q::UseCode, &use_code),
        tx.exec(Q::CountRedemption, &count),
    )?;
    if recorded != 1 {
        return Err(StoreError::Conflict("redemption recorded twice"));
    }
    if used != 1 || counted != 1 {
        return Err(StoreError::Conflict("redemption limits"));
    }
    events.note(now, Change::Redeemed(redemption.clone()));
    Ok(redemption)
}

/// Undoes a redemption: the code (locked first, as every redemption of it does) gets its use back
/// and is its owner's to redeem again, and the user's count drops. A redemption already rolled
/// back is answered as it is, counted once.
pub(crate) async fn rollback<T: Tx>(
    tx: &T,
    events: &Journal,
    req: &RollbackRequest,
    now: Timestamp,
) -> Result<Redemption, StoreError> {
    let found = tx.first(Q::RedemptionRead, &[req.redemption_id.into()]).await?;
    let code_id = found.ok_or(StoreError::not_found("redemption"))?.i64("code_id")?;
    let code = tx.first(Q::CodeLock, &[code_id.into()]).await?;
    let code = rows::code(&code.ok_or(StoreError::Conflict("a redemption's code is gone"))?)?;
    // Read again under the code's lock: a rollback that got there first has committed.
    let row = tx.first(Q::RedemptionLock, &[req.redemption_id.into()]).await?;
    let mut redemption = rows::redemption(&row.ok_or(StoreError::Conflict("a redemption is gone"))?)?;
    if redemption.rollback.is_some() {
        return Ok(redemption);
    }
    let book = books::load(tx, code.book_id).await?;
    let rollback = req.rollback.clone();
    let reclaim_until = book
        .policies
        .claim_ttl_seconds
        .map(|ttl| now.plus_seconds(ttl).millis());
    let user = redemption.user_id.as_str();
    let metadata = rows::metadata_json(&rollback.metadata);
    let mark = [
        redemption.redemption_id.into(),
        rollback.rolled_back_at.millis().into(),
        rollback.reason.as_deref().into(),
        (&metadata).into(),
    ];
    let give_back = [code.id.into(), user.into(), reclaim_until.into()];
    let uncount = [book.id.into(), user.into()];
    let (marked, given, uncounted) = futures::try_join!(
        tx.exec(Q::RollBack, &mark),
        tx.exec(Q::GiveBackUse, &give_back),
        tx.exec(Q::UncountRedemption, &uncount),
    )?;
    if marked != 1 || given != 1 || uncounted != 1 {
        return Err(StoreError::Conflict("rollback"));
    }
    redemption.rollback = Some(rollback);
    events.note(now, Change::RolledBack(redemption.clone()));
    Ok(redemption)
}

/// The code as `user` sees it, with its book and the user's counters.
pub(crate) async fn view<T: Tx>(
    tx: &T,
    code: &CodeText,
    user: &str,
    lock_id: Option<Uuid>,
) -> Result<CodeView, StoreError> {
    let row = tx
        .first(Q::CodeView, &[code.as_str().into(), user.into(), lock_id.into()])
        .await?
        .ok_or(StoreError::not_found("code"))?;
    Ok(CodeView {
        code: rows::code(&row)?,
        book: rows::book(&row, "b_")?,
        holdings: rows::holdings(&row)?,
    })
}

/// Every code the user has owned, with its book.
pub(crate) async fn of_user<T: Tx>(tx: &T, user: &str) -> Result<Vec<(CodeInstance, Book)>, StoreError> {
    let rows = tx.query(Q::UserCodes, &[user.into()]).await?;
    rows.iter()
        .map(|r| Ok((rows::code(r)?, rows::book(r, "b_")?)))
        .collect()
}
