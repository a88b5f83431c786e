//! The one owner of background work: every task the service starts (the claim engine's workers and
//! its thread, the event relay's loops, the throttle's pruning) is spawned through [`Background`],
//! watches its stop signal, and is waited for by [`Background::shutdown`]. This is mini-redis's shape, a
//! shutdown signal and a completion wait, with tokio-util's token and tracker.

use std::future::Future;

use tokio::runtime::Handle;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tokio_util::task::TaskTracker;

#[derive(Clone, Default)]
pub struct Background {
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl Background {
    pub fn new() -> Self {
        Background::default()
    }

    /// Runs `task` on `runtime`. It is expected to finish soon after [`Background::stopping`]
    /// completes, having finished the work it had accepted.
    pub fn spawn_on<F>(&self, runtime: &Handle, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn_on(task, runtime);
    }

    /// Completes once shutdown has begun.
    pub fn stopping(&self) -> WaitForCancellationFutureOwned {
        self.stop.clone().cancelled_owned()
    }

    pub fn is_stopping(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// Tells every task to stop and waits until all of them have finished.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}
