//! Events as the API shows them, and the form their `data` takes: each object exactly as the
//! answer to the request that changed it shows it, so a consumer parses one shape per object.

use coupon_core as domain;
use coupon_store::{EventForm, Locked};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{text, Book, ClaimedCode, LockAnswer, Redemption, Timestamp};

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

impl From<coupon_store::Event> for Event {
    fn from(e: coupon_store::Event) -> Self {
        Event {
            id: e.id,
            event_type: e.event_type.as_str(),
            occurred_at: Timestamp(e.occurred_at),
            book_id: e.book_id,
            code: e.code,
            user_id: e.user_id,
            data: e.data,
        }
    }
}

/// The API's JSON forms, for the store to render events with.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiForm;

fn json(value: impl Serialize) -> String {
    // These forms are plain structs of strings, numbers and maps: they always serialize.
    serde_json::to_string(&value).unwrap_or_else(|_| "null".to_owned())
}

impl EventForm for ApiForm {
    fn book(&self, book: &domain::Book) -> String {
        json(Book::from(book.clone()))
    }

    fn claim(&self, code: &domain::CodeInstance, book: &domain::Book, now: domain::Timestamp) -> String {
        json(ClaimedCode::new(code.clone(), book, now))
    }

    fn lock(&self, locked: &Locked) -> String {
        json(LockAnswer::from(locked.clone()))
    }

    fn redemption(&self, redemption: &domain::Redemption) -> String {
        json(Redemption::from(redemption.clone()))
    }
}
