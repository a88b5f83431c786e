//! Publishing the feed to NATS JetStream: a batch of events after NATS's place in the feed, then
//! the place moves past it. Two instances may publish one batch twice; the stream drops the repeat
//! by its `Nats-Msg-Id`, and only one of them moves the place.

use std::sync::Arc;

use coupon_relay::{Jetstream, Outgoing, StreamConfig};
use coupon_store::EventCursor;
use tokio_util::sync::CancellationToken;

use super::Shared;

const PLACE: &str = "nats";
const BATCH: u32 = 500;

/// Publishes until stopped. NATS may be down when coupond starts or later: events wait in the
/// outbox, and the loop connects again.
pub(super) async fn publish(shared: Arc<Shared>, url: String, config: StreamConfig, stop: CancellationToken) {
    let mut connected: Option<Jetstream> = None;
    loop {
        if connected.is_none() {
            match Jetstream::connect(&url, config.clone()).await {
                Ok(js) => connected = Some(js),
                Err(e) => tracing::warn!(error = %e, "NATS is unreachable; events wait in the outbox"),
            }
        }
        let Some(js) = &connected else {
            for _ in 0..10 {
                if !shared.idle(&stop).await {
                    return;
                }
            }
            continue;
        };
        match once(&shared, js).await {
            Ok(n) if n as u32 == BATCH => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "publishing events to NATS failed; retrying"),
        }
        if !shared.idle(&stop).await {
            return;
        }
    }
}

async fn once(shared: &Shared, js: &Jetstream) -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
    let (from, events) = shared.store.relay_next(PLACE, BATCH).await?;
    let Some(to) = events.last().map(|e| e.cursor) else {
        return Ok(0);
    };
    let outgoing: Vec<Outgoing<'_>> = events
        .iter()
        .map(|e| Outgoing {
            id: e.id,
            event_type: e.event_type.as_str(),
            body: super::body(e).into(),
        })
        .collect();
    js.publish(&outgoing).await?;
    if !shared.store.relay_moved(PLACE, from, to).await? {
        tracing::debug!(from = %EventCursor::to_string(&from), "another instance published this batch too");
    }
    Ok(events.len())
}
