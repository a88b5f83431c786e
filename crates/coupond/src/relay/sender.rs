//! The webhook senders, one per endpoint, started and stopped as endpoints come and go. A sender
//! leases a batch of its endpoint's due deliveries, sends them `per_endpoint` at a time, and
//! records every outcome in one transaction. While a batch is sent, the last one's outcomes are
//! recorded and the next one is leased, so the database's work and the network's overlap instead
//! of taking turns. A lease outlasts the attempts of its batch and of the one ahead of it at their
//! timeout, so no other instance sends them meanwhile, and a sender that dies leaves them due
//! again to whoever comes next.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use coupon_relay::{Outcome, Outgoing, Secret};
use coupon_store::webhooks::{Attempted, Due, Endpoint};
use coupon_store::Background;
use tokio::runtime::Handle;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::Shared;

/// Keeps one sender per endpoint: new endpoints get one, deleted ones' stop.
pub(super) async fn senders(shared: Arc<Shared>, background: Background, stop: CancellationToken) {
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
                        background.spawn_on(&runtime, run(shared.clone(), endpoint, token));
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

/// One endpoint's sender, until `stop`.
async fn run(shared: Arc<Shared>, endpoint: Endpoint, stop: CancellationToken) {
    let sender = Sender::new(&shared, &endpoint);
    // Leasing is a write: an idle endpoint looks less and less often (up to every 2 s), so many
    // quiet endpoints do not keep SQLite's one writer busy; new work brings it back to the poll.
    let mut idle = 0u32;
    let (mut due, mut unsettled) = (Vec::new(), Vec::new());
    loop {
        if due.is_empty() {
            sender.settle(std::mem::take(&mut unsettled)).await;
            if stop.is_cancelled() {
                return;
            }
            due = sender.lease().await;
            if due.is_empty() {
                idle = (idle + 1).min(5);
                let wait = (shared.config.poll * (1 << idle)).min(Duration::from_secs(2));
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
                continue;
            }
        }
        idle = 0;
        let started = Instant::now();
        let leasing = async {
            // Once stopping, nothing more is leased: what is in hand is sent and recorded.
            if stop.is_cancelled() {
                Vec::new()
            } else {
                sender.lease().await
            }
        };
        let (attempted, next, ()) = futures::join!(
            sender.send_all(&due),
            leasing,
            sender.settle(std::mem::take(&mut unsettled))
        );
        tracing::debug!(
            webhook = %sender.id,
            sent = attempted.len(),
            millis = started.elapsed().as_millis() as u64,
            "sent a batch of deliveries"
        );
        (due, unsettled) = (next, attempted);
    }
}

/// What one endpoint's sender keeps between batches.
struct Sender<'a> {
    shared: &'a Shared,
    id: Uuid,
    url: &'a str,
    secret: Secret,
    batch: u32,
    at_once: usize,
    lease: Duration,
}

impl<'a> Sender<'a> {
    fn new(shared: &'a Shared, endpoint: &'a Endpoint) -> Self {
        let (batch, at_once) = (shared.config.lease_batch.max(1), shared.config.per_endpoint.max(1));
        // A batch waits for the one ahead of it, then is sent a round of `at_once` at a time.
        let rounds = 2 * batch.div_ceil(at_once);
        Sender {
            shared,
            id: endpoint.webhook.id,
            url: &endpoint.webhook.url,
            secret: Secret::new(endpoint.secret.clone()),
            batch,
            at_once: at_once as usize,
            lease: shared.config.webhook.timeout * (rounds + 1) + Duration::from_secs(5),
        }
    }

    async fn lease(&self) -> Vec<Due> {
        let now = self.shared.now();
        let until = now.plus_millis(self.lease.as_millis() as i64);
        match self
            .shared
            .store
            .lease_deliveries(self.id, self.batch, until, now)
            .await
        {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(webhook = %self.id, error = %e, "leasing webhook deliveries failed; retrying");
                Vec::new()
            }
        }
    }

    async fn send_all(&self, due: &[Due]) -> Vec<Attempted> {
        let in_flight = Semaphore::new(self.at_once);
        let sends = due.iter().map(|d| async {
            // Never closed: the permit comes once one of the sends ahead is done.
            let _permit = in_flight.acquire().await.ok();
            send(self.shared, self.url, &self.secret, d).await
        });
        futures::future::join_all(sends).await
    }

    /// Records attempts that were made, even when stopping.
    async fn settle(&self, attempted: Vec<Attempted>) {
        if attempted.is_empty() {
            return;
        }
        if let Err(e) = self.shared.store.settle_deliveries(attempted).await {
            tracing::warn!(webhook = %self.id, error = %e, "recording webhook attempts failed; they will be sent again");
        }
    }
}

async fn send(shared: &Shared, url: &str, secret: &Secret, due: &Due) -> Attempted {
    let body = super::body(&due.event).into();
    let outgoing = Outgoing {
        id: due.event.id,
        event_type: due.event.event_type.as_str(),
        body,
    };
    let unix = shared.now().millis().div_euclid(1000);
    let attempt = shared.webhooks.deliver(url, secret, &outgoing, unix).await;
    let at = shared.now();
    let status = attempt.status().map(i64::from);
    let failure = match &attempt.outcome {
        Outcome::Delivered { .. } => None,
        Outcome::Failed(_) => {
            let n = u32::try_from(due.attempt).unwrap_or(u32::MAX);
            let next = shared
                .config
                .backoff
                .next(n, &mut rand::rng())
                .map(|delay| at.plus_millis(delay.as_millis() as i64));
            Some((attempt.error().unwrap_or_default(), next))
        }
    };
    Attempted {
        delivery_id: due.delivery_id,
        status,
        failure,
        at,
    }
}
