//! The admin's lists, a page at a time by keyset (never by offset, so a page costs the same deep
//! in a million codes): a book's codes in the order they were added, and redemptions newest first.

use coupon_core::{Book, CodeState, Timestamp};
use uuid::Uuid;

use super::books;
use crate::backend::Tx;
use crate::rows;
use crate::statements::Q;
use crate::{CodePage, CodeQuery, Page, RedemptionPage, RedemptionQuery, RedemptionsOf, StoreError};

/// The stored form of a derived state for `Q::ListCodes`, or `None` when no code of the book can
/// be in it (an expired book's codes are all `expired` or `redeemed`).
fn stored_filter(book: &Book, state: Option<CodeState>, now: Timestamp) -> Option<Option<&'static str>> {
    let expired = book.expires_at.is_some_and(|e| now > e);
    Some(match state {
        None => None,
        Some(CodeState::Redeemed) => Some("redeemed"),
        Some(CodeState::Expired) if expired => Some("unredeemed"),
        Some(_) if expired => return None,
        Some(CodeState::Expired) => return None,
        Some(CodeState::Available) => Some("available"),
        Some(CodeState::Active) => Some("active"),
        Some(CodeState::Locked) => Some("locked"),
    })
}

pub(crate) async fn codes<T: Tx>(tx: &T, q: &CodeQuery, now: Timestamp) -> Result<(Book, CodePage), StoreError> {
    let book = books::load(tx, q.book_id).await?;
    let Some(filter) = stored_filter(&book, q.state, now) else {
        return Ok((
            book,
            Page {
                items: Vec::new(),
                next: None,
            },
        ));
    };
    let rows = tx
        .query(
            Q::ListCodes,
            &[
                q.book_id.into(),
                q.after.unwrap_or(0).into(),
                (q.limit as i64 + 1).into(),
                filter.into(),
                now.millis().into(),
            ],
        )
        .await?;
    let codes = rows.iter().map(rows::code).collect::<Result<Vec<_>, _>>()?;
    Ok((book, Page::from_overfetch(codes, q.limit, |c| c.id)))
}

pub(crate) async fn redemptions<T: Tx>(tx: &T, q: &RedemptionQuery) -> Result<RedemptionPage, StoreError> {
    let (after_ts, after_id): (Option<i64>, Option<Uuid>) = match q.after {
        Some((ts, id)) => (Some(ts.millis()), Some(id)),
        None => (None, None),
    };
    let of = match &q.of {
        RedemptionsOf::Book(id) => {
            // An unknown book is a 404, not an empty history.
            books::load(tx, *id).await?;
            (Q::BookRedemptions, (*id).into())
        }
        RedemptionsOf::User(user) => (Q::UserRedemptions, user.as_str().into()),
    };
    let args = [of.1, after_ts.into(), after_id.into(), (q.limit as i64 + 1).into()];
    let rows = tx.query(of.0, &args).await?;
    let redemptions = rows.iter().map(rows::redemption).collect::<Result<Vec<_>, _>>()?;
    Ok(Page::from_overfetch(redemptions, q.limit, |r| {
        (r.redeemed_at, r.redemption_id)
    }))
}
