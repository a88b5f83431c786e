//! The feed's readers inside coupond: the pull feed (`GET /events`), the relay's places in it (the
//! fan-out's, NATS's), moved only from where they were read so instances never pass each other,
//! and pruning what every consumer has passed.

use coupon_core::Timestamp;

use crate::backend::{Fields, Planning, Tx};
use crate::outbox::{self, EventCursor, EventPage, EventQuery};
use crate::statements::Q;
use crate::{Event, StoreError};

read!(ListEvents { query: EventQuery } -> EventPage = |tx, s| outbox::read(tx, &s.query).await;
    planning = Planning::IndexOrder);
read!(RelayNext { name: String, limit: u32 } -> (EventCursor, Vec<Event>) =
    |tx, s| next_for(tx, &s.name, s.limit).await; planning = Planning::IndexOrder);
write!(RelayMoved { name: String, from: EventCursor, to: EventCursor } -> bool =
    |tx, s, _events| moved(tx, &s.name, s.from, s.to).await);
write!(Prune { before: Timestamp } -> u64 = |tx, s, _events| prune(tx, s.before).await);

/// A consumer's place in the feed (`Q::RelayCursor` locks it until the transaction ends,
/// `Q::RelayPlace` only reads it); a consumer without one starts from the beginning.
pub(crate) async fn cursor<T: Tx>(tx: &T, place: Q<'_>) -> Result<EventCursor, StoreError> {
    Ok(match tx.first(place).await? {
        Some(r) => EventCursor {
            xid: r.i64("xid")?,
            position: r.i64("position")?,
        },
        None => EventCursor::default(),
    })
}

/// Moves a consumer's place from `from` to `to`; false if another instance moved it first.
pub(crate) async fn advance<T: Tx>(tx: &T, name: &str, from: EventCursor, to: EventCursor) -> Result<bool, StoreError> {
    let move_cursor = Q::MoveRelayCursor {
        name: name.into(),
        from_xid: from.xid.into(),
        from_position: from.position.into(),
        to_xid: to.xid.into(),
        to_position: to.position.into(),
    };
    Ok(tx.exec(move_cursor).await? == 1)
}

/// The next `limit` events after a consumer's place, and the place (for [`moved`], which moves it
/// only from there: the read needs no lock).
async fn next_for<T: Tx>(tx: &T, name: &str, limit: u32) -> Result<(EventCursor, Vec<Event>), StoreError> {
    let from = cursor(tx, Q::RelayPlace { name: name.into() }).await?;
    let query = EventQuery {
        after: Some(from),
        limit,
        types: Vec::new(),
    };
    Ok((from, outbox::read(tx, &query).await?.events))
}

/// Moves a consumer's place (creating it at first), unless another instance moved it first.
async fn moved<T: Tx>(tx: &T, name: &str, from: EventCursor, to: EventCursor) -> Result<bool, StoreError> {
    tx.exec(Q::AddRelayCursor { name: name.into() }).await?;
    advance(tx, name, from, to).await
}

/// Deletes what is older than `before` and no longer needed: finished deliveries, and events every
/// consumer has passed that no pending delivery refers to. Says how many rows went.
async fn prune<T: Tx>(tx: &T, before: Timestamp) -> Result<u64, StoreError> {
    let before = before.millis().into();
    let deliveries = tx.exec(Q::PruneDeliveries { before }).await?;
    let events = tx.exec(Q::PruneEvents { before }).await?;
    Ok(deliveries + events)
}
