//! The transport that carries coupond's committed events to the outside world: signed webhook
//! deliveries, where they may go, the schedule for retrying them, endpoint secrets, URL redaction,
//! and publishing to NATS JetStream.
//!
//! This crate knows nothing of the outbox, its tables or the endpoints' rows, and runs no loop of
//! its own: a caller hands it an event's id, type and already-serialized JSON body, and stores what
//! comes back (an [`Attempt`], a publish acknowledgement). Time is passed in, never read here, so
//! coupond's clock decides.

pub mod backoff;
pub mod destination;
pub mod event;
pub mod nats;
pub mod redact;
pub mod secret;
pub mod signature;
pub mod webhook;

pub use backoff::Backoff;
pub use destination::{Destinations, Reach};
pub use event::Outgoing;
pub use nats::{Jetstream, NatsError, Published, StreamConfig};
pub use redact::redact_url;
pub use secret::Secret;
pub use signature::{sign, verify, SignatureError, SIGNATURE_HEADER};
pub use webhook::{Attempt, BuildError, Failure, Outcome, WebhookOptions, Webhooks};
