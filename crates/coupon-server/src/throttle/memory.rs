//! Buckets in this process's memory: one governor keyed limiter (GCRA) per bucket. The default, and
//! what a shared bucket falls back to while Redis cannot be reached.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};

use super::{Rate, Verdict};

type Keyed = RateLimiter<String, DashMapStateStore<String>, DefaultClock, StateInformationMiddleware>;

pub struct MemoryBucket {
    /// What the bucket is called in shared (Redis) keys.
    name: String,
    rate: Rate,
    limiter: Keyed,
    /// Keys whose failed-look-up budget is spent, until when: governor cannot look without taking,
    /// and a look-up must be refused before it is made.
    spent: Mutex<HashMap<String, Instant>>,
}

impl MemoryBucket {
    pub fn new(name: String, rate: Rate) -> MemoryBucket {
        let burst = std::num::NonZeroU32::new(rate.burst).unwrap_or(std::num::NonZeroU32::MIN);
        let quota = Quota::with_period(rate.every.max(Duration::from_nanos(1)))
            .expect("a positive period")
            .allow_burst(burst);
        MemoryBucket {
            name,
            rate,
            limiter: RateLimiter::dashmap(quota).with_middleware::<StateInformationMiddleware>(),
            spent: Mutex::new(HashMap::new()),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Takes one token for `key` (owned: governor's map is keyed by the owned form).
    pub fn take(&self, key: String) -> Verdict {
        match self.limiter.check_key(&key) {
            Ok(state) => {
                let remaining = state.remaining_burst_capacity();
                Verdict {
                    allowed: true,
                    limit: self.rate.burst,
                    remaining,
                    retry_after: Duration::ZERO,
                    reset: self.rate.every * (self.rate.burst - remaining.min(self.rate.burst)),
                }
            }
            Err(not_until) => self.refused(not_until.wait_time_from(self.limiter.clock().now())),
        }
    }

    /// Whether `key` may make a look-up now, without counting one: refused while its failure
    /// budget is spent.
    pub fn peek(&self, key: &str) -> Verdict {
        match self.spent_for(key) {
            Some(wait) => self.refused(wait),
            None => Verdict {
                allowed: true,
                limit: self.rate.burst,
                remaining: 0,
                retry_after: Duration::ZERO,
                reset: Duration::ZERO,
            },
        }
    }

    fn refused(&self, wait: Duration) -> Verdict {
        Verdict {
            allowed: false,
            limit: self.rate.burst,
            remaining: 0,
            retry_after: wait,
            reset: wait + self.rate.every * self.rate.burst.saturating_sub(1),
        }
    }

    /// How long `key` must wait before its next look-up, if its failure budget is spent.
    pub fn spent_for(&self, key: &str) -> Option<Duration> {
        let mut spent = self.spent.lock().unwrap_or_else(|e| e.into_inner());
        let until = *spent.get(key)?;
        let now = Instant::now();
        if until <= now {
            spent.remove(key);
            return None;
        }
        Some(until - now)
    }

    /// Counts one failed look-up against `key`, and marks the budget spent once nothing is left.
    pub fn fail(&self, key: &str) {
        let verdict = self.take(key.to_owned());
        if verdict.remaining == 0 {
            let wait = if verdict.allowed {
                self.rate.every
            } else {
                verdict.retry_after
            };
            let mut spent = self.spent.lock().unwrap_or_else(|e| e.into_inner());
            spent.insert(key.to_owned(), Instant::now() + wait);
        }
    }

    /// Forgets keys that are back to a full bucket, so that memory follows the active callers.
    pub fn prune(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
        let now = Instant::now();
        let mut spent = self.spent.lock().unwrap_or_else(|e| e.into_inner());
        spent.retain(|_, until| *until > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_lets_its_burst_through_then_refuses() {
        let bucket = MemoryBucket::new("test".into(), Rate::parse("1/h:3").unwrap());
        let remaining: Vec<u32> = (0..3).map(|_| bucket.take("alice".into()).remaining).collect();
        assert_eq!(remaining, [2, 1, 0]);
        let refused = bucket.take("alice".into());
        assert!(!refused.allowed);
        assert!(
            refused.retry_after > Duration::from_secs(3500),
            "{:?}",
            refused.retry_after
        );
        assert!(bucket.take("bob".into()).allowed, "keys have buckets of their own");
    }

    #[test]
    fn a_spent_failure_budget_is_known_before_the_next_look_up() {
        let bucket = MemoryBucket::new("test".into(), Rate::parse("1/h:2").unwrap());
        bucket.fail("mallory");
        assert_eq!(bucket.spent_for("mallory"), None);
        bucket.fail("mallory");
        assert!(bucket.spent_for("mallory").is_some());
        assert_eq!(bucket.spent_for("alice"), None);
    }
}
