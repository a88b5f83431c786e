//! The sale itself: a book of codes, and users racing to claim them until every user has had an
//! answer (or the baseline's time is up).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hyper::StatusCode;
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::client::{back_off, workers, Connection, Tally, Target};
use crate::server::{Process, Sample};

/// A retried request gives up after this many tries (the server is down, not busy).
pub const MAX_ATTEMPTS: u32 = 10;

/// A claim the server acknowledged with a 201.
#[derive(Debug, Clone)]
pub struct Claim {
    pub user: String,
    pub code: String,
}

/// Creates a book of `codes` unique codes, one per user, and returns its id.
pub async fn create_book(admin: &Arc<Target>, name: &str, prefix: &str, codes: u64) -> anyhow::Result<String> {
    #[derive(Deserialize)]
    struct Created {
        coupon_book_id: String,
    }
    let body = json!({
        "name": name,
        "description": "coupond bench",
        "code_pattern": code_pattern(prefix, codes),
        "total_codes": codes,
        "discount": {"type": "percentage", "value": 10},
        "max_codes_per_user": 1,
    });
    let answer = Connection::new(admin.clone())
        .with_timeout(Duration::from_secs(3600))
        .post("/coupons", &body)
        .await
        .context("creating a book")?;
    if answer.status != StatusCode::CREATED {
        bail!(
            "creating a book answered {}: {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        );
    }
    Ok(serde_json::from_slice::<Created>(&answer.body)?.coupon_book_id)
}

/// `PREFIX-` and enough `*` (31 symbols each) for the 1000 × count space the server demands.
fn code_pattern(prefix: &str, codes: u64) -> String {
    let needed = u128::from(codes.max(1)) * 1000;
    let mut stars = 8;
    while 31u128.pow(stars) < needed {
        stars += 1;
    }
    format!("{prefix}-{}", "*".repeat(stars as usize))
}

pub struct ClaimLoad {
    pub target: Arc<Target>,
    pub connections: usize,
    pub book: String,
    /// Users are `{user_prefix}{i}` for i in 0..users, each claiming once.
    pub user_prefix: &'static str,
    pub users: u64,
    pub deadline: Option<Instant>,
    /// Stop at the first out_of_stock: the baseline measures claims only.
    pub stop_when_sold_out: bool,
    /// Each claim carries an `Idempotency-Key` (its user's id: one claim per user).
    pub keyed: bool,
    pub server: Process,
    pub progress: ProgressBar,
}

pub struct ClaimOutcome {
    /// 201 answers; the phase's errors are counted here.
    pub claimed: Tally,
    pub out_of_stock: Tally,
    pub claims: Vec<Claim>,
    /// From the start to the last 201.
    pub claim_seconds: f64,
    /// From the first out_of_stock to the end.
    pub out_of_stock_seconds: f64,
    pub started: Option<Sample>,
    /// The server when the first out_of_stock arrived: it divides the phase's CPU between the two.
    pub sold_out: Option<Sample>,
    pub ended: Option<Sample>,
}

struct Worker {
    claimed: Tally,
    out_of_stock: Tally,
    claims: Vec<Claim>,
    last_claim: Option<Instant>,
    first_out_of_stock: Option<Instant>,
}

#[derive(Serialize)]
struct Assign<'a> {
    coupon_book_id: &'a str,
    user_id: &'a str,
}

#[derive(Deserialize)]
struct Assigned {
    assigned_code: String,
}

#[derive(Deserialize)]
struct Problem {
    code: String,
}

pub async fn run(load: ClaimLoad) -> ClaimOutcome {
    let load = Arc::new(load);
    let next_user = Arc::new(AtomicU64::new(0));
    let sold_out: Arc<OnceLock<Option<Sample>>> = Arc::new(OnceLock::new());
    let started = load.server.begin();
    let start = Instant::now();
    let done = workers(load.connections, |_| {
        claim_worker(load.clone(), next_user.clone(), sold_out.clone())
    })
    .await;
    let end = Instant::now();
    let ended = load.server.sample();

    let last_claim = done.iter().filter_map(|w| w.last_claim).max();
    let first_out_of_stock = done.iter().filter_map(|w| w.first_out_of_stock).min();
    let mut claims = Vec::new();
    let (mut claimed, mut out_of_stock) = (Vec::new(), Vec::new());
    for w in done {
        claims.extend(w.claims);
        claimed.push(w.claimed);
        out_of_stock.push(w.out_of_stock);
    }
    ClaimOutcome {
        claimed: Tally::merge(claimed),
        out_of_stock: Tally::merge(out_of_stock),
        claims,
        claim_seconds: last_claim.map_or(0.0, |t| t.duration_since(start).as_secs_f64()),
        out_of_stock_seconds: first_out_of_stock.map_or(0.0, |t| end.duration_since(t).as_secs_f64()),
        started,
        sold_out: sold_out.get().copied().flatten(),
        ended,
    }
}

async fn claim_worker(
    load: Arc<ClaimLoad>,
    next_user: Arc<AtomicU64>,
    sold_out: Arc<OnceLock<Option<Sample>>>,
) -> Worker {
    let mut connection = Connection::new(load.target.clone());
    let mut w = Worker {
        claimed: Tally::new(),
        out_of_stock: Tally::new(),
        claims: Vec::new(),
        last_claim: None,
        first_out_of_stock: None,
    };
    loop {
        if load.stop_when_sold_out && sold_out.get().is_some() {
            break;
        }
        if load.deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let i = next_user.fetch_add(1, Ordering::Relaxed);
        if i >= load.users {
            break;
        }
        let user = format!("{}{i}", load.user_prefix);
        let body = Assign {
            coupon_book_id: &load.book,
            user_id: &user,
        };
        // Retried only when the answer is unknown (transport error) or a 5xx, which changes nothing.
        for _ in 0..MAX_ATTEMPTS {
            let key = load.keyed.then_some(user.as_str());
            let answer = match connection.post_keyed("/coupons/assign", &body, key).await {
                Ok(answer) => answer,
                Err(_) => {
                    w.claimed.errors += 1;
                    back_off().await;
                    continue;
                }
            };
            if answer.status == StatusCode::CREATED {
                match serde_json::from_slice::<Assigned>(&answer.body) {
                    Ok(a) => {
                        w.claimed.record(answer.latency);
                        w.last_claim = Some(Instant::now());
                        w.claims.push(Claim {
                            user,
                            code: a.assigned_code,
                        });
                    }
                    Err(_) => w.claimed.errors += 1,
                }
                break;
            }
            if answer.status == StatusCode::CONFLICT && is_out_of_stock(&answer.body) {
                w.out_of_stock.record(answer.latency);
                w.first_out_of_stock.get_or_insert_with(Instant::now);
                sold_out.get_or_init(|| {
                    let sample = load.server.sample();
                    load.server.reset_peak();
                    sample
                });
                break;
            }
            w.claimed.errors += 1;
            if !answer.status.is_server_error() {
                break;
            }
            back_off().await;
        }
        load.progress.inc(1);
    }
    w
}

fn is_out_of_stock(body: &[u8]) -> bool {
    serde_json::from_slice::<Problem>(body).is_ok_and(|p| p.code == "out_of_stock")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_leave_the_space_the_server_demands() {
        assert_eq!(code_pattern("FS", 200), "FS-********");
        assert_eq!(code_pattern("FS", 100_000), "FS-********");
        // 31^8 ≈ 8.5e11 < 1000 × 1e9.
        assert_eq!(code_pattern("FS", 1_000_000_000), "FS-*********");
    }
}
