//! When to try a failed delivery again: exponential backoff with full jitter.
//!
//! Full jitter (a uniform draw between zero and the exponential ceiling, as in AWS's "Exponential
//! Backoff and Jitter") spreads the retries of many events that failed together, say when a
//! receiver was down, instead of sending them back as one burst at each step.
//!
//! The schedule is a pure function of the attempt count and a random source, so it is tested
//! without a clock; the caller stores the attempt count and the next due time in the database.

use std::time::Duration;

use rand::Rng;

/// The retry schedule of a delivery.
///
/// Attempts are counted from 1 (the first delivery is attempt 1). After attempt `n` fails, the
/// next one is due [`Backoff::delay`]`(n)` later, or never if `n` reached [`Backoff::max_attempts`];
/// [`Backoff::next`] says both in one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling of the first retry's delay; it doubles with each attempt.
    pub base: Duration,
    /// The largest ceiling: retries of a long-dead receiver settle at one every `cap / 2` on average.
    pub cap: Duration,
    /// Attempts in all, the first included, before the delivery is given up.
    pub max_attempts: u32,
}

impl Default for Backoff {
    /// 1 s doubling to a 1 h cap, 20 attempts: the 19 waits' ceilings add up to about 8 h (1 s, 2 s,
    /// … 2048 s, then 3600 s seven times), about 4 h on average, so a receiver that was down for a
    /// few hours (a deploy gone wrong, an outage overnight) still gets its events.
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(3600),
            max_attempts: 20,
        }
    }
}

impl Backoff {
    /// The ceiling of the wait after attempt `attempt` failed: `min(cap, base * 2^(attempt - 1))`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1);
        // 2^doublings overflows a u32 past 31 and the product a Duration long before the cap stops
        // mattering: either overflow means "past the cap".
        1u32.checked_shl(doublings)
            .filter(|_| doublings < 32)
            .and_then(|factor| self.base.checked_mul(factor))
            .map_or(self.cap, |ceiling| ceiling.min(self.cap))
    }

    /// How long to wait after attempt `attempt` failed: uniform in `[0, ceiling(attempt)]`.
    pub fn delay<R: Rng + ?Sized>(&self, attempt: u32, rng: &mut R) -> Duration {
        let ceiling = self.ceiling(attempt);
        // Nanoseconds in a u64 reach 584 years: any cap a person would set fits.
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rng.random_range(0..=nanos))
    }

    /// After attempt `attempt` failed: the wait before the next one, or `None` if that was the last.
    pub fn next<R: Rng + ?Sized>(&self, attempt: u32, rng: &mut R) -> Option<Duration> {
        (attempt < self.max_attempts).then(|| self.delay(attempt, rng))
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn the_ceiling_doubles_from_base_and_stops_at_the_cap() {
        let backoff = Backoff::default();
        let ceilings: Vec<u64> = (1..=14).map(|n| backoff.ceiling(n).as_secs()).collect();
        assert_eq!(
            ceilings,
            [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 3600, 3600]
        );
        assert_eq!(backoff.ceiling(0), secs(1), "attempt 0 is read as the first");
        for huge in [31, 32, 33, 64, 1000, u32::MAX] {
            assert_eq!(backoff.ceiling(huge), secs(3600), "attempt {huge}");
        }
        let no_cap = Backoff {
            base: secs(1),
            cap: Duration::MAX,
            max_attempts: 1,
        };
        assert_eq!(no_cap.ceiling(u32::MAX), Duration::MAX);
    }

    #[test]
    fn delays_stay_within_zero_and_the_ceiling_and_are_spread() {
        let backoff = Backoff::default();
        let mut rng = StdRng::seed_from_u64(7);
        for attempt in 1..=25 {
            let ceiling = backoff.ceiling(attempt);
            let draws: Vec<Duration> = (0..200).map(|_| backoff.delay(attempt, &mut rng)).collect();
            assert!(draws.iter().all(|d| *d <= ceiling), "attempt {attempt}");
            // Full jitter: draws cover the range, not just its top.
            assert!(draws.iter().any(|d| *d < ceiling / 4), "attempt {attempt}");
            assert!(draws.iter().any(|d| *d > ceiling * 3 / 4), "attempt {attempt}");
        }
    }

    #[test]
    fn a_zero_base_never_waits_and_the_same_seed_gives_the_same_schedule() {
        let zero = Backoff {
            base: Duration::ZERO,
            ..Backoff::default()
        };
        assert_eq!(zero.delay(5, &mut StdRng::seed_from_u64(1)), Duration::ZERO);

        let backoff = Backoff::default();
        let schedule = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (1..10).map(|n| backoff.delay(n, &mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(schedule(42), schedule(42));
    }

    #[test]
    fn next_gives_up_after_max_attempts() {
        let backoff = Backoff {
            max_attempts: 3,
            ..Backoff::default()
        };
        let mut rng = StdRng::seed_from_u64(3);
        assert!(backoff.next(1, &mut rng).is_some());
        assert!(backoff.next(2, &mut rng).is_some());
        assert_eq!(backoff.next(3, &mut rng), None);
        assert_eq!(backoff.next(4, &mut rng), None);
        let once = Backoff {
            max_attempts: 1,
            ..Backoff::default()
        };
        assert_eq!(once.next(1, &mut rng), None);
    }

    #[test]
    fn the_default_schedule_spans_about_eight_hours_of_ceilings() {
        let backoff = Backoff::default();
        let total: Duration = (1..backoff.max_attempts).map(|n| backoff.ceiling(n)).sum();
        assert_eq!(total, secs(4095 + 7 * 3600));
    }
}
