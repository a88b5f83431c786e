//! Idempotency keys go once past their retention: a retry later than that runs afresh.

use std::sync::Arc;
use std::time::Duration;

use coupon_core::Clock;
use coupon_store::{Background, Coupons};

/// How often keys past their retention are deleted.
const EVERY: Duration = Duration::from_secs(60);

/// Deletes keys older than `retention` every minute, under the background owner, until shutdown.
pub fn start(coupons: Coupons, clock: Arc<dyn Clock>, retention: Duration, background: &Background) {
    let stopping = background.stopping();
    background.spawn_on(&tokio::runtime::Handle::current(), async move {
        let mut stopping = std::pin::pin!(stopping);
        loop {
            let seconds = i64::try_from(retention.as_secs()).unwrap_or(i64::MAX / 2_000);
            match coupons.purge_keys(clock.now().plus_seconds(-seconds)).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(keys = n, "purged idempotency keys past their retention"),
                Err(e) => tracing::warn!(error = %e, "purging idempotency keys failed; retrying"),
            }
            tokio::select! {
                () = &mut stopping => return,
                () = tokio::time::sleep(EVERY) => {}
            }
        }
    });
}
