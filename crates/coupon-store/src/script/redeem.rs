//! Redeeming a code against an order, and the redemption history. A redemption locks the code's
//! row first (as a rollback of it does, so they queue on it), then the user's counters. Every
//! write is guarded and its row count checked, and the rules decide before anything is written.

use coupon_core::rules;
use coupon_core::{CouponError, Redemption, Timestamp};
use uuid::Uuid;

use super::code::{find_for_user, holdings};
use super::{book, each, Decided};
use crate::backend::Tx;
use crate::outbox::{Change, Journal};
use crate::rows;
use crate::statements::Q;
use crate::StoreError;
use crate::{Page, RedeemRequest, RedemptionPage, RedemptionQuery, RedemptionsOf};

write!(Redeem { batch: Vec<RedeemRequest>, now: Timestamp } -> Vec<Result<Redemption, CouponError>> =
    |tx, s, events| each(&s.batch, |req| redeem(tx, events, req, s.now)).await; keyed = batch);
read!(ListRedemptions { query: RedemptionQuery } -> RedemptionPage = |tx, s| history(tx, &s.query).await);

async fn redeem<T: Tx>(tx: &T, events: &Journal, req: &RedeemRequest, now: Timestamp) -> Decided<Redemption> {
    let user = req.user_id.as_str();
    // Locking the code first serializes repeats of one redemption: the second sees the first's record.
    let inst = decide!(find_for_user(tx, &req.code, user, req.lock_id).await?);
    if let Some(order_id) = &req.order_id {
        let prior = tx
            .first(Q::PriorRedemption {
                code: inst.code.as_str().into(),
                user: user.into(),
                order_id: order_id.as_str().into(),
            })
            .await?;
        if let Some(prior) = prior {
            return Ok(Ok(rows::redemption(&prior)?));
        }
    }
    let (book, held) = futures::try_join!(book::load(tx, inst.book_id), holdings(tx, inst.book_id, user))?;
    let applied = decide!(rules::check_redeem(
        &book,
        &inst,
        user,
        &held,
        req.lock_id,
        req.order_amount,
        now
    ));
    let redemption = req.record(&inst, applied, now);
    let metadata = rows::metadata_json(&redemption.metadata);
    let record = Q::InsertRedemption {
        id: redemption.redemption_id.into(),
        code_id: inst.id.into(),
        book_id: book.id.into(),
        code: inst.code.as_str().into(),
        user: user.into(),
        order_id: (&redemption.order_id).into(),
        order_amount: redemption.order_amount.into(),
        discount_applied: redemption.discount_applied.into(),
        final_price: redemption.final_price.into(),
        redeemed_at: now.millis().into(),
        metadata: (&metadata).into(),
    };
    let use_code = Q::UseCode {
        code_id: inst.id.into(),
        user: user.into(),
        max_uses: book.policies.max_redemptions_per_code.into(),
        now: now.millis().into(),
        lock_id: req.lock_id.into(),
    };
    let count = Q::CountRedemption {
        book_id: book.id.into(),
        user: user.into(),
        max_redemptions: book.policies.max_redemptions_per_user.into(),
    };
    let (recorded, used, counted) = futures::try_join!(tx.exec(record), tx.exec(use_code), tx.exec(count))?;
    if recorded != 1 {
        return Err(StoreError::Conflict("redemption recorded twice"));
    }
    if used != 1 || counted != 1 {
        return Err(StoreError::Conflict("redemption limits"));
    }
    events.note(now, Change::Redeemed(redemption.clone()));
    Ok(Ok(redemption))
}

/// A book's or a user's redemptions, newest first, rolled-back ones included.
async fn history<T: Tx>(tx: &T, q: &RedemptionQuery) -> Result<RedemptionPage, StoreError> {
    let (after_ts, after_id): (Option<i64>, Option<Uuid>) = match q.after {
        Some((ts, id)) => (Some(ts.millis()), Some(id)),
        None => (None, None),
    };
    let (after_at, after_id, limit) = (after_ts.into(), after_id.into(), (q.limit as i64 + 1).into());
    let page = match &q.of {
        RedemptionsOf::Book(id) => {
            // An unknown book is a 404, not an empty history.
            book::load(tx, *id).await?;
            let book_id = (*id).into();
            Q::BookRedemptions {
                book_id,
                after_at,
                after_id,
                limit,
            }
        }
        RedemptionsOf::User(user) => Q::UserRedemptions {
            user: user.as_str().into(),
            after_at,
            after_id,
            limit,
        },
    };
    let rows = tx.query(page).await?;
    let redemptions = rows.iter().map(rows::redemption).collect::<Result<Vec<_>, _>>()?;
    Ok(Page::from_overfetch(redemptions, q.limit, |r| {
        (r.redeemed_at, r.redemption_id)
    }))
}
