//! The relay: coupond's background work that carries committed events out, where the outbox and
//! the transport meet. One loop fans the feed out into deliveries (fan_out.rs), one sender per
//! webhook endpoint leases and sends that endpoint's due deliveries, so a slow or failing receiver
//! delays only itself (sender.rs), one loop publishes to NATS when configured (nats.rs), and one
//! prunes what is older than the retention (prune.rs). Every loop runs under the service's one
//! owner of background work and stops when it stops. All state is in the database: a restart goes
//! on where the last run left off, and several instances share the work through row locks and
//! leases. How an event travels (signatures, retries, JetStream) is `coupon_relay`'s.

mod fan_out;
mod nats;
mod prune;
mod sender;

use std::sync::Arc;
use std::time::Duration;

use coupon_core::{Clock, Timestamp};
use coupon_relay::{Backoff, BuildError, StreamConfig, WebhookOptions, Webhooks};
use coupon_store::{Background, Event};
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

/// The part of the store the relay reads and writes: the outbox feed, the endpoints and their
/// deliveries. Every loop reaches it through this one type.
pub type Store = Arc<dyn coupon_store::Outbox>;

/// An event's body as webhooks and NATS carry it: the API's JSON form of the event.
fn body(event: &Event) -> Vec<u8> {
    // The envelope is plain strings and ids around a JSON value: it always serializes.
    serde_json::to_vec(&coupon_wire::Event::from(event.clone())).unwrap_or_default()
}

#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// How often an idle loop looks for new work.
    pub poll: Duration,
    /// Events fanned out per transaction.
    pub fan_out_batch: u32,
    /// Deliveries one endpoint has in flight at once.
    pub per_endpoint: u32,
    /// Deliveries an endpoint's sender leases, and settles, per transaction: sent
    /// `per_endpoint` at a time, so a sale's thousands of events a second cost few transactions.
    pub lease_batch: u32,
    pub webhook: WebhookOptions,
    pub backoff: Backoff,
    /// Delivered and failed deliveries, and passed events, are deleted once this old.
    pub retention: Duration,
    pub prune_every: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            poll: Duration::from_millis(100),
            fan_out_batch: 1000,
            per_endpoint: 64,
            lease_batch: 256,
            webhook: WebhookOptions::default(),
            backoff: Backoff::default(),
            retention: Duration::from_secs(7 * 86_400),
            prune_every: Duration::from_secs(60),
        }
    }
}

/// What every loop of the relay shares.
struct Shared {
    store: Store,
    clock: Arc<dyn Clock>,
    config: RelayConfig,
    webhooks: Webhooks,
}

impl Shared {
    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Sleeps for the poll interval, or less when stopping; false once stopping.
    async fn idle(&self, stop: &CancellationToken) -> bool {
        tokio::select! {
            _ = stop.cancelled() => false,
            _ = tokio::time::sleep(self.config.poll) => true,
        }
    }
}

pub struct Relay {
    shared: Arc<Shared>,
    /// Where to publish, connected to (and reconnected to) by the publishing loop.
    nats: Option<(String, StreamConfig)>,
}

impl Relay {
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        config: RelayConfig,
        nats: Option<(String, StreamConfig)>,
    ) -> Result<Self, BuildError> {
        let webhooks = Webhooks::new(config.webhook.clone())?;
        let shared = Arc::new(Shared {
            store,
            clock,
            config,
            webhooks,
        });
        Ok(Relay { shared, nats })
    }

    /// Starts every loop under `background`; they stop when it does.
    pub fn start(self, background: &Background) {
        let runtime = Handle::current();
        let stop = CancellationToken::new();
        let watch = {
            let (stop, stopping) = (stop.clone(), background.stopping());
            async move {
                stopping.await;
                stop.cancel();
            }
        };
        background.spawn_on(&runtime, watch);
        background.spawn_on(&runtime, fan_out::run(self.shared.clone(), stop.clone()));
        background.spawn_on(&runtime, prune::run(self.shared.clone(), stop.clone()));
        background.spawn_on(
            &runtime,
            sender::senders(self.shared.clone(), background.clone(), stop.clone()),
        );
        if let Some((url, config)) = self.nats {
            background.spawn_on(&runtime, nats::publish(self.shared.clone(), url, config, stop));
        }
    }
}
