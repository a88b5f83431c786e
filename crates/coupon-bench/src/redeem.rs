//! Checkout: every acknowledged claim redeemed against its own order.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use hyper::StatusCode;
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};

use crate::claim::{Claim, MAX_ATTEMPTS};
use crate::client::{back_off, workers, Connection, Tally, Target};

pub struct RedeemLoad {
    pub target: Arc<Target>,
    pub connections: usize,
    pub claims: Arc<Vec<Claim>>,
    pub deadline: Option<Instant>,
    pub progress: ProgressBar,
}

#[derive(Serialize)]
struct Redeem<'a> {
    user_id: &'a str,
    order_id: String,
    order_amount: i64,
}

#[derive(Deserialize)]
struct Redeemed {
    status: String,
}

/// Redeems claims until all are done or the deadline passes; the tally's answers are the
/// acknowledged redeems.
pub async fn run(load: RedeemLoad) -> (Tally, f64) {
    let load = Arc::new(load);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let tallies = workers(load.connections, |_| redeem_worker(load.clone(), next.clone())).await;
    (Tally::merge(tallies), start.elapsed().as_secs_f64())
}

async fn redeem_worker(load: Arc<RedeemLoad>, next: Arc<AtomicUsize>) -> Tally {
    let mut connection = Connection::new(load.target.clone());
    let mut tally = Tally::new();
    loop {
        if load.deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let Some(claim) = load.claims.get(next.fetch_add(1, Ordering::Relaxed)) else {
            break;
        };
        let path = format!("/coupons/redeem/{}", claim.code);
        // The order id makes a retry answer the first redemption instead of counting twice.
        let body = Redeem {
            user_id: &claim.user,
            order_id: format!("o-{}", claim.user),
            order_amount: 10_000,
        };
        for _ in 0..MAX_ATTEMPTS {
            let answer = match connection.post(&path, &body).await {
                Ok(answer) => answer,
                Err(_) => {
                    tally.errors += 1;
                    back_off().await;
                    continue;
                }
            };
            let redeemed = matches!(answer.status, StatusCode::OK | StatusCode::CREATED)
                && serde_json::from_slice::<Redeemed>(&answer.body).is_ok_and(|r| r.status == "redeemed");
            if redeemed {
                tally.record(answer.latency);
                break;
            }
            tally.errors += 1;
            if !answer.status.is_server_error() {
                break;
            }
            back_off().await;
        }
        load.progress.inc(1);
    }
    tally
}
