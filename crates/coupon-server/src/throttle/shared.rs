//! Buckets shared by every instance, kept in Redis: the same GCRA as governor's, run by one Lua
//! script so that a decision is one atomic round trip, with Redis's own clock so that instances
//! need not agree on the time. When Redis cannot be reached the caller falls back to its memory
//! buckets (never to no limit, never to an error), and Redis is left alone for a moment rather
//! than waited on by every request.

use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{Rate, Verdict};

/// KEYS[1] is the bucket. ARGV: microseconds per token, burst, and `take` or `peek` (would one
/// more pass?). Answers {allowed, remaining, retry_after_us, reset_us}.
const GCRA: &str = r"
local every = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local capacity = every * burst
local next_tat = tat + every
if next_tat - now > capacity then
  return {0, 0, next_tat - now - capacity, tat - now}
end
if ARGV[3] == 'peek' then
  return {1, math.floor((capacity - (tat - now)) / every), 0, tat - now}
end
redis.call('SET', KEYS[1], next_tat, 'PX', math.ceil((next_tat - now) / 1000))
return {1, math.floor((capacity - (next_tat - now)) / every), 0, next_tat - now}
";

/// How long Redis is left alone after it failed to answer.
const BACK_OFF: Duration = Duration::from_secs(1);
/// A decision that takes longer than this is made in memory instead.
const ANSWER_WITHIN: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Take,
    Peek,
}

pub struct Shared {
    client: redis::Client,
    prefix: String,
    script: redis::Script,
    connection: RwLock<Option<ConnectionManager>>,
    down_since: Mutex<Option<Instant>>,
}

impl Shared {
    /// Fails with a message that names the setting, never the URL (it may hold a password).
    pub fn new(url: &str, prefix: &str) -> Result<Shared, String> {
        let client = redis::Client::open(url).map_err(|_| "COUPOND_REDIS_URL is not a redis:// URL".to_owned())?;
        Ok(Shared {
            client,
            prefix: prefix.to_owned(),
            script: redis::Script::new(GCRA),
            connection: RwLock::new(None),
            down_since: Mutex::new(None),
        })
    }

    /// Connects once; the connection manager reconnects by itself afterwards.
    pub async fn connect(&self) -> bool {
        if self.connection.read().unwrap_or_else(|e| e.into_inner()).is_some() {
            return true;
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(ANSWER_WITHIN))
            .set_response_timeout(Some(ANSWER_WITHIN))
            .set_number_of_retries(1);
        match tokio::time::timeout(
            Duration::from_secs(2),
            self.client.get_connection_manager_with_config(config),
        )
        .await
        {
            Ok(Ok(manager)) => {
                *self.connection.write().unwrap_or_else(|e| e.into_inner()) = Some(manager);
                tracing::info!("throttling buckets are shared through Redis");
                true
            }
            _ => {
                self.went_down();
                false
            }
        }
    }

    /// The shared decision, or `None` when Redis cannot give one now.
    pub async fn run(&self, bucket: &str, rate: Rate, key: &str, mode: Mode) -> Option<Verdict> {
        if let Some(since) = *self.down_since.lock().unwrap_or_else(|e| e.into_inner()) {
            if since.elapsed() < BACK_OFF {
                return None;
            }
        }
        let mut connection = self.connection.read().unwrap_or_else(|e| e.into_inner()).clone()?;
        let every = rate.every.as_micros().max(1) as u64;
        let mut call = self.script.key(format!("{}:{bucket}:{key}", self.prefix));
        call.arg(every)
            .arg(rate.burst)
            .arg(if mode == Mode::Peek { "peek" } else { "take" });
        let answer = tokio::time::timeout(
            ANSWER_WITHIN,
            call.invoke_async::<(i64, i64, i64, i64)>(&mut connection),
        )
        .await;
        match answer {
            Ok(Ok((allowed, remaining, retry_after, reset))) => {
                self.came_back();
                Some(Verdict {
                    allowed: allowed == 1,
                    limit: rate.burst,
                    remaining: remaining.clamp(0, u32::MAX as i64) as u32,
                    retry_after: Duration::from_micros(retry_after.max(0) as u64),
                    reset: Duration::from_micros(reset.max(0) as u64),
                })
            }
            _ => {
                self.went_down();
                None
            }
        }
    }

    fn went_down(&self) {
        let mut down = self.down_since.lock().unwrap_or_else(|e| e.into_inner());
        if down.is_none() {
            tracing::warn!("Redis does not answer: throttling falls back to this instance's memory");
        }
        *down = Some(Instant::now());
    }

    fn came_back(&self) {
        let mut down = self.down_since.lock().unwrap_or_else(|e| e.into_inner());
        if down.take().is_some() {
            tracing::info!("Redis answers again: throttling buckets are shared");
        }
    }
}
