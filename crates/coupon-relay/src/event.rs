//! The one thing this crate carries: a committed event, as the outbox stores it.

use bytes::Bytes;
use uuid::Uuid;

/// An event on its way out: its id (the idempotency key receivers and JetStream deduplicate on),
/// its type (`code.claimed`), and its body, already serialized JSON, sent byte for byte as signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing<'a> {
    pub id: Uuid,
    pub event_type: &'a str,
    /// `Bytes` so a batch can go to NATS and to several webhook endpoints without copying it.
    pub body: Bytes,
}
