//! Fanning the outbox feed out into webhook deliveries: one per event and subscribed endpoint.

use std::sync::Arc;

use coupon_store::webhooks::FAN_OUT;
use tokio_util::sync::CancellationToken;

use super::Shared;

/// Fans the feed out into deliveries, a batch per transaction, as fast as it fills. Once the feed
/// is idle it is watched with a read, not a write transaction, so that an idle relay does not keep
/// SQLite's one writer busy.
pub(super) async fn run(shared: Arc<Shared>, stop: CancellationToken) {
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
