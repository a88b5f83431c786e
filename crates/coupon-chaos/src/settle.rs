//! After the faults: every operation that ended unknown is sent once more with its key, patiently,
//! so it ends known (its record replayed, or it acts now); and a sample of acknowledged ones is
//! sent again, each of which must come back as the very same answer, replayed.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use serde::Serialize;

use crate::attempt::{Policy, Sender, ServerError};
use crate::history::{Finished, Outcome};
use crate::http::Client;
use crate::workload::{again, definite, ended, Shared};

/// How the unknowns ended.
#[derive(Debug, Default, Serialize)]
pub struct Resolution {
    pub unknown: u64,
    /// Acknowledged when retried: by their record (replayed) or acting now.
    pub ok_replayed: u64,
    pub ok_acted: u64,
    pub refused: u64,
    /// Still unknown: the retry got no answer either.
    pub still_unknown: u64,
    /// Reads left unknown, which change nothing and are not retried.
    pub reads: u64,
    pub replays_sent: u64,
    pub replays_answered: u64,
}

/// Patient: the servers are healthy by now, so only a real hang leaves an operation unknown.
const PATIENT: Policy = Policy {
    attempts: 12,
    first_backoff: Duration::from_millis(200),
    max_backoff: Duration::from_secs(5),
};

pub async fn resolve(
    shared: &Shared,
    finished: &mut [Finished],
    errors: &mut Vec<ServerError>,
    replays: usize,
    rng: &mut StdRng,
) -> Resolution {
    let stop = AtomicBool::new(false);
    let sender = Sender {
        tokens: &shared.tokens,
        policy: PATIENT,
        stop: &stop,
    };
    let mut client = Client::new(shared.addrs.clone(), shared.attempt_timeout);
    let mut res = Resolution::default();
    for (n, f) in finished.iter_mut().filter(|f| f.unknown()).enumerate() {
        if f.op.key.is_none() {
            res.reads += 1;
            continue;
        }
        res.unknown += 1;
        let request = f.op.request();
        let attempted = sender.perform(&mut client, &f.op, &request, n, rng).await;
        errors.extend(attempted.server_errors.iter().cloned());
        shared
            .history
            .write(ended(&f.op, &attempted.outcome, attempted.attempts.clone(), true));
        match &attempted.outcome {
            Outcome::Ok(a) if a.replayed => res.ok_replayed += 1,
            Outcome::Ok(_) => res.ok_acted += 1,
            Outcome::Fail(_) => res.refused += 1,
            Outcome::Unknown => res.still_unknown += 1,
        }
        if let Some(answer) = definite(&attempted.outcome) {
            f.answers.push(answer.clone());
            f.outcome = attempted.outcome.clone();
            f.answered_attempt_at = attempted.answered_attempt_at;
        }
        f.was_unknown = true;
    }

    let acked: Vec<usize> = (0..finished.len())
        .filter(|&i| finished[i].op.key.is_some() && finished[i].ok().is_some())
        .collect();
    for (n, &i) in acked.choose_multiple(rng, replays).enumerate() {
        let f = &mut finished[i];
        res.replays_sent += 1;
        let attempted = sender.perform(&mut client, &f.op, &f.op.request(), n, rng).await;
        errors.extend(attempted.server_errors.iter().cloned());
        if let Some(answer) = definite(&attempted.outcome) {
            res.replays_answered += 1;
            shared.history.write(again(&f.op, answer, "replay after the run"));
            f.answers.push(answer.clone());
        }
    }
    res
}
