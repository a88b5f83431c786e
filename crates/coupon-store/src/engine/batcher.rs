//! Group commit in the application: requests queue up while the previous batch runs, and the next
//! batch takes all of them (up to a maximum) the moment that batch's commit returns. A lone request
//! goes at once; nothing ever waits on a timer. Each caller is answered after its batch committed.
//! At shutdown a queue takes no more requests, runs the ones it holds, and waits for its batches.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use coupon_core::{CouponError, Timestamp};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio_util::sync::WaitForCancellationFutureOwned;

use super::Lane;
use crate::{telemetry, BatchResult, StoreError};

/// One request's answer: its own outcome, or the failure of the store.
pub type Answer<T> = Result<Result<T, CouponError>, StoreError>;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Runs a batch against the store: one transaction, one answer per request.
pub type RunBatch<R, T> = Arc<dyn Fn(Vec<R>, Timestamp) -> BoxFuture<BatchResult<T>> + Send + Sync>;

/// How a queue forms and runs its batches.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Requests per batch at most.
    pub max: usize,
    /// Batches running at once: each takes its own connection and transaction. A batch closes when
    /// it is full or when a running one finishes.
    pub in_flight: usize,
    /// The worker stops after this long without work.
    pub idle: Option<Duration>,
}

struct Job<R, T> {
    req: R,
    now: Timestamp,
    reply: oneshot::Sender<Answer<T>>,
}

pub struct Batcher<R, T> {
    jobs: mpsc::UnboundedSender<Job<R, T>>,
}

impl<R, T> Batcher<R, T>
where
    R: Clone + Send + 'static,
    T: Send + 'static,
{
    /// Starts the worker on the engine's lane, with at most `in_flight` batches running at once; it
    /// stops when the batcher is dropped, after `idle` without work, or once shutdown has begun
    /// and the requests it had taken are answered.
    /// `op` names the operation in the batch metrics.
    pub(super) fn start(lane: &Lane, shape: Shape, op: &'static str, run: RunBatch<R, T>) -> Self {
        let (jobs, queue) = mpsc::unbounded_channel();
        let run = Timed { op, run };
        lane.spawn(work(queue, shape, run, lane.background.stopping()));
        Batcher { jobs }
    }

    /// Queues the request for the next batch and waits for its answer. `None` when the worker has
    /// stopped (idle, or shutting down).
    pub async fn submit(&self, req: R, now: Timestamp) -> Option<Answer<T>> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send(Job { req, now, reply }).ok()?;
        answer.await.ok()
    }
}

async fn work<R, T>(
    mut queue: mpsc::UnboundedReceiver<Job<R, T>>,
    shape: Shape,
    run: Timed<R, T>,
    stopping: WaitForCancellationFutureOwned,
) where
    R: Clone + Send + 'static,
    T: Send + 'static,
{
    let in_flight = shape.in_flight.max(1);
    let slots = Arc::new(Semaphore::new(in_flight));
    let mut stopping = std::pin::pin!(stopping);
    let mut draining = false;
    loop {
        let first = if draining {
            queue.recv().await
        } else {
            tokio::select! {
                job = next(&mut queue, shape.idle) => job,
                () = &mut stopping => {
                    // Take no more: what is queued still runs, below.
                    draining = true;
                    queue.close();
                    continue;
                }
            }
        };
        let Some(first) = first else { break };
        // Wait for a free slot first: whatever queues meanwhile joins this batch.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let mut batch = vec![first];
        while batch.len() < shape.max {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let run = run.clone();
        tokio::spawn(async move {
            settle(&run, batch).await;
            drop(slot);
        });
    }
    // The batches still running answer their callers before the worker is done.
    let _ = slots.acquire_many(in_flight as u32).await;
}

/// The next job; after `idle` without one the queue closes, and a job that raced in is still taken.
async fn next<R, T>(queue: &mut mpsc::UnboundedReceiver<Job<R, T>>, idle: Option<Duration>) -> Option<Job<R, T>> {
    match idle {
        Some(idle) => match tokio::time::timeout(idle, queue.recv()).await {
            Ok(job) => job,
            Err(_) => {
                queue.close();
                queue.recv().await
            }
        },
        None => queue.recv().await,
    }
}

/// A batch runner that measures each batch it writes: the one place the engine awaits the store's
/// batch call.
struct Timed<R, T> {
    op: &'static str,
    run: RunBatch<R, T>,
}

impl<R, T> Clone for Timed<R, T> {
    fn clone(&self) -> Self {
        Timed {
            op: self.op,
            run: self.run.clone(),
        }
    }
}

impl<R, T> Timed<R, T> {
    async fn run(&self, batch: Vec<R>, now: Timestamp) -> BatchResult<T> {
        let size = batch.len();
        let started = std::time::Instant::now();
        let outcome = (self.run)(batch, now).await;
        let took = started.elapsed();
        tracing::debug!(op = self.op, size, micros = took.as_micros() as u64, "batch ran");
        telemetry::batch_written(self.op, size, took);
        outcome
    }
}

/// Runs the batch; if the store fails it, runs each request alone so that one bad request (or a
/// conflict with another instance) does not fail the others.
async fn settle<R: Clone, T>(run: &Timed<R, T>, batch: Vec<Job<R, T>>) {
    // Time only moves forward: the batch runs at the latest of its requests' clocks.
    let now = batch.iter().map(|j| j.now).max().expect("a batch is never empty");
    let reqs = batch.iter().map(|j| j.req.clone()).collect();
    let outcome = run.run(reqs, now).await;
    match outcome {
        Ok(answers) => {
            for (job, answer) in batch.into_iter().zip(answers) {
                let _ = job.reply.send(Ok(answer));
            }
        }
        // A saturated or unreachable database would refuse each request alone too, after as long
        // a wait again.
        Err(e) if e.is_unavailable() => {
            let why = e.to_string();
            for job in batch {
                let _ = job.reply.send(Err(StoreError::Unavailable(why.clone())));
            }
        }
        Err(e) if batch.len() == 1 => {
            let job = batch.into_iter().next().expect("one job");
            let _ = job.reply.send(Err(e));
        }
        Err(e) => {
            tracing::debug!(error = %e, size = batch.len(), "batch failed; running its requests one by one");
            for job in batch {
                let answer = run.run(vec![job.req], job.now).await.map(|mut a| a.remove(0));
                let _ = job.reply.send(answer);
            }
        }
    }
}
