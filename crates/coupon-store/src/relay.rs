//! What the event relay reads and writes: the feed from its own places in it, the webhook
//! endpoints, their due deliveries and how each attempt went, and pruning. The relay's loops run
//! outside this crate and speak to the store only through [`Outbox`].

use async_trait::async_trait;
use coupon_core::Timestamp;
use uuid::Uuid;

use crate::outbox::{Event, EventCursor};
use crate::script::{event, webhook};
use crate::webhooks::{Attempted, Due, Endpoint};
use crate::{telemetry, Store, StoreError};

#[async_trait]
pub trait Outbox: Send + Sync + 'static {
    /// The next `limit` events after a consumer's place (NATS's), and that place.
    async fn relay_next(&self, name: &str, limit: u32) -> Result<(EventCursor, Vec<Event>), StoreError>;
    /// Moves a consumer's place; false when another instance moved it first.
    async fn relay_moved(&self, name: &str, from: EventCursor, to: EventCursor) -> Result<bool, StoreError>;
    /// Turns the feed's next `limit` events into deliveries for the endpoints subscribed to them;
    /// each event fans out once, whatever the number of instances. Says how many events it took.
    async fn fan_out(&self, limit: u32, now: Timestamp) -> Result<usize, StoreError>;
    /// Every endpoint with its secret, oldest first: what the relay sends to.
    async fn endpoints(&self) -> Result<Vec<Endpoint>, StoreError>;
    /// Leases up to `limit` of the endpoint's due deliveries until `until`, in feed order; rows
    /// another instance leased are skipped.
    async fn lease_deliveries(
        &self,
        webhook_id: Uuid,
        limit: u32,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<Vec<Due>, StoreError>;
    /// Records how each attempt went, and counts the attempts by outcome once that has committed.
    async fn settle_deliveries(&self, attempts: Vec<Attempted>) -> Result<(), StoreError>;
    /// Deletes finished deliveries and passed events older than `before`.
    async fn prune(&self, before: Timestamp) -> Result<u64, StoreError>;
}

#[async_trait]
impl Outbox for Store {
    async fn relay_next(&self, name: &str, limit: u32) -> Result<(EventCursor, Vec<Event>), StoreError> {
        let name = name.to_owned();
        self.read(event::RelayNext { name, limit }).await
    }

    async fn relay_moved(&self, name: &str, from: EventCursor, to: EventCursor) -> Result<bool, StoreError> {
        let name = name.to_owned();
        self.write(event::RelayMoved { name, from, to }).await
    }

    async fn fan_out(&self, limit: u32, now: Timestamp) -> Result<usize, StoreError> {
        self.write(webhook::FanOut { limit, now }).await
    }

    async fn endpoints(&self) -> Result<Vec<Endpoint>, StoreError> {
        self.read(webhook::Endpoints {}).await
    }

    async fn lease_deliveries(
        &self,
        webhook_id: Uuid,
        limit: u32,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<Vec<Due>, StoreError> {
        let lease = webhook::LeaseDeliveries {
            webhook_id,
            limit,
            until,
            now,
        };
        self.write(lease).await
    }

    async fn settle_deliveries(&self, attempts: Vec<Attempted>) -> Result<(), StoreError> {
        let outcomes: Vec<_> = attempts.iter().map(telemetry::attempt_outcome).collect();
        self.write(webhook::SettleDeliveries { attempts }).await?;
        telemetry::attempts_settled(&outcomes);
        Ok(())
    }

    async fn prune(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.write(event::Prune { before }).await
    }
}
