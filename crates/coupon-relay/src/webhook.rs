//! One webhook delivery attempt: a signed POST and what came of it, in terms an admin can read.
//!
//! Whether and when to try again is the caller's (see [`crate::Backoff`]); this only tries once.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use reqwest::redirect;

use crate::signature::{sign, SIGNATURE_HEADER};
use crate::{Destinations, Outgoing, Secret};

const INVALID_URL: &str = "the URL is not a valid http(s) URL";

/// What the receiving side sees as our name and version.
pub const USER_AGENT: &str = concat!("coupond/", env!("CARGO_PKG_VERSION"));

/// How the client behaves; the defaults suit a delivery worker.
#[derive(Debug, Clone)]
pub struct WebhookOptions {
    /// One attempt's bound, from connecting until the response is in (its status line and what is
    /// read of its body): a slow receiver costs a worker this long at most, and counts as failed if
    /// no status came back in time (a retry will come).
    pub timeout: Duration,
    /// How much of a response body is read. The body is never used, but reading a small one to its
    /// end lets the connection go back to the pool; a larger one is cut and its connection closed.
    pub max_response_bytes: usize,
    /// How long an idle keep-alive connection to a receiver is kept for the next event.
    pub pool_idle_timeout: Duration,
    /// The addresses receivers may be at; public ones only by default.
    pub destinations: Destinations,
}

impl Default for WebhookOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            max_response_bytes: 4096,
            pool_idle_timeout: Duration::from_secs(90),
            destinations: Destinations::default(),
        }
    }
}

/// The webhook HTTP client. Make one per process and clone it: clones share one connection pool,
/// so consecutive events to the same receiver reuse a kept-alive connection (and its TLS session).
#[derive(Debug, Clone)]
pub struct Webhooks {
    client: reqwest::Client,
    options: WebhookOptions,
}

/// The HTTP client could not be built (its TLS configuration failed to load).
#[derive(Debug, thiserror::Error)]
#[error("could not build the webhook HTTP client: {0}")]
pub struct BuildError(#[source] reqwest::Error);

/// The result of one attempt, to be stored with the delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub outcome: Outcome,
    /// From sending the request to the response's status line, or to the failure.
    pub latency: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The receiver answered 2xx: it has the event.
    Delivered {
        status: u16,
    },
    Failed(Failure),
}

/// Why an attempt failed. `Display` is a short text safe to show an admin: it never holds the secret
/// (which is never sent, only its HMAC), nor the URL (which may carry a receiver's token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The receiver answered, but not 2xx. A 3xx is one: redirects are not followed, since a
    /// signed event should go where the admin said and nowhere a receiver points to.
    Status(u16),
    /// No answer within the attempt's timeout (this one).
    Timeout(Duration),
    /// Nothing listens at the receiver's address.
    ConnectionRefused,
    /// Connecting failed otherwise: name resolution, an unreachable host, a TLS handshake.
    Connect(String),
    /// The connection broke before a status line came back.
    Transport(String),
    /// The receiver is at an address webhooks are not sent to (see [`Destinations`]): nothing was
    /// sent.
    Internal,
    /// The request could not even be made: a malformed URL, an event type that is not a valid header.
    Invalid(&'static str),
}

impl Webhooks {
    pub fn new(options: WebhookOptions) -> Result<Self, BuildError> {
        // Resolved through the guard, and never through a proxy from the environment: the address
        // checked must be the one connected to.
        let resolver = Arc::new(Guard(Arc::new(options.destinations.clone())));
        let client = reqwest::Client::builder()
            .dns_resolver(resolver)
            .no_proxy()
            .redirect(redirect::Policy::none())
            .user_agent(USER_AGENT)
            .pool_idle_timeout(options.pool_idle_timeout)
            .build()
            .map_err(BuildError)?;
        Ok(Self { client, options })
    }

    /// POSTs `event` to `url`, signed with `secret` at `now_unix` (the caller's clock).
    pub async fn deliver(&self, url: &str, secret: &Secret, event: &Outgoing<'_>, now_unix: i64) -> Attempt {
        let started = Instant::now();
        let outcome = self.post(url, secret, event, now_unix).await;
        let latency = started.elapsed();
        match outcome {
            Ok(mut response) => {
                let status = response.status();
                self.drain(&mut response).await;
                let code = status.as_u16();
                let outcome = if status.is_success() {
                    Outcome::Delivered { status: code }
                } else {
                    Outcome::Failed(Failure::Status(code))
                };
                Attempt { outcome, latency }
            }
            Err(failure) => Attempt {
                outcome: Outcome::Failed(failure),
                latency,
            },
        }
    }

    async fn post(
        &self,
        url: &str,
        secret: &Secret,
        event: &Outgoing<'_>,
        now_unix: i64,
    ) -> Result<reqwest::Response, Failure> {
        let url = reqwest::Url::parse(url).map_err(|_| Failure::Invalid(INVALID_URL))?;
        // A literal address is connected to without resolution, so it is checked here.
        if literal_host(&url).is_some_and(|ip| !self.options.destinations.permits(ip)) {
            return Err(Failure::Internal);
        }
        let mut headers = HeaderMap::with_capacity(4);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        // A uuid and a signature are ASCII by construction; only the event type can be refused.
        let id = header_value(&event.id.to_string(), "the event id is not a valid header value")?;
        let event_type = header_value(event.event_type, "the event type is not a valid header value")?;
        let signature = header_value(
            &sign(secret, now_unix, &event.body),
            "the signature is not a valid header value",
        )?;
        headers.insert("Coupond-Event-Id", id);
        headers.insert("Coupond-Event-Type", event_type);
        headers.insert(SIGNATURE_HEADER, signature);
        self.client
            .post(url)
            .headers(headers)
            .body(event.body.clone())
            .timeout(self.options.timeout)
            .send()
            .await
            .map_err(|err| self.failure(err))
    }

    /// Reads at most `max_response_bytes` of the body and drops the rest: the status said all
    /// we need, and the body is the receiver's to fill, so its size is not ours to trust.
    async fn drain(&self, response: &mut reqwest::Response) {
        let mut read = 0;
        while read <= self.options.max_response_bytes {
            match response.chunk().await {
                Ok(Some(chunk)) => read += chunk.len(),
                // A body cut short changes nothing: the status line was the answer.
                Ok(None) | Err(_) => break,
            }
        }
    }

    fn failure(&self, err: reqwest::Error) -> Failure {
        // `without_url`: reqwest's own message names the URL, which may hold a receiver's token.
        let err = err.without_url();
        if err.is_builder() {
            Failure::Invalid(INVALID_URL)
        } else if err.is_timeout() {
            Failure::Timeout(self.options.timeout)
        } else if err.is_connect() {
            if causes(&err).any(|e| e.is::<Refused>()) {
                Failure::Internal
            } else if io_kind(&err) == Some(std::io::ErrorKind::ConnectionRefused) {
                Failure::ConnectionRefused
            } else {
                Failure::Connect(root_cause(&err))
            }
        } else {
            Failure::Transport(root_cause(&err))
        }
    }
}

impl Attempt {
    pub fn is_delivered(&self) -> bool {
        matches!(self.outcome, Outcome::Delivered { .. })
    }

    /// The receiver's HTTP status, if it answered at all.
    pub fn status(&self) -> Option<u16> {
        match self.outcome {
            Outcome::Delivered { status } | Outcome::Failed(Failure::Status(status)) => Some(status),
            Outcome::Failed(_) => None,
        }
    }

    /// The admin-safe text of a failure; `None` when delivered.
    pub fn error(&self) -> Option<String> {
        match &self.outcome {
            Outcome::Delivered { .. } => None,
            Outcome::Failed(failure) => Some(failure.to_string()),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status(status @ 300..=399) => write!(f, "HTTP {status} (redirects are not followed)"),
            Self::Status(status) => write!(f, "HTTP {status}"),
            Self::Timeout(after) => write!(f, "timed out after {after:?}"),
            Self::ConnectionRefused => f.write_str("connection refused"),
            Self::Connect(cause) => write!(f, "could not connect: {cause}"),
            Self::Transport(cause) => write!(f, "connection failed: {cause}"),
            Self::Internal => {
                f.write_str("not sent: the receiver's address is internal, and not one this server may reach")
            }
            Self::Invalid(why) => f.write_str(why),
        }
    }
}

/// Resolves a receiver's name and keeps only the addresses it may be reached at.
struct Guard(Arc<Destinations>);

#[derive(Debug, thiserror::Error)]
#[error("the receiver's name resolves only to internal addresses")]
struct Refused;

impl Resolve for Guard {
    fn resolve(&self, name: Name) -> Resolving {
        let destinations = self.0.clone();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let permitted: Vec<SocketAddr> = found.iter().copied().filter(|a| destinations.permits(a.ip())).collect();
            if permitted.is_empty() && !found.is_empty() {
                return Err(Refused.into());
            }
            Ok(Box::new(permitted.into_iter()) as Addrs)
        })
    }
}

/// The host of `url` when it is an address rather than a name.
fn literal_host(url: &reqwest::Url) -> Option<IpAddr> {
    let host = url.host_str()?;
    host.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

fn header_value(text: &str, refusal: &'static str) -> Result<HeaderValue, Failure> {
    HeaderValue::from_str(text).map_err(|_| Failure::Invalid(refusal))
}

fn io_kind(err: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    causes(err).find_map(|e| e.downcast_ref::<std::io::Error>().map(|io| io.kind()))
}

/// `err` and the errors beneath it.
fn causes<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(err), |e| e.source())
}

/// The innermost error's message ("Connection reset by peer", "invalid peer certificate:
/// UnknownIssuer"): the specific one, and below the layers that could mention the URL. Capped so a
/// stored attempt row stays small.
fn root_cause(err: &reqwest::Error) -> String {
    let mut text = causes(err).last().map(|cause| cause.to_string()).unwrap_or_default();
    if text.len() > 200 {
        let mut end = 200;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}
