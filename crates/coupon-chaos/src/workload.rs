//! The clients: each a task that picks an operation, logs it, sends it until it has an answer,
//! logs how it ended, and goes again until the run is over. Writes carry a fresh key per
//! operation; a few are sent twice at once to two instances (twins), and a few acknowledged ones
//! are sent again later (replays): either way every answer for the key must be the same.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::attempt::{Attempted, Policy, Sender, ServerError, Tokens};
use crate::history::{time, Attempt, Finished, History, Line, Outcome};
use crate::http::{now_ms, Client};
use crate::model::Model;
use crate::operation::{Answer, Op};

/// What every client shares.
pub struct Shared {
    pub model: Mutex<Model>,
    pub tokens: Tokens,
    pub policy: Policy,
    /// Set when the run is over.
    pub stop: AtomicBool,
    pub history: History,
    pub addrs: Vec<SocketAddr>,
    pub attempt_timeout: Duration,
    pub seed: u64,
    pub next_id: AtomicU64,
    /// Operations ended so far, for the progress line.
    pub done: AtomicU64,
    /// Of writes, the share sent as twins, and the share of acknowledged ones replayed.
    pub twins: f64,
    pub replays: f64,
}

/// What one client did.
#[derive(Default)]
pub struct ClientLog {
    pub finished: Vec<Finished>,
    pub server_errors: Vec<ServerError>,
}

impl Shared {
    pub fn sender(&self) -> Sender<'_> {
        Sender {
            tokens: &self.tokens,
            policy: self.policy,
            stop: &self.stop,
        }
    }

    fn model(&self) -> std::sync::MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A key no other operation of any run on this database has.
    pub fn key(&self, id: u64) -> String {
        format!("chaos-{:x}-{id}", self.seed)
    }
}

pub async fn client(index: usize, shared: Arc<Shared>) -> ClientLog {
    let mut rng = StdRng::seed_from_u64(shared.seed ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut client = Client::new(shared.addrs.clone(), shared.attempt_timeout);
    let mut twin = Client::new(shared.addrs.clone(), shared.attempt_timeout);
    let instances = shared.addrs.len();
    let sender = shared.sender();
    let mut log = ClientLog::default();
    let mut turn = index;
    while !shared.stop.load(Ordering::Relaxed) {
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let op = shared.model().next(id, shared.key(id), &mut rng);
        let request = op.request();
        turn += 1;
        let first = turn % instances;
        shared.history.write(Line::Invoke {
            time: time(now_ms()),
            op: op.clone(),
        });
        let twinned = op.kind.writes() && rng.random_bool(shared.twins);
        let (mut finished, attempts) = if twinned {
            let mut twin_rng = StdRng::seed_from_u64(rng.random());
            let (a, b) = tokio::join!(
                sender.perform(&mut client, &op, &request, first, &mut rng),
                sender.perform(&mut twin, &op, &request, first + 1, &mut twin_rng),
            );
            if let Some(answer) = definite(&b.outcome) {
                shared.history.write(again(&op, answer, "twin"));
            }
            log.server_errors
                .extend(a.server_errors.iter().chain(&b.server_errors).cloned());
            let finished = finish(&op, &a, Some(&b));
            (finished, [a.attempts, b.attempts].concat())
        } else {
            let a = sender.perform(&mut client, &op, &request, first, &mut rng).await;
            log.server_errors.extend(a.server_errors.iter().cloned());
            (finish(&op, &a, None), a.attempts)
        };
        shared.history.write(ended(&op, &finished.outcome, attempts, false));
        shared.model().learn(&op, &finished.outcome);
        if finished.ok().is_some() && op.key.is_some() && rng.random_bool(shared.replays) {
            // Later, from another instance, as a client whose answer was lost would.
            let replay = sender.perform(&mut client, &op, &request, first + 1, &mut rng).await;
            log.server_errors.extend(replay.server_errors);
            if let Some(answer) = definite(&replay.outcome) {
                shared.history.write(again(&op, answer, "replay"));
                finished.answers.push(answer.clone());
            }
        }
        shared.done.fetch_add(1, Ordering::Relaxed);
        log.finished.push(finished);
    }
    log
}

/// An operation's end from its attempts, and its twin's if it had one: acknowledged if either
/// copy was; refused only if both were (a copy that ended unknown may have acted, even beside a
/// refusal that was never recorded); every definite answer kept.
pub fn finish(op: &Op, a: &Attempted, twin: Option<&Attempted>) -> Finished {
    let copies: Vec<&Attempted> = std::iter::once(a).chain(twin).collect();
    let answers: Vec<Answer> = copies.iter().filter_map(|c| definite(&c.outcome).cloned()).collect();
    let first_ok = copies.iter().find(|c| matches!(c.outcome, Outcome::Ok(_)));
    let unknown = copies.iter().find(|c| c.outcome == Outcome::Unknown);
    let chosen = first_ok.or(unknown).unwrap_or(&copies[0]);
    Finished {
        op: op.clone(),
        outcome: chosen.outcome.clone(),
        answers,
        was_unknown: false,
        answered_attempt_at: chosen.answered_attempt_at,
    }
}

pub fn definite(outcome: &Outcome) -> Option<&Answer> {
    match outcome {
        Outcome::Ok(answer) | Outcome::Fail(answer) => Some(answer),
        Outcome::Unknown => None,
    }
}

/// The history line that ends an operation (a twin's attempts with its own).
pub fn ended(op: &Op, outcome: &Outcome, attempts: Vec<Attempt>, resolved: bool) -> Line {
    let (time, op) = (time(now_ms()), op.clone());
    match outcome {
        Outcome::Ok(answer) => Line::Ok {
            time,
            op,
            answer: answer.clone(),
            attempts,
            resolved,
        },
        Outcome::Fail(answer) => Line::Fail {
            time,
            op,
            answer: answer.clone(),
            attempts,
            resolved,
        },
        Outcome::Unknown => Line::Unknown {
            time,
            op,
            attempts,
            last: resolved,
        },
    }
}

pub fn again(op: &Op, answer: &Answer, why: &str) -> Line {
    Line::Again {
        time: time(now_ms()),
        op: op.id,
        key: op.key.clone().unwrap_or_default(),
        answer: answer.clone(),
        why: why.to_owned(),
    }
}
