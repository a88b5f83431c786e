//! The feed: committed events in a stable order, a page at a time.

use coupon_core::Timestamp;

use super::types::{Event, EventCursor, EventKey, EventPage, EventQuery, EventType};
use crate::backend::{Fields, Tx};
use crate::statements::Q;
use crate::StoreError;

pub(crate) async fn read<T: Tx>(tx: &T, q: &EventQuery) -> Result<EventPage, StoreError> {
    let rows = page(tx, q, false).await?;
    let events = rows.iter().map(event).collect::<Result<Vec<_>, _>>()?;
    let next = events.last().map(|e| e.cursor).or(q.after);
    Ok(EventPage { events, next })
}

/// The page `read` gives, each event's key only.
pub(crate) async fn keys<T: Tx>(tx: &T, q: &EventQuery) -> Result<Vec<EventKey>, StoreError> {
    page(tx, q, true).await?.iter().map(key).collect()
}

/// The page of the feed `q` asks for, of whole events or of their `keys` only: `Q::Events` and
/// `Q::EventKeys` take the same arguments.
async fn page<T: Tx>(tx: &T, q: &EventQuery, keys: bool) -> Result<Vec<T::Row>, StoreError> {
    let after = q.after.unwrap_or_default();
    let types: Vec<&str> = q.types.iter().map(|t| t.as_str()).collect();
    let (after_xid, after_position) = (after.xid.into(), after.position.into());
    let (types, limit) = (types.as_slice().into(), (q.limit as i64).into());
    let page = match keys {
        false => Q::Events {
            after_xid,
            after_position,
            types,
            limit,
        },
        true => Q::EventKeys {
            after_xid,
            after_position,
            types,
            limit,
        },
    };
    tx.query(page).await
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
