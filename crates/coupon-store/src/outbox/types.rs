//! Events as the feed gives them back, and the feed's cursor.

use std::fmt;
use std::str::FromStr;

use coupon_core::Timestamp;
pub use coupon_wire::EventType;
use serde_json::Value;
use uuid::Uuid;

/// An event's place in the feed: the writing transaction, then the order within it (PostgreSQL);
/// SQLite commits in write order and has one number. Written `<transaction>-<position>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EventCursor {
    pub xid: i64,
    pub position: i64,
}

impl fmt::Display for EventCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.xid, self.position)
    }
}

impl FromStr for EventCursor {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let (xid, position) = s.split_once('-').ok_or(())?;
        // Digits only (no sign), and few enough to fit.
        let number = |t: &str| {
            let digits = !t.is_empty() && t.len() <= 18 && t.bytes().all(|b| b.is_ascii_digit());
            digits.then(|| t.parse::<i64>().ok()).flatten().ok_or(())
        };
        Ok(EventCursor {
            xid: number(xid)?,
            position: number(position)?,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: Uuid,
    pub event_type: EventType,
    pub occurred_at: Timestamp,
    pub book_id: Option<Uuid>,
    pub code: Option<String>,
    pub user_id: Option<String>,
    /// The object the event is about, as the API shows it.
    pub data: Value,
    pub cursor: EventCursor,
}

impl From<Event> for coupon_wire::Event {
    fn from(e: Event) -> Self {
        coupon_wire::Event {
            id: e.id,
            event_type: e.event_type.as_str(),
            occurred_at: coupon_wire::Timestamp(e.occurred_at),
            book_id: e.book_id,
            code: e.code,
            user_id: e.user_id,
            data: e.data,
        }
    }
}

/// What the fan-out reads of an event: which it is and where, without its object.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct EventKey {
    pub id: Uuid,
    pub event_type: EventType,
    pub occurred_at: Timestamp,
    pub cursor: EventCursor,
}

#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Continue after this place (from the start when `None`).
    pub after: Option<EventCursor>,
    pub limit: u32,
    /// Only these types; every type when empty.
    pub types: Vec<EventType>,
}

/// A page of the feed. `next` is where the next page starts: after the page's last event, or
/// where the query started when nothing new has committed yet, so a consumer keeps polling it.
#[derive(Debug, Clone)]
pub struct EventPage {
    pub events: Vec<Event>,
    pub next: Option<EventCursor>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_junk() {
        let c = EventCursor {
            xid: 812,
            position: 40_001,
        };
        assert_eq!(c.to_string().parse::<EventCursor>(), Ok(c));
        for junk in [
            "",
            "1",
            "-1",
            "1-",
            "a-1",
            "1-2-3",
            "+1-2",
            "1-99999999999999999999",
            " 1-2",
        ] {
            assert!(junk.parse::<EventCursor>().is_err(), "{junk:?}");
        }
    }
}
