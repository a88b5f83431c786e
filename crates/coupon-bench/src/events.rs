//! The flash sale's events (`--webhook`): a receiver on 127.0.0.1 subscribed to every event, the
//! delay from each claim's event to its receipt, and the outbox backlog sampled from `/metrics`
//! while the sale runs.
//!
//! The delay runs from the event's `occurred_at`, which the server takes just before the claim's
//! batch is written, to the moment the receiver reads the body: the batch's own commit is in it,
//! so it is an upper bound of commit to receipt (at millisecond precision, on one machine's clock).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::client::{Connection, Latency, Target};

/// How often the backlog is read from `/metrics`: more often than a Prometheus server would, and
/// seldom enough that the reads cost the sale little.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// What the receiver saw, and the backlog at its peaks.
#[derive(Debug, Clone, Serialize)]
pub struct Events {
    /// Distinct events received.
    pub received: u64,
    /// Events received again (a retry after a lost answer); at-least-once allows them.
    pub duplicates: u64,
    /// The flash-sale book's `code.claimed` events received.
    pub claims_received: u64,
    /// From a claim event's `occurred_at` to its receipt.
    pub claim_delay_ms: Latency,
    /// After the sale's last request, how long the last claim events took to arrive.
    pub drain_seconds: f64,
    pub peak_unread_events: f64,
    pub peak_pending_deliveries: f64,
    pub peak_oldest_seconds: f64,
}

#[derive(Deserialize)]
struct Incoming {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    occurred_at: chrono::DateTime<chrono::Utc>,
    book_id: Option<String>,
}

struct Seen {
    ids: HashSet<String>,
    duplicates: u64,
    /// The book whose claims are timed, once it exists.
    book: Option<String>,
    claims: u64,
    /// Microseconds from `occurred_at` to receipt.
    delay: Histogram<u64>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Peaks {
    unread: f64,
    pending: f64,
    oldest: f64,
}

/// A receiver subscribed to every event, and a sampler of the server's backlog.
pub struct Receiver {
    seen: Arc<Mutex<Seen>>,
    stop_sampling: watch::Sender<bool>,
    sampler: JoinHandle<Peaks>,
}

impl Receiver {
    /// Starts the receiver and registers it with the server as an endpoint for `"*"`.
    pub async fn start(admin: &Arc<Target>) -> anyhow::Result<Receiver> {
        let seen = Arc::new(Mutex::new(Seen {
            ids: HashSet::new(),
            duplicates: 0,
            book: None,
            claims: 0,
            delay: Histogram::new_with_max(600_000_000, 3).expect("valid histogram bounds"),
        }));
        // A receiver is another process in production: here it gets a thread and runtime of its
        // own, so that its answers do not queue behind the load's own tasks.
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let url = format!("http://{}/events", listener.local_addr()?);
        let app = axum::Router::new()
            .route("/events", axum::routing::post(receive))
            .with_state(seen.clone());
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        // It answers until the bench exits: the server goes on sending the redemptions' events.
        std::thread::spawn(move || {
            runtime.block_on(async move {
                if let Ok(listener) = tokio::net::TcpListener::from_std(listener) {
                    let _ = axum::serve(listener, app).await;
                }
            });
        });
        let body = json!({"url": url, "events": ["*"], "description": "coupond bench receiver"});
        let answer = Connection::new(admin.clone()).post("/webhooks", &body).await?;
        if answer.status != StatusCode::CREATED {
            bail!(
                "registering the webhook: {} {}",
                answer.status,
                String::from_utf8_lossy(&answer.body)
            );
        }
        let (stop_sampling, stopped) = watch::channel(false);
        let sampler = tokio::spawn(sample(Connection::new(admin.clone()), stopped));
        Ok(Receiver {
            seen,
            stop_sampling,
            sampler,
        })
    }

    /// Times the claim events of `book` from now on.
    pub fn time_claims_of(&self, book: &str) {
        self.seen.lock().expect("receiver state").book = Some(book.to_owned());
    }

    /// Waits until `claims` claim events of the timed book have arrived (at most `limit`), and
    /// stops sampling the backlog.
    pub async fn drain(self, claims: u64, limit: Duration) -> anyhow::Result<Events> {
        let started = Instant::now();
        while self.seen.lock().expect("receiver state").claims < claims {
            if started.elapsed() > limit {
                bail!("the receiver had not got every claim event after {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let drain_seconds = started.elapsed().as_secs_f64();
        let _ = self.stop_sampling.send(true);
        let peaks = self.sampler.await.context("the backlog sampler")?;
        let seen = self.seen.lock().expect("receiver state");
        let ms = |micros: u64| micros as f64 / 1000.0;
        let h = &seen.delay;
        Ok(Events {
            received: seen.ids.len() as u64,
            duplicates: seen.duplicates,
            claims_received: seen.claims,
            claim_delay_ms: Latency {
                p50: ms(h.value_at_quantile(0.5)),
                p99: ms(h.value_at_quantile(0.99)),
                p99_9: ms(h.value_at_quantile(0.999)),
                max: ms(h.max()),
            },
            drain_seconds,
            peak_unread_events: peaks.unread,
            peak_pending_deliveries: peaks.pending,
            peak_oldest_seconds: peaks.oldest,
        })
    }
}

async fn receive(State(seen): State<Arc<Mutex<Seen>>>, body: Bytes) -> StatusCode {
    let received = chrono::Utc::now();
    let Ok(event) = serde_json::from_slice::<Incoming>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let mut seen = seen.lock().expect("receiver state");
    if !seen.ids.insert(event.id) {
        seen.duplicates += 1;
        return StatusCode::NO_CONTENT;
    }
    if event.event_type == "code.claimed" && event.book_id.is_some() && event.book_id == seen.book {
        seen.claims += 1;
        let delay = (received - event.occurred_at).num_microseconds().unwrap_or(i64::MAX);
        seen.delay.saturating_record(u64::try_from(delay).unwrap_or(0));
    }
    StatusCode::NO_CONTENT
}

/// Reads the backlog gauges every `SAMPLE_EVERY` until told to stop, keeping each one's peak.
async fn sample(mut metrics: Connection, mut stopped: watch::Receiver<bool>) -> Peaks {
    let mut peaks = Peaks::default();
    loop {
        if let Ok(answer) = metrics.get("/metrics").await {
            let text = String::from_utf8_lossy(&answer.body);
            for line in text.lines().filter(|l| !l.starts_with('#')) {
                let Some((series, value)) = line.rsplit_once(' ') else {
                    continue;
                };
                let value: f64 = value.parse().unwrap_or(0.0);
                let peak = match series {
                    "coupond_outbox_backlog{consumer=\"webhooks\"}" => &mut peaks.unread,
                    "coupond_outbox_backlog{consumer=\"deliveries\"}" => &mut peaks.pending,
                    s if s.starts_with("coupond_outbox_oldest_seconds{") => &mut peaks.oldest,
                    _ => continue,
                };
                *peak = peak.max(value);
            }
        }
        tokio::select! {
            _ = stopped.changed() => return peaks,
            () = tokio::time::sleep(SAMPLE_EVERY) => {}
        }
    }
}
