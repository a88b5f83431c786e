//! Low-stock and sold-out alerts, looked at after every change of a book's pool, in its
//! transaction: the pool counter says how many codes are left, the book's recorded level says
//! what was announced, and `coupon_core::stock` decides what to announce now.

use coupon_core::{Book, StockLevel, Timestamp};

use crate::backend::{Fields, Tx};
use crate::outbox::{Change, Journal};
use crate::statements::Q;
use crate::StoreError;

/// Whether a move of the level is announced: a book's first level (at its creation) is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Announce {
    Yes,
    Quietly,
}

/// Records the book's stock level after a change of its pool or threshold, and notes an alert
/// for each level it fell to.
pub(crate) async fn settle<T: Tx>(
    tx: &T,
    events: &Journal,
    book: &Book,
    announce: Announce,
    now: Timestamp,
) -> Result<(), StoreError> {
    let row = tx
        .first(Q::PoolLevel, &[book.id.into()])
        .await?
        .ok_or(StoreError::Conflict("a book's pool"))?;
    let (pool, recorded) = (row.i64("pool")?, row.string("stock_level")?);
    let before =
        StockLevel::parse(&recorded).ok_or_else(|| StoreError::Corrupt(format!("stock level {recorded:?}")))?;
    let threshold = book.low_stock_threshold;
    let level = StockLevel::of(pool, threshold);
    if level == before {
        return Ok(());
    }
    tx.exec(Q::SetStockLevel, &[book.id.into(), level.as_str().into()])
        .await?;
    if announce == Announce::Yes {
        for alert in before.alerts(level, threshold) {
            let book_id = book.id;
            events.note(
                now,
                Change::Stock {
                    book_id,
                    alert,
                    pool,
                    threshold,
                },
            );
        }
    }
    Ok(())
}
