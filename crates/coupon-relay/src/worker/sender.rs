//! One endpoint's sender: leases its due deliveries, sends them at once (up to `per_endpoint`),
//! and records every outcome in one transaction. A lease outlasts an attempt's timeout, so a
//! sender that dies mid-attempt leaves the delivery due again to whoever comes next.

use std::sync::Arc;
use std::time::Duration;

use coupon_store::webhooks::{Attempted, Due, Endpoint};
use tokio_util::sync::CancellationToken;

use super::Shared;
use crate::{Outcome, Outgoing, Secret};

pub(crate) async fn run(shared: Arc<Shared>, endpoint: Endpoint, stop: CancellationToken) {
    let secret = Secret::new(endpoint.secret.clone());
    let id = endpoint.webhook.id;
    let lease = shared.config.webhook.timeout * 2 + Duration::from_secs(5);
    // Leasing is a write: an idle endpoint looks less and less often (up to every 2 s), so many
    // quiet endpoints do not keep SQLite's one writer busy; new work brings it back to the poll.
    let mut idle = 0u32;
    loop {
        let now = shared.now();
        let until = now.plus_seconds(lease.as_secs() as i64);
        let due = match shared
            .store
            .lease_deliveries(id, shared.config.per_endpoint, until, now)
            .await
        {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(webhook = %id, error = %e, "leasing webhook deliveries failed; retrying");
                Vec::new()
            }
        };
        if due.is_empty() {
            idle = (idle + 1).min(5);
            let wait = (shared.config.poll * (1 << idle)).min(Duration::from_secs(2));
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            continue;
        }
        idle = 0;
        let sends = due.iter().map(|d| send(&shared, &endpoint.webhook.url, &secret, d));
        let attempted = futures::future::join_all(sends).await;
        // Recorded even when stopping: the attempts were made.
        if let Err(e) = shared.store.settle_deliveries(attempted).await {
            tracing::warn!(webhook = %id, error = %e, "recording webhook attempts failed; they will be sent again");
        }
        if stop.is_cancelled() {
            return;
        }
    }
}

async fn send(shared: &Shared, url: &str, secret: &Secret, due: &Due) -> Attempted {
    let body = (shared.render)(&due.event).into();
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
