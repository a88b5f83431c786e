//! The feed: committed events in a stable order, a page at a time.

use coupon_core::Timestamp;

use super::types::{Event, EventCursor, EventPage, EventQuery, EventType};
use crate::backend::{Fields, Tx};
use crate::statements::Q;
use crate::StoreError;

pub(crate) async fn read<T: Tx>(tx: &T, q: &EventQuery) -> Result<EventPage, StoreError> {
    let after = q.after.unwrap_or_default();
    let types: Vec<&str> = q.types.iter().map(|t| t.as_str()).collect();
    let rows = tx
        .query(
            Q::Events,
            &[
                after.xid.into(),
                after.position.into(),
                types.as_slice().into(),
                (q.limit as i64).into(),
            ],
        )
        .await?;
    let events = rows.iter().map(event).collect::<Result<Vec<_>, _>>()?;
    let next = events.last().map(|e| e.cursor).or(q.after);
    Ok(EventPage { events, next })
}

pub(crate) fn event(r: &impl Fields) -> Result<Event, StoreError> {
    let kind = r.string("type")?;
    let data = r.string("data")?;
    Ok(Event {
        id: r.uuid("id")?,
        event_type: EventType::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("event type {kind:?}")))?,
        occurred_at: Timestamp::from_millis(r.i64("occurred_at")?),
        book_id: r.opt_uuid("book_id")?,
        code: r.opt_string("code")?,
        user_id: r.opt_string("user_id")?,
        data: serde_json::from_str(&data).map_err(|e| StoreError::Corrupt(format!("event data: {e}")))?,
        cursor: EventCursor {
            xid: r.i64("xid")?,
            position: r.i64("position")?,
        },
    })
}
