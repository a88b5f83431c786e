//! Webhook endpoints and their deliveries, as the store keeps them: what an admin registered, and
//! for each event that matches an endpoint, one delivery with its attempts and outcome.

use coupon_core::Timestamp;
use uuid::Uuid;

use crate::{Event, EventType};

/// The name of the fan-out's place in the feed, among the relay's consumers.
pub const FAN_OUT: &str = "webhooks";

/// The events an endpoint is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subscription {
    /// `["*"]`: every type, those added later included.
    All,
    Only(Vec<EventType>),
}

impl Subscription {
    pub fn matches(&self, t: EventType) -> bool {
        match self {
            Subscription::All => true,
            Subscription::Only(types) => types.contains(&t),
        }
    }

    /// The subscription named by type names: `"*"` anywhere is every type; duplicates count once.
    /// A name that is no type is the error.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, String> {
        let (mut types, mut all) = (Vec::new(), false);
        for name in names.iter().map(AsRef::as_ref) {
            match name {
                "*" => all = true,
                name => types.push(EventType::parse(name).ok_or_else(|| name.to_owned())?),
            }
        }
        if all {
            return Ok(Subscription::All);
        }
        types.sort_unstable();
        types.dedup();
        Ok(Subscription::Only(types))
    }

    /// Its type names, or `["*"]`: as stored and as the API shows it.
    pub fn names(&self) -> Vec<&'static str> {
        match self {
            Subscription::All => vec!["*"],
            Subscription::Only(types) => types.iter().map(|t| t.as_str()).collect(),
        }
    }

    pub(crate) fn to_json(&self) -> String {
        serde_json::Value::from(self.names()).to_string()
    }

    pub(crate) fn from_json(s: &str) -> Option<Self> {
        let names: Vec<String> = serde_json::from_str(s).ok()?;
        Subscription::parse(&names).ok()
    }
}

/// An endpoint as an admin registered it. Its secret is stored to sign with, and shown once, when
/// it is created.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub id: Uuid,
    pub url: String,
    pub events: Subscription,
    pub description: Option<String>,
    pub created_at: Timestamp,
}

/// An endpoint with the secret its deliveries are signed with, for the relay.
#[derive(Clone)]
pub struct Endpoint {
    pub webhook: Webhook,
    pub secret: String,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("webhook", &self.webhook)
            .field("secret", &"<redacted>")
            .finish()
    }
}

#[derive(Clone)]
pub struct NewWebhook {
    pub id: Uuid,
    pub url: String,
    pub events: Subscription,
    pub description: Option<String>,
    pub secret: String,
    pub created_at: Timestamp,
}

impl std::fmt::Debug for NewWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewWebhook")
            .field("id", &self.id)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Not delivered yet: due at `next_attempt_at`.
    Pending,
    Delivered,
    /// Every attempt failed; an admin may send it again.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(DeliveryState::Pending),
            "delivered" => Some(DeliveryState::Delivered),
            "failed" => Some(DeliveryState::Failed),
            _ => None,
        }
    }
}

/// One event for one endpoint, and how sending it went.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub event_id: Uuid,
    pub event_type: EventType,
    pub state: DeliveryState,
    pub attempts: i64,
    pub next_attempt_at: Timestamp,
    pub last_attempt_at: Option<Timestamp>,
    /// The receiver's HTTP status of the last attempt, if it answered.
    pub last_status: Option<i64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    pub delivered_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

/// A delivery leased to be sent now: its endpoint, its secret, and the event.
#[derive(Debug, Clone)]
pub struct Due {
    pub delivery_id: Uuid,
    /// This attempt's number, from 1.
    pub attempt: i64,
    pub event: Event,
}

/// How an attempt went, to record.
#[derive(Debug, Clone)]
pub struct Attempted {
    pub delivery_id: Uuid,
    pub status: Option<i64>,
    /// `None`: delivered. `Some`: failed, with why, and when to try again (`None`: never).
    pub failure: Option<(String, Option<Timestamp>)>,
    pub at: Timestamp,
}

/// A page of an endpoint's deliveries, newest first.
pub type DeliveryPage = crate::Page<Delivery, (Timestamp, Uuid)>;

/// What the relay has yet to send, for the metrics: for each consumer of the feed (the webhooks'
/// fan-out, NATS once configured) the events it has not read yet, and the deliveries pending.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Backlog {
    pub unread: Vec<Unread>,
    pub pending_deliveries: i64,
    /// When the event of the oldest pending delivery occurred.
    pub oldest_pending: Option<Timestamp>,
}

/// The events after one consumer's place in the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unread {
    pub consumer: String,
    pub events: i64,
    /// When the oldest of them occurred.
    pub oldest: Option<Timestamp>,
}
