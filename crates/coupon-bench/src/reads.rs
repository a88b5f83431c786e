//! Traffic that writes nothing: the no-op floor, the read mix after the sale, and idle connections.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use hyper::StatusCode;
use indicatif::ProgressBar;
use serde::Serialize;

use crate::claim::Claim;
use crate::client::{back_off, workers, Connection, Tally, Target};
use crate::server::Process;

/// `GET /healthz` as fast as the connections go: what the HTTP stack alone costs.
pub async fn noop(target: &Arc<Target>, connections: usize, run_for: Duration, progress: &ProgressBar) -> Tally {
    let deadline = Instant::now() + run_for;
    let tallies = workers(connections, |_| {
        let (target, progress) = (target.clone(), progress.clone());
        async move {
            let mut connection = Connection::new(target);
            let mut tally = Tally::new();
            while Instant::now() < deadline {
                get_counted(&mut connection, "/healthz", &mut tally).await;
                progress.inc(1);
            }
            tally
        }
    })
    .await;
    Tally::merge(tallies)
}

/// Alternately a user's coupons and a validation of one of them, over random acknowledged claims.
pub async fn read_mix(
    target: &Arc<Target>,
    connections: usize,
    claims: &Arc<Vec<Claim>>,
    run_for: Duration,
    progress: &ProgressBar,
) -> Tally {
    if claims.is_empty() {
        return Tally::new();
    }
    let deadline = Instant::now() + run_for;
    let tallies = workers(connections, |worker| {
        let (target, claims, progress) = (target.clone(), claims.clone(), progress.clone());
        async move {
            let mut connection = Connection::new(target);
            let mut tally = Tally::new();
            // Workers start on different kinds so the mix stays even at every instant.
            let mut list = worker % 2 == 0;
            while Instant::now() < deadline {
                let claim = &claims[rand::random_range(0..claims.len())];
                let path = if list {
                    format!("/users/{}/coupons", claim.user)
                } else {
                    format!(
                        "/coupons/validate/{}?user_id={}&order_amount=10000",
                        claim.code, claim.user
                    )
                };
                list = !list;
                get_counted(&mut connection, &path, &mut tally).await;
                progress.inc(1);
            }
            tally
        }
    })
    .await;
    Tally::merge(tallies)
}

/// Sends one GET and counts its answer: a 200 is timed, anything else is an error.
async fn get_counted(connection: &mut Connection, path: &str, tally: &mut Tally) {
    match connection.get(path).await {
        Ok(answer) if answer.status == StatusCode::OK => tally.record(answer.latency),
        Ok(_) => tally.errors += 1,
        Err(_) => {
            tally.errors += 1;
            back_off().await;
        }
    }
}

/// What many open, quiet keep-alive connections cost the server.
#[derive(Debug, Clone, Serialize)]
pub struct IdleConnections {
    pub requested: usize,
    pub opened: usize,
    pub errors: u64,
    pub server_rss_before_bytes: u64,
    pub server_rss_bytes: u64,
    pub server_peak_rss_bytes: u64,
}

/// Opens `count` connections, each answering one `/healthz`, and reads the server's memory while
/// all of them are still open.
pub async fn idle_connections(
    target: &Arc<Target>,
    count: usize,
    server: Process,
    progress: &ProgressBar,
) -> IdleConnections {
    let before = server.begin();
    // Opened a few hundred at a time: a burst of thousands of SYNs overflows the listen backlog.
    let results: Vec<Option<Connection>> = stream::iter(0..count)
        .map(|_| {
            let (target, progress) = (target.clone(), progress.clone());
            async move {
                let mut connection = Connection::new(target);
                let ok = connection
                    .get("/healthz")
                    .await
                    .is_ok_and(|a| a.status == StatusCode::OK);
                progress.inc(1);
                ok.then_some(connection)
            }
        })
        .buffer_unordered(256)
        .collect()
        .await;
    let after = server.sample();
    let opened = results.iter().flatten().count();
    drop(results);
    IdleConnections {
        requested: count,
        opened,
        errors: (count - opened) as u64,
        server_rss_before_bytes: before.map_or(0, |s| s.rss_bytes()),
        server_rss_bytes: after.map_or(0, |s| s.rss_bytes()),
        server_peak_rss_bytes: after.map_or(0, |s| s.peak_rss_bytes()),
    }
}
