//! The feed: committed events in a stable order, a page at a time.

use coupon_core::Timestamp;

use super::types::{Event, EventCursor, EventKey, EventPage, EventQuery, EventType};
use crate::backend::{Fields, Tx};
use crate::statements::Q;
use crate::StoreError;

pub(crate) async fn read<T: Tx>(tx: &T, q: &EventQuery) -> Result<EventPage, StoreError> {
    let rows = page(tx, Q::Events, q).await?;
    let events = rows.iter().map(event).collect::<Result<Vec<_>, _>>()?;
    let next = events.last().map(|e| e.cursor).or(q.after);
    Ok(EventPage { events, next })
}

/// The page `read` gives, each event's key only.
pub(crate) async fn keys<T: Tx>(tx: &T, q: &EventQuery) -> Result<Vec<EventKey>, StoreError> {
    page(tx, Q::EventKeys, q).await?.iter().map(key).collect()
}

async fn page<T: Tx>(tx: &T, statement: Q, q: &EventQuery) -> Result<Vec<T::Row>, StoreError> {
    let after = q.after.unwrap_or_default();
    let types: Vec<&str> = q.types.iter().map(|t| t.as_str()).collect();
    let args = [
        after.xid.into(),
        after.position.into(),
        types.as_slice().into(),
        (q.limit as i64).into(),
    ];
    tx.query(statement, &args).await
}

fn key(r: &impl Fields) -> Result<EventKey, StoreError> {
    let kind = r.string("type")?;
    Ok(EventKey {
        id: r.uuid("id")?,
        event_type: EventType::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("event type {kind:?}")))?,
        occurred_at: Timestamp::from_millis(r.i64("occurred_at")?),
        cursor: EventCursor {
            xid: r.i64("xid")?,
            position: r.i64("position")?,
        },
    })
}

pub(crate) fn event(r: &impl Fields) -> Result<Event, StoreError> {
    let EventKey {
        id,
        event_type,
        occurred_at,
        cursor,
    } = key(r)?;
    let data = r.string("data")?;
    Ok(Event {
        id,
        event_type,
        occurred_at,
        book_id: r.opt_uuid("book_id")?,
        code: r.opt_string("code")?,
        user_id: r.opt_string("user_id")?,
        data: serde_json::from_str(&data).map_err(|e| StoreError::Corrupt(format!("event data: {e}")))?,
        cursor,
    })
}
