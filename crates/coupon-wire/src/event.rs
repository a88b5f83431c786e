//! Events as the API, webhooks and NATS show them: their types, their envelope, and the form their
//! `data` takes. An object an answer shows (a book, a claimed code, a lock, a redemption) is shown
//! exactly as the answer to the request that changed it shows it, so a consumer parses one shape
//! per object; the other events' data are the small forms below. This is the one place an event's
//! JSON shape is written: the store renders `data` with these types in the change's transaction,
//! and the feed and the relay show the envelope.

use std::fmt;

use coupon_core::StockAlert;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{text, Timestamp};

macro_rules! event_types {
    ($($variant:ident = $name:literal: $doc:literal,)*) => {
        /// What happened, as the `type` of an event.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventType {
            $(#[doc = $doc] $variant,)*
        }

        impl EventType {
            pub const ALL: &'static [EventType] = &[$(EventType::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(EventType::$variant => $name,)*
                }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($name => Some(EventType::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

event_types! {
    BookCreated = "book.created": "A book was created (with the codes it was created with).",
    BookUpdated = "book.updated": "An admin changed a book.",
    CodesAdded = "codes.added": "Codes were uploaded or generated into a book.",
    CodesRemoved = "codes.removed": "Codes nobody ever held were taken out of a book.",
    CodeClaimed = "code.claimed": "A user claimed a code.",
    CodeLocked = "code.locked": "A code was held for a checkout.",
    CodeUnlocked = "code.unlocked": "A checkout hold was released.",
    CodeRedeemed = "code.redeemed": "A code was redeemed against an order.",
    RedemptionRolledBack = "redemption.rolled_back": "A redemption was undone.",
    ClaimLapsed = "claim.lapsed": "An unredeemed claim ran out and its code went back to the pool.",
    BookLowStock = "book.low_stock": "A book's pool fell to its low-stock threshold.",
    BookSoldOut = "book.sold_out": "A book has nothing left to deal.",
}

impl From<StockAlert> for EventType {
    fn from(alert: StockAlert) -> Self {
        match alert {
            StockAlert::LowStock => EventType::BookLowStock,
            StockAlert::SoldOut => EventType::BookSoldOut,
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that happened to a book, a code or a redemption, written in the same transaction as
/// the change.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Event {
    /// Unique; a consumer that sees an id twice (a webhook retried) has seen that event.
    pub id: Uuid,
    #[serde(rename = "type")]
    #[schema(schema_with = text::event_type)]
    pub event_type: &'static str,
    pub occurred_at: Timestamp,
    pub book_id: Option<Uuid>,
    pub code: Option<String>,
    pub user_id: Option<String>,
    /// The object the event is about, as the API shows it: the book (`book.*`), the claimed
    /// code (`code.claimed`), the lock (`code.locked`), the redemption (`code.redeemed`,
    /// `redemption.rolled_back`), or counts and codes.
    #[schema(value_type = Object)]
    pub data: Value,
}

// The data of events about no object an answer shows. Fields are in name order: the feed reads
// `data` back as a JSON object, whose keys come out in that order.

/// `codes.added`.
#[derive(Debug, Clone, Serialize)]
pub struct CodesAdded {
    pub count: u64,
    pub coupon_book_id: Uuid,
}

/// `codes.removed`.
#[derive(Debug, Clone, Serialize)]
pub struct CodesRemoved<'a> {
    pub codes: &'a [String],
    pub count: usize,
    pub coupon_book_id: Uuid,
}

/// `claim.lapsed`: the code went back to the pool.
#[derive(Debug, Clone, Serialize)]
pub struct ClaimLapsed<'a> {
    pub code: &'a str,
    pub coupon_book_id: Uuid,
    /// `available`.
    pub status: &'static str,
    pub user_id: &'a str,
}

/// `book.low_stock` and `book.sold_out`: what is left, and the threshold.
#[derive(Debug, Clone, Serialize)]
pub struct StockChanged {
    pub available: i64,
    pub coupon_book_id: Uuid,
    pub low_stock_threshold: Option<i64>,
}

/// An event's `data` as stored: the JSON text of its form.
pub fn data(form: impl Serialize) -> String {
    // These forms are plain structs of strings, numbers and maps: they always serialize.
    serde_json::to_string(&form).unwrap_or_else(|_| "null".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_round_trip_their_names() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(*t));
        }
        assert_eq!(EventType::ALL.len(), 12);
        assert_eq!(EventType::parse("code.*"), None);
    }
}
