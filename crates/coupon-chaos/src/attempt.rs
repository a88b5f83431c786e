//! Sending one operation until it has a definite answer: the same bytes and the same key on every
//! attempt, moving to the next instance each time, with exponential backoff and jitter, a bounded
//! number of attempts, and no new attempt once the run is over.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rand::Rng;

use crate::history::{Attempt, Outcome};
use crate::http::{now_ms, token, Client};
use crate::operation::{definite, Actor, Answer, Op, Request, ADMIN, SERVICE};

/// How hard a client tries.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub attempts: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Policy {
    fn backoff(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        let exp = self.first_backoff.saturating_mul(1 << attempt.min(16));
        exp.min(self.max_backoff).mul_f64(rng.random_range(0.5..1.5))
    }
}

/// Every token a run signs requests with.
pub struct Tokens {
    admin: String,
    service: String,
    users: HashMap<String, String>,
}

impl Tokens {
    pub fn new(secret: &str, users: &[String]) -> anyhow::Result<Tokens> {
        Ok(Tokens {
            admin: token(secret, ADMIN, "admin")?,
            service: token(secret, SERVICE, "service")?,
            users: users
                .iter()
                .map(|u| Ok((u.clone(), token(secret, u, "user")?)))
                .collect::<anyhow::Result<_>>()?,
        })
    }

    pub fn admin(&self) -> &str {
        &self.admin
    }

    pub fn of(&self, op: &Op) -> &str {
        match op.actor {
            Actor::User => &self.users[&op.user],
            Actor::Service => &self.service,
            Actor::Admin => &self.admin,
        }
    }
}

/// A 500: the service promises 503 during outages, so each one is reported.
#[derive(Debug, Clone)]
pub struct ServerError {
    pub op: u64,
    pub kind: &'static str,
    pub instance: usize,
    pub at: i64,
    pub body: String,
}

/// What the attempts came to.
pub struct Attempted {
    pub outcome: Outcome,
    pub attempts: Vec<Attempt>,
    /// When the attempt that got the definite answer was sent.
    pub answered_attempt_at: Option<i64>,
    pub server_errors: Vec<ServerError>,
}

/// What every attempt needs besides the operation: tokens, how hard to try, and when to stop.
pub struct Sender<'a> {
    pub tokens: &'a Tokens,
    pub policy: Policy,
    /// Set when the run is over: no new attempt is made.
    pub stop: &'a AtomicBool,
}

impl Sender<'_> {
    /// Sends `op` from instance `first` on until an answer ends it, the attempts run out, or the
    /// run is over.
    pub async fn perform(
        &self,
        client: &mut Client,
        op: &Op,
        request: &Request,
        first: usize,
        rng: &mut impl Rng,
    ) -> Attempted {
        perform(client, self, op, request, first, rng).await
    }
}

async fn perform(
    client: &mut Client,
    sender: &Sender<'_>,
    op: &Op,
    request: &Request,
    first: usize,
    rng: &mut impl Rng,
) -> Attempted {
    let (tokens, policy, stop) = (sender.tokens, &sender.policy, sender.stop);
    let mut attempts = Vec::new();
    let mut server_errors = Vec::new();
    let instances = client.instances();
    for n in 0..policy.attempts {
        let instance = (first + n as usize) % instances;
        let at = now_ms();
        match client.send(instance, tokens.of(op), op.key.as_deref(), request).await {
            Ok(reply) => {
                let answer = Answer::read(reply.status.as_u16(), &reply.body, reply.replayed, instance, now_ms());
                if answer.status == 500 {
                    server_errors.push(ServerError {
                        op: op.id,
                        kind: op.kind.name(),
                        instance,
                        at,
                        body: String::from_utf8_lossy(&reply.body).chars().take(300).collect(),
                    });
                }
                attempts.push(Attempt {
                    instance,
                    at,
                    result: answer.label(),
                });
                if definite(answer.status, answer.error.as_deref()) {
                    let outcome = if answer.ok() {
                        Outcome::Ok(answer)
                    } else {
                        Outcome::Fail(answer)
                    };
                    return Attempted {
                        outcome,
                        attempts,
                        answered_attempt_at: Some(at),
                        server_errors,
                    };
                }
            }
            Err(error) => attempts.push(Attempt {
                instance,
                at,
                result: error,
            }),
        }
        if stop.load(Ordering::Relaxed) || n + 1 == policy.attempts {
            break;
        }
        tokio::time::sleep(policy.backoff(n, rng)).await;
    }
    Attempted {
        outcome: Outcome::Unknown,
        attempts,
        answered_attempt_at: None,
        server_errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let policy = Policy {
            attempts: 8,
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let first = policy.backoff(0, &mut rng);
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(150));
        let late = policy.backoff(10, &mut rng);
        assert!(late >= Duration::from_secs(1) && late <= Duration::from_secs(3));
    }
}
