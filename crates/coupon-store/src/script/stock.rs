//! Low-stock and sold-out alerts, looked at after every change of a book's pool, in its
//! transaction: the pool counter (read with the book's row lock, and moved by the change) says how
//! many codes are left, the book's recorded level says what was announced, and
//! `coupon_core::stock` decides what to announce now.

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

/// A book's pool as its row said when it was locked: the codes nobody holds, and the level last
/// announced.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pool {
    pub count: i64,
    pub level: StockLevel,
}

impl Pool {
    /// A new book's, before its codes are counted: nothing announced yet.
    pub const NEW: Pool = Pool {
        count: 0,
        level: StockLevel::Plenty,
    };

    pub fn read(r: &impl Fields) -> Result<Pool, StoreError> {
        let recorded = r.string("stock_level")?;
        Ok(Pool {
            count: r.i64("pool")?,
            level: StockLevel::parse(&recorded)
                .ok_or_else(|| StoreError::Corrupt(format!("stock level {recorded:?}")))?,
        })
    }
}

/// Records the book's stock level once its pool went from `before` to `pool` codes (or its
/// threshold changed), and notes an alert for each level it fell to.
pub(crate) async fn settle<T: Tx>(
    tx: &T,
    events: &Journal,
    book: &Book,
    (before, pool): (Pool, i64),
    announce: Announce,
    now: Timestamp,
) -> Result<(), StoreError> {
    let threshold = book.low_stock_threshold;
    let level = StockLevel::of(pool, threshold);
    if level == before.level {
        return Ok(());
    }
    tx.exec(Q::SetStockLevel {
        book_id: book.id.into(),
        level: level.as_str().into(),
    })
    .await?;
    if announce == Announce::Yes {
        for alert in before.level.alerts(level, threshold) {
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
