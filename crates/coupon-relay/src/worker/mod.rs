//! The relay: coupond's background work that carries committed events out. One loop fans the feed
//! out into deliveries, one sender per webhook endpoint leases and sends that endpoint's due
//! deliveries (so a slow or failing receiver delays only itself), one loop publishes to NATS when
//! configured, and one prunes what is older than the retention. Every loop runs under the
//! service's one owner of background work and stops when it stops. All state is in the database:
//! a restart goes on where the last run left off, and several instances share the work through
//! row locks and leases.

mod nats;
mod sender;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use coupon_core::{Clock, Timestamp};
use coupon_store::webhooks::FAN_OUT;
use coupon_store::{Background, Event, Outbox};
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{Backoff, StreamConfig, WebhookOptions, Webhooks};

/// How an event's body is written: the API's JSON form of the event, supplied by the binary.
pub type Render = Arc<dyn Fn(&Event) -> Vec<u8> + Send + Sync>;

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
pub(crate) struct Shared {
    pub store: Arc<dyn Outbox>,
    pub clock: Arc<dyn Clock>,
    pub render: Render,
    pub config: RelayConfig,
    pub webhooks: Webhooks,
}

impl Shared {
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Sleeps for the poll interval, or less when stopping; false once stopping.
    pub async fn idle(&self, stop: &CancellationToken) -> bool {
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
        store: Arc<dyn Outbox>,
        clock: Arc<dyn Clock>,
        render: Render,
        config: RelayConfig,
        nats: Option<(String, StreamConfig)>,
    ) -> Result<Self, crate::BuildError> {
        let webhooks = Webhooks::new(config.webhook.clone())?;
        let shared = Arc::new(Shared {
            store,
            clock,
            render,
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
        background.spawn_on(&runtime, fan_out(self.shared.clone(), stop.clone()));
        background.spawn_on(&runtime, prune(self.shared.clone(), stop.clone()));
        background.spawn_on(&runtime, senders(self.shared.clone(), background.clone(), stop.clone()));
        if let Some((url, config)) = self.nats {
            background.spawn_on(&runtime, nats::publish(self.shared.clone(), url, config, stop));
        }
    }
}

/// Fans the feed out into deliveries, a batch per transaction, as fast as it fills. Once the feed
/// is idle it is watched with a read, not a write transaction, so that an idle relay does not keep
/// SQLite's one writer busy.
async fn fan_out(shared: Arc<Shared>, stop: CancellationToken) {
    let mut idle = false;
    loop {
        if idle {
            match shared.store.relay_next(FAN_OUT, 1).await {
                Ok((_, events)) if events.is_empty() => {
                    if !shared.idle(&stop).await {
                        return;
                    }
                    continue;
                }
                // Something to fan out, or a failed read the write below will report.
                _ => {}
            }
        }
        match shared.store.fan_out(shared.config.fan_out_batch, shared.now()).await {
            Ok(n) if n as u32 == shared.config.fan_out_batch => continue,
            Ok(n) => idle = n == 0,
            // Another instance moved the place at the same time: its batch stands.
            Err(coupon_store::StoreError::Conflict(_)) => {}
            Err(e) => tracing::warn!(error = %e, "fanning events out to webhooks failed; retrying"),
        }
        if !shared.idle(&stop).await {
            return;
        }
    }
}

/// Keeps one sender per endpoint: new endpoints get one, deleted ones' stop.
async fn senders(shared: Arc<Shared>, background: Background, stop: CancellationToken) {
    let runtime = Handle::current();
    let mut running: HashMap<Uuid, CancellationToken> = HashMap::new();
    loop {
        match shared.store.endpoints().await {
            Ok(endpoints) => {
                let ids: Vec<Uuid> = endpoints.iter().map(|e| e.webhook.id).collect();
                running.retain(|id, token| {
                    let kept = ids.contains(id);
                    if !kept {
                        token.cancel();
                    }
                    kept
                });
                for endpoint in endpoints {
                    if let std::collections::hash_map::Entry::Vacant(slot) = running.entry(endpoint.webhook.id) {
                        let token = stop.child_token();
                        slot.insert(token.clone());
                        background.spawn_on(&runtime, sender::run(shared.clone(), endpoint, token));
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "reading the webhook endpoints failed; retrying"),
        }
        // Endpoints come and go rarely: looked for every ten polls.
        for _ in 0..10 {
            if !shared.idle(&stop).await {
                return;
            }
        }
    }
}

/// Deletes what is older than the retention, every `prune_every`.
async fn prune(shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        let retention = i64::try_from(shared.config.retention.as_secs()).unwrap_or(i64::MAX / 2_000);
        let before = shared.now().plus_seconds(-retention);
        match shared.store.prune(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(rows = n, "pruned events and deliveries past their retention"),
            Err(e) => tracing::warn!(error = %e, "pruning events failed; retrying"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(shared.config.prune_every) => {}
        }
    }
}
