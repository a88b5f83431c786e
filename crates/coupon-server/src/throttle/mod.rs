//! Throttling: a token bucket per caller and route group in front of every handler, answering 429
//! with `Retry-After` and the `RateLimit-*` fields of the IETF draft; and a much smaller budget for
//! failed code look-ups (unknown code, code not yours) that stops code guessing. Callers with a
//! valid token are counted by principal, others by client IP. Buckets live in memory, or in Redis
//! when one is configured, so that every instance shares them.

mod client;
mod lookups;
mod memory;
mod quota;
mod shared;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use coupon_store::Background;

pub use client::{ClientIp, PeerAddr};
pub use lookups::{Lookups, Refusal};
pub use quota::{group_of, Group, Kind, Rate, ThrottleConfig};

use crate::error::{seconds_up, ApiError};
use crate::AppState;
use memory::MemoryBucket;
use shared::{Mode, Shared};

/// One bucket's answer for one key.
#[derive(Debug, Clone, Copy)]
pub struct Verdict {
    pub allowed: bool,
    /// The bucket's size.
    pub limit: u32,
    /// Tokens left after this one.
    pub remaining: u32,
    /// How long until one more passes, when refused.
    pub retry_after: Duration,
    /// How long until the bucket is full again.
    pub reset: Duration,
}

impl Verdict {
    fn write(&self, headers: &mut HeaderMap) {
        const LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
        const REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
        const RESET: HeaderName = HeaderName::from_static("ratelimit-reset");
        headers.insert(LIMIT, HeaderValue::from(self.limit));
        headers.insert(REMAINING, HeaderValue::from(self.remaining));
        headers.insert(RESET, HeaderValue::from(seconds_up(self.reset)));
        // A refusal's `Retry-After` is written by its `ApiError::TooManyRequests`.
    }
}

/// Which bucket a decision draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Bucket {
    Requests(Group, Kind),
    LookupsPerUser,
    LookupsPerIp,
}

impl Bucket {
    /// The bucket's name in Redis keys.
    fn name(self) -> String {
        match self {
            Bucket::Requests(g, k) => format!("{g:?}.{k:?}").to_ascii_lowercase(),
            Bucket::LookupsPerUser => "lookups.user".into(),
            Bucket::LookupsPerIp => "lookups.ip".into(),
        }
    }
}

#[derive(Clone)]
pub struct Throttle(Arc<Inner>);

struct Inner {
    config: ThrottleConfig,
    memory: HashMap<Bucket, MemoryBucket>,
    shared: Option<Shared>,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle::new(ThrottleConfig::default()).expect("the default throttle needs no Redis")
    }
}

impl Throttle {
    /// Fails only on a Redis URL that cannot be parsed; an unreachable Redis is a fallback, not an error.
    pub fn new(config: ThrottleConfig) -> Result<Throttle, String> {
        let shared = match &config.redis_url {
            Some(url) => Some(Shared::new(url, &config.redis_prefix)?),
            None => None,
        };
        let mut buckets: Vec<(Bucket, Rate)> = vec![
            (Bucket::LookupsPerUser, config.lookups_per_user),
            (Bucket::LookupsPerIp, config.lookups_per_ip),
        ];
        for g in [Group::Admin, Group::Claims, Group::Checkout, Group::Reads] {
            for k in [Kind::Anonymous, Kind::User, Kind::Service, Kind::Admin] {
                buckets.push((Bucket::Requests(g, k), config.requests(g, k)));
            }
        }
        let memory = buckets
            .into_iter()
            .map(|(b, r)| (b, MemoryBucket::new(b.name(), r)))
            .collect();
        Ok(Throttle(Arc::new(Inner { config, memory, shared })))
    }

    /// No bucket is consulted: for a deployment whose gateway throttles.
    pub fn disabled() -> Throttle {
        let mut config = ThrottleConfig::default();
        config.enabled = false;
        Throttle::new(config).expect("no Redis")
    }

    /// Tries once to reach the shared buckets' Redis; true when they are shared (or there is none).
    pub async fn connect(&self) -> bool {
        match &self.0.shared {
            Some(shared) => shared.connect().await,
            None => true,
        }
    }

    pub fn config(&self) -> &ThrottleConfig {
        &self.0.config
    }

    /// Starts the housekeeping under the service's one owner of background work: memory buckets of
    /// idle callers are dropped each minute, and a shared throttle keeps trying to reach Redis.
    pub fn start(&self, background: &Background) {
        if !self.0.config.enabled {
            return;
        }
        let throttle = self.clone();
        let stopping = background.stopping();
        background.spawn_on(&tokio::runtime::Handle::current(), async move {
            tokio::pin!(stopping);
            loop {
                if let Some(shared) = &throttle.0.shared {
                    shared.connect().await;
                }
                tokio::select! {
                    () = &mut stopping => return,
                    () = tokio::time::sleep(Duration::from_secs(5)) => {}
                }
                throttle.0.memory.values().for_each(MemoryBucket::prune);
            }
        });
    }

    /// Takes one token of `bucket` for `key`: in Redis when it is shared and answers, else here.
    async fn take(&self, bucket: Bucket, key: String) -> Verdict {
        let memory = &self.0.memory[&bucket];
        match self.shared(memory, &key, Mode::Take).await {
            Some(verdict) => verdict,
            None => memory.take(key),
        }
    }

    /// Whether `key` may look a code up now, without counting anything.
    async fn peek(&self, bucket: Bucket, key: &str) -> Verdict {
        let memory = &self.0.memory[&bucket];
        match self.shared(memory, key, Mode::Peek).await {
            Some(verdict) => verdict,
            None => memory.peek(key),
        }
    }

    /// Counts one failed look-up of `key` against `bucket`.
    async fn fail(&self, bucket: Bucket, key: &str) {
        let memory = &self.0.memory[&bucket];
        if self.shared(memory, key, Mode::Take).await.is_none() {
            memory.fail(key);
        }
    }

    /// The shared decision, if the buckets are shared and Redis answers.
    async fn shared(&self, memory: &MemoryBucket, key: &str, mode: Mode) -> Option<Verdict> {
        self.0
            .shared
            .as_ref()?
            .run(memory.name(), memory.rate(), key, mode)
            .await
    }
}

/// The request bucket in front of every throttled route. It authenticates the caller once (the
/// handler's `Caller` reuses the answer) to count it by principal; without a valid token it counts
/// the client IP, and the handler answers the 401.
pub(crate) async fn throttle_request(State(s): State<AppState>, mut req: Request, next: Next) -> Response {
    let throttle = &s.throttle;
    let route = req.extensions().get::<MatchedPath>().map_or("", |p| p.as_str());
    let group = match group_of(req.method(), route) {
        Some(group) if throttle.0.config.enabled => group,
        _ => return next.run(req).await,
    };
    let ip = ClientIp::of(&req, &throttle.0.config);
    let (kind, key) = match crate::auth::authenticate(req.headers(), &s) {
        Ok(caller) => {
            let principal = (Kind::from(caller.role), caller.sub.as_str().to_owned());
            req.extensions_mut().insert(caller);
            principal
        }
        Err(_) => (Kind::Anonymous, ip.0.to_string()),
    };
    req.extensions_mut().insert(ip);
    let verdict = throttle.take(Bucket::Requests(group, kind), key).await;
    let mut response = if verdict.allowed {
        next.run(req).await
    } else {
        ApiError::TooManyRequests {
            code: "rate_limited",
            detail: "too many requests; try again later",
            retry_after: verdict.retry_after,
        }
        .into_response()
    };
    verdict.write(response.headers_mut());
    response
}
