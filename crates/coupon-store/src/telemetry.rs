//! The store's metrics, through the `metrics` facade: what a request came to, how the claim
//! engine's batches ran, and how busy the database's connections are. Nothing here knows how they
//! are exported; with no recorder installed every call is a no-op.
//!
//! Outcomes are `ok` or a stable code (`out_of_stock`, `unavailable`, ...), so the series stay few.

use coupon_core::{CouponError, Timestamp};

use crate::webhooks::{Attempted, Backlog};
use crate::StoreError;

/// Claims, locks, unlocks, redemptions and rollbacks, by outcome.
pub const CLAIMS: &str = "coupond_claims_total";
pub const LOCKS: &str = "coupond_locks_total";
pub const UNLOCKS: &str = "coupond_unlocks_total";
pub const REDEMPTIONS: &str = "coupond_redemptions_total";
pub const ROLLBACKS: &str = "coupond_rollbacks_total";
/// Requests per batch the claim engine wrote, by operation.
pub const BATCH_SIZE: &str = "coupond_batch_size";
/// How long a batch's transaction took until it committed (or failed), by operation.
pub const BATCH_COMMIT_SECONDS: &str = "coupond_batch_commit_seconds";
/// Database connections by pool and state (`in_use`, `idle`), and requests waiting for one.
pub const DB_CONNECTIONS: &str = "coupond_db_connections";
pub const DB_WAITING: &str = "coupond_db_waiting";
/// Events a consumer of the feed has not read yet (`consumer`: `webhooks`, the fan-out to the
/// endpoints, or `nats`), and pending webhook deliveries (`consumer="deliveries"`).
pub const OUTBOX_BACKLOG: &str = "coupond_outbox_backlog";
/// Age of the oldest event in each backlog, 0 when it is empty.
pub const OUTBOX_OLDEST_SECONDS: &str = "coupond_outbox_oldest_seconds";
/// Webhook attempts recorded, by outcome: `delivered`, `retrying`, or `failed` (given up).
pub const WEBHOOK_DELIVERIES: &str = "coupond_webhook_deliveries_total";

/// Batch sizes the histogram tells apart: a lone request up to the claim batch's cap of 1000.
pub const BATCH_SIZE_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0];

/// HELP texts, for the recorder once it is installed.
pub fn describe() {
    for (name, what) in [
        (CLAIMS, "Claims answered, by outcome: ok or the refusal's code."),
        (LOCKS, "Locks answered, by outcome."),
        (UNLOCKS, "Unlocks answered, by outcome."),
        (REDEMPTIONS, "Redemptions answered, by outcome."),
        (ROLLBACKS, "Rollbacks answered, by outcome."),
        (
            WEBHOOK_DELIVERIES,
            "Webhook attempts recorded, by outcome: delivered, retrying, failed (given up).",
        ),
    ] {
        metrics::describe_counter!(name, what);
    }
    metrics::describe_histogram!(BATCH_SIZE, "Requests per batch the claim engine wrote, by op.");
    metrics::describe_histogram!(
        BATCH_COMMIT_SECONDS,
        metrics::Unit::Seconds,
        "Time a claim engine batch took until its commit (or failure), by op."
    );
    metrics::describe_gauge!(
        DB_CONNECTIONS,
        "Database connections by pool and state (in_use, idle), sampled when scraped."
    );
    metrics::describe_gauge!(
        OUTBOX_BACKLOG,
        "Events not yet read by each consumer of the feed (webhooks, nats), and pending webhook \
         deliveries (deliveries), sampled when scraped."
    );
    metrics::describe_gauge!(
        OUTBOX_OLDEST_SECONDS,
        metrics::Unit::Seconds,
        "Age of the oldest event in each backlog (0 when empty), sampled when scraped."
    );
    metrics::describe_gauge!(
        DB_WAITING,
        "Requests waiting for a database connection, by pool, sampled when scraped."
    );
}

/// The outcome label of an answer: `ok`, the refusal's code, or the code the API answers a failure
/// of the store with.
pub(crate) fn outcome<T>(answer: &Result<T, StoreError>) -> &'static str {
    match answer {
        Ok(_) => "ok",
        Err(StoreError::Rejected(e)) => CouponError::code(e),
        Err(StoreError::Unavailable(_)) => "unavailable",
        Err(StoreError::Replayed(_)) => "replayed",
        Err(StoreError::KeyReused) => "idempotency_key_reused",
        Err(StoreError::KeyInFlight) => "idempotency_in_flight",
        Err(_) => "internal_error",
    }
}

/// Counts one answer under `counter`, by outcome, and hands it on.
pub(crate) fn counted<T>(counter: &'static str, answer: Result<T, StoreError>) -> Result<T, StoreError> {
    metrics::counter!(counter, "outcome" => outcome(&answer)).increment(1);
    answer
}

/// How busy a pool of connections is at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Connections {
    pub in_use: usize,
    pub idle: usize,
    /// Requests waiting for a connection to come free.
    pub waiting: usize,
}

impl Connections {
    pub(crate) fn record(self, pool: &'static str) {
        metrics::gauge!(DB_CONNECTIONS, "pool" => pool, "state" => "in_use").set(self.in_use as f64);
        metrics::gauge!(DB_CONNECTIONS, "pool" => pool, "state" => "idle").set(self.idle as f64);
        metrics::gauge!(DB_WAITING, "pool" => pool).set(self.waiting as f64);
    }
}

/// One batch the claim engine wrote: its size, and how long its transaction took.
pub(crate) fn batch_written(op: &'static str, size: usize, took: std::time::Duration) {
    metrics::histogram!(BATCH_SIZE, "op" => op).record(size as f64);
    metrics::histogram!(BATCH_COMMIT_SECONDS, "op" => op).record(took.as_secs_f64());
}

impl Backlog {
    /// Sets the backlog gauges as of `now`.
    pub(crate) fn record(&self, now: Timestamp) {
        let age =
            |oldest: Option<Timestamp>| oldest.map_or(0.0, |t| (now.millis() - t.millis()).max(0) as f64 / 1000.0);
        let backlogs = self.unread.iter().map(|u| (u.consumer.clone(), u.events, u.oldest));
        let deliveries = ("deliveries".to_owned(), self.pending_deliveries, self.oldest_pending);
        for (consumer, size, oldest) in backlogs.chain([deliveries]) {
            metrics::gauge!(OUTBOX_OLDEST_SECONDS, "consumer" => consumer.clone()).set(age(oldest));
            metrics::gauge!(OUTBOX_BACKLOG, "consumer" => consumer).set(size as f64);
        }
    }
}

/// A webhook attempt's outcome label.
pub(crate) fn attempt_outcome(attempt: &Attempted) -> &'static str {
    match &attempt.failure {
        None => "delivered",
        Some((_, Some(_))) => "retrying",
        Some((_, None)) => "failed",
    }
}

/// Counts recorded webhook attempts, by their outcome labels.
pub(crate) fn attempts_settled(outcomes: &[&'static str]) {
    for outcome in outcomes {
        metrics::counter!(WEBHOOK_DELIVERIES, "outcome" => *outcome).increment(1);
    }
}
