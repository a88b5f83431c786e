//! Claims that ran out: a book with a claim TTL gets its lapsed claims back before each claim batch
//! deals, queued to be dealt first, and their holders' counts drop (`claim.lapsed`).

use std::collections::BTreeMap;

use coupon_core::{Book, Timestamp};
use uuid::Uuid;

use crate::backend::{Fields, Tx};
use crate::outbox::{Change, Journal};
use crate::statements::Q;
use crate::StoreError;

/// Puts the book's lapsed claims back in the pool, queued to be dealt first, and takes them off
/// their holders' counts; says how many came back. Owners are read from the rows as locked, never
/// from an older snapshot; rows another transaction holds (a redemption racing the lapse) are
/// skipped until the next claim.
pub(crate) async fn return_lapsed<T: Tx>(
    tx: &T,
    events: &Journal,
    book: &Book,
    now: Timestamp,
) -> Result<usize, StoreError> {
    if book.policies.claim_ttl_seconds.is_none() {
        return Ok(0);
    }
    let rows = tx
        .query(Q::Lapsed {
            book_id: book.id.into(),
            now: now.millis().into(),
        })
        .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut ids = Vec::with_capacity(rows.len());
    let mut lost: BTreeMap<String, i64> = BTreeMap::new();
    for row in &rows {
        let (code, user_id) = (row.string("code")?, row.string("owner")?);
        ids.push(row.i64("id")?);
        *lost.entry(user_id.clone()).or_insert(0) += 1;
        events.note(
            now,
            Change::Lapsed {
                book_id: book.id,
                code,
                user_id,
            },
        );
    }
    let (owners, counts): (Vec<&str>, Vec<i64>) = lost.iter().map(|(u, n)| (u.as_str(), *n)).unzip();
    let free = Q::FreeCodes {
        code_ids: ids.as_slice().into(),
    };
    let (freed, (), _) = futures::try_join!(async { tx.exec(free).await }, queue(tx, book.id, &ids), async {
        let charge = Q::ChargeLapsed {
            book_id: book.id.into(),
            users: owners.as_slice().into(),
            lapsed: counts.as_slice().into(),
        };
        tx.exec(charge).await
    },)?;
    if freed != ids.len() as u64 {
        return Err(StoreError::Conflict("lapsed codes"));
    }
    Ok(ids.len())
}

/// Queues codes to be dealt first next time.
pub(crate) async fn queue<T: Tx>(tx: &T, book_id: Uuid, ids: &[i64]) -> Result<(), StoreError> {
    if !ids.is_empty() {
        tx.exec(Q::QueueCodes {
            book_id: book_id.into(),
            code_ids: ids.into(),
        })
        .await?;
    }
    Ok(())
}

/// Takes codes off the queue.
pub(crate) async fn unqueue<T: Tx>(tx: &T, book_id: Uuid, ids: &[i64]) -> Result<(), StoreError> {
    if !ids.is_empty() {
        tx.exec(Q::UnqueueCodes {
            book_id: book_id.into(),
            code_ids: ids.into(),
        })
        .await?;
    }
    Ok(())
}
