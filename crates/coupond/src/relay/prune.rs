//! Pruning: finished deliveries, and events every consumer has passed, go once past the retention.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::Shared;

/// Deletes what is older than the retention, every `prune_every`.
pub(super) async fn run(shared: Arc<Shared>, stop: CancellationToken) {
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
