//! Idempotency keys' records: written with a request's effect, read when a key comes again, and
//! purged past their retention (`crate::idempotency`).

use coupon_core::Timestamp;

use crate::backend::{Fields, Tx};
use crate::idempotency::{Record, Reply};
use crate::statements::Q;
use crate::StoreError;

read!(
    /// A key's record: the digest of the request that wrote it, and its answer.
    FindKey { scope: String, key: String } -> Option<(String, Reply)> = |tx, s| find(tx, &s.scope, &s.key).await
);
write!(
    /// Records a refused request's answer: its transaction wrote nothing else.
    RecordRefusal { records: Vec<Record> } -> () = |tx, s, _events| record(tx, &s.records).await
);
write!(
    /// Deletes up to `limit` keys recorded before `before`: a day of a sale's keys goes a slice per
    /// transaction, so claims never wait long behind the purge (SQLite has one writer).
    PurgeKeys { before: Timestamp, limit: i64 } -> u64 = |tx, s, _events| {
        tx.exec(Q::PurgeKeys { before: s.before.millis().into(), limit: s.limit.into() }).await
    }
);

async fn find<T: Tx>(tx: &T, scope: &str, key: &str) -> Result<Option<(String, Reply)>, StoreError> {
    let Some(row) = tx
        .first(Q::FindKey {
            scope: scope.into(),
            key: key.into(),
        })
        .await?
    else {
        return Ok(None);
    };
    let status = u16::try_from(row.i64("status")?).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let reply = Reply {
        status,
        body: row.string("body")?,
    };
    Ok(Some((row.string("fingerprint")?, reply)))
}

/// Writes the records in one statement. A key another transaction recorded first (a retry that ran
/// on another instance at the same time) fails this one, which then answers that record.
/// Keys are written in one order everywhere, so two batches that share keys wait, not deadlock.
pub(crate) async fn record<T: Tx>(tx: &T, records: &[Record]) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    let mut records: Vec<&Record> = records.iter().collect();
    records.sort_by(|a, b| (&a.key.scope, &a.key.key).cmp(&(&b.key.scope, &b.key.key)));
    let scopes: Vec<&str> = records.iter().map(|r| r.key.scope.as_str()).collect();
    let keys: Vec<&str> = records.iter().map(|r| r.key.key.as_str()).collect();
    let fingerprints: Vec<&str> = records.iter().map(|r| r.key.fingerprint.as_str()).collect();
    let statuses: Vec<i64> = records.iter().map(|r| i64::from(r.reply.status)).collect();
    let bodies: Vec<&str> = records.iter().map(|r| r.reply.body.as_str()).collect();
    let created: Vec<i64> = records.iter().map(|r| r.key.at.millis()).collect();
    let insert = Q::RecordKeys {
        scopes: scopes.as_slice().into(),
        keys: keys.as_slice().into(),
        fingerprints: fingerprints.as_slice().into(),
        statuses: statuses.as_slice().into(),
        bodies: bodies.as_slice().into(),
        created_at: created.as_slice().into(),
    };
    if tx.exec(insert).await? == records.len() as u64 {
        Ok(())
    } else {
        Err(StoreError::KeyTaken)
    }
}
