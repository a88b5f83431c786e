//! Publishing events to NATS JetStream, once each.
//!
//! Every event goes to `<prefix>.<type>` with `Nats-Msg-Id: <event id>`, and a publish counts only
//! once JetStream has acknowledged storing it. Within the stream's duplicate window the server drops
//! a message id it has seen and says so in the ack, which makes re-publishing a batch after a crash
//! or a lost ack safe: the outbox can be at-least-once and the stream still holds each event once.

use std::collections::VecDeque;
use std::time::Duration;

use async_nats::jetstream::context::{CreateStreamError, PublishError};
use async_nats::jetstream::{self, stream};
use async_nats::{ConnectError, ConnectOptions};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::redact::{redact_url, split_userinfo};
use crate::Outgoing;

/// Where events go and how publishing is paced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamConfig {
    /// The JetStream stream, made if missing.
    pub stream: String,
    /// Events go to `<subject_prefix>.<event type>`; the stream takes `<subject_prefix>.>`.
    pub subject_prefix: String,
    /// How long the server remembers a message id. It must outlast the longest gap between a
    /// publish and its retry (a worker's restart after a lost ack), or the retry is stored twice.
    pub duplicate_window: Duration,
    /// Acks awaited at once while a batch streams out: enough to hide the round trip, few enough
    /// that an unreachable server is noticed before thousands are queued.
    pub max_in_flight: usize,
    /// How long one publish waits for its ack.
    pub ack_timeout: Duration,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            stream: "COUPOND_EVENTS".to_owned(),
            subject_prefix: "coupond.events".to_owned(),
            duplicate_window: Duration::from_secs(120),
            max_in_flight: 256,
            ack_timeout: Duration::from_secs(10),
        }
    }
}

/// What JetStream said about one stored event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// The stream sequence of the message: the first one's, for a duplicate.
    pub sequence: u64,
    /// The id was seen within the duplicate window and nothing new was stored. Still a success.
    pub duplicate: bool,
}

/// Why connecting or publishing failed. Messages name servers by their redacted URL only.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    #[error("invalid NATS configuration: {0}")]
    Config(String),
    #[error("could not connect to NATS at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: ConnectError,
    },
    #[error("could not get or create the JetStream stream {stream}: {source}")]
    Stream {
        stream: String,
        #[source]
        source: CreateStreamError,
    },
    #[error("the JetStream stream {stream} exists but does not take subject {subject}: it takes {taken:?}")]
    StreamSubjects {
        stream: String,
        subject: String,
        taken: Vec<String>,
    },
    #[error("event type {0:?} is not dot-separated tokens of letters, digits, '_' and '-'")]
    InvalidEventType(String),
    #[error("publishing event {event_id} failed: {source}")]
    Publish {
        event_id: Uuid,
        #[source]
        source: PublishError,
    },
}

/// A connection to NATS with the events stream ensured.
pub struct Jetstream {
    context: jetstream::Context,
    config: StreamConfig,
    /// Held by one `publish` at a time: batches reach the stream in order, not interleaved, and
    /// two batches cannot each hold part of the in-flight permits and wait on the other's.
    publishing: Mutex<()>,
}

impl Jetstream {
    /// Connects (failing at once if no server answers: the caller's worker loop retries) and gets
    /// or creates the stream. `url` may hold `user:pass@` or `token@`; they are taken out of the
    /// address and given to the client as credentials, so no log line ever carries them.
    pub async fn connect(url: &str, config: StreamConfig) -> Result<Self, NatsError> {
        validate_subject(&config.subject_prefix)
            .map_err(|_| NatsError::Config(format!("subject prefix {:?} is not a subject", config.subject_prefix)))?;
        if config.stream.is_empty() || config.stream.contains(['.', '*', '>', ' ']) {
            return Err(NatsError::Config(format!(
                "stream name {:?} is not a valid name",
                config.stream
            )));
        }
        let (servers, options) = split_credentials(url)?;
        let client = options
            .name(concat!("coupond/", env!("CARGO_PKG_VERSION")))
            .connect(servers)
            .await
            .map_err(|source| NatsError::Connect {
                url: redact_url(url),
                source,
            })?;
        let context = jetstream::ContextBuilder::new()
            .timeout(config.ack_timeout)
            .max_ack_inflight(config.max_in_flight.max(1))
            .backpressure_on_inflight(true)
            .build(client);

        let wanted = format!("{}.>", config.subject_prefix);
        let stream = context
            .get_or_create_stream(stream::Config {
                name: config.stream.clone(),
                subjects: vec![wanted.clone()],
                duplicate_window: config.duplicate_window,
                ..Default::default()
            })
            .await
            .map_err(|source| NatsError::Stream {
                stream: config.stream.clone(),
                source,
            })?;
        // An existing stream keeps its own settings: check it takes our subjects, else every
        // publish would fail with a less helpful "no stream".
        let existing = &stream.cached_info().config;
        if !existing.subjects.iter().any(|taken| covers(taken, &wanted)) {
            return Err(NatsError::StreamSubjects {
                stream: config.stream.clone(),
                subject: wanted,
                taken: existing.subjects.clone(),
            });
        }
        if existing.duplicate_window != config.duplicate_window {
            tracing::warn!(
                stream = %config.stream,
                configured = ?config.duplicate_window,
                actual = ?existing.duplicate_window,
                "the stream's duplicate window differs from the configured one; it is left as it is"
            );
        }
        tracing::info!(server = %redact_url(url), stream = %config.stream, "connected to NATS JetStream");
        Ok(Self {
            context,
            config,
            publishing: Mutex::new(()),
        })
    }

    /// The subject an event of this type goes to.
    pub fn subject(&self, event_type: &str) -> Result<String, NatsError> {
        validate_subject(event_type).map_err(|_| NatsError::InvalidEventType(event_type.to_owned()))?;
        Ok(format!("{}.{event_type}", self.config.subject_prefix))
    }

    pub fn config(&self) -> &StreamConfig {
        &self.config
    }

    /// Publishes `events` in order and returns JetStream's ack for each, in the same order.
    ///
    /// Pipelined: up to `max_in_flight` messages are sent before the oldest ack is awaited, so a
    /// batch of hundreds costs a few round trips, not hundreds. On the first failure the rest are
    /// not sent and the error names the event; publishing the whole batch again is safe within the
    /// duplicate window (the ones already stored come back as duplicates).
    pub async fn publish(&self, events: &[Outgoing<'_>]) -> Result<Vec<Published>, NatsError> {
        let subjects = events
            .iter()
            .map(|event| self.subject(event.event_type))
            .collect::<Result<Vec<_>, _>>()?;
        let _turn = self.publishing.lock().await;
        let window = self.config.max_in_flight.max(1);
        let mut acks = Vec::with_capacity(events.len());
        let mut in_flight = VecDeque::with_capacity(window.min(events.len()));
        for (event, subject) in events.iter().zip(subjects) {
            if in_flight.len() == window {
                if let Some(oldest) = in_flight.pop_front() {
                    acks.push(await_ack(oldest).await?);
                }
            }
            let message = jetstream::message::PublishMessage::build()
                .payload(event.body.clone())
                .message_id(event.id.to_string());
            let pending = self
                .context
                .send_publish(subject, message)
                .await
                .map_err(|source| NatsError::Publish {
                    event_id: event.id,
                    source,
                })?;
            in_flight.push_back((event.id, pending));
        }
        while let Some(oldest) = in_flight.pop_front() {
            acks.push(await_ack(oldest).await?);
        }
        Ok(acks)
    }
}

impl std::fmt::Debug for Jetstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jetstream")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

async fn await_ack((event_id, pending): (Uuid, jetstream::context::PublishAckFuture)) -> Result<Published, NatsError> {
    let ack = pending
        .await
        .map_err(|source| NatsError::Publish { event_id, source })?;
    Ok(Published {
        sequence: ack.sequence,
        duplicate: ack.duplicate,
    })
}

/// Subjects are dot-separated tokens; the stricter alphabet keeps wildcards (`*`, `>`), spaces and
/// empty tokens out, each of which would publish somewhere else or nowhere.
fn validate_subject(subject: &str) -> Result<(), ()> {
    let token_ok = |token: &str| {
        !token.is_empty()
            && token
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
    };
    if subject.split('.').all(token_ok) {
        Ok(())
    } else {
        Err(())
    }
}

/// Whether a stream subject (possibly ending in the `>` wildcard) takes every subject of `wanted`
/// (itself `<prefix>.>`).
fn covers(taken: &str, wanted: &str) -> bool {
    taken == wanted
        || taken == ">"
        || taken
            .strip_suffix('>')
            .is_some_and(|stem| wanted.starts_with(stem) && stem.ends_with('.'))
}

/// Takes the credentials out of a (comma-separated) server list: the addresses to connect to, and
/// options carrying the user and password or token. Servers of one list share one set.
fn split_credentials(url: &str) -> Result<(Vec<String>, ConnectOptions), NatsError> {
    let mut servers = Vec::new();
    let mut credentials = None;
    for server in url.split(',').map(str::trim).filter(|server| !server.is_empty()) {
        let split = split_userinfo(server);
        servers.push(format!("{}{}", split.scheme, split.rest));
        if let Some(userinfo) = split.userinfo {
            if credentials.is_some_and(|seen| seen != userinfo) {
                return Err(NatsError::Config(
                    "the servers in the NATS URL carry different credentials".to_owned(),
                ));
            }
            credentials = Some(userinfo);
        }
    }
    if servers.is_empty() {
        return Err(NatsError::Config("the NATS URL names no server".to_owned()));
    }
    let options = match credentials {
        None => ConnectOptions::new(),
        Some(userinfo) => match userinfo.split_once(':') {
            Some((user, pass)) => ConnectOptions::with_user_and_password(percent_decode(user), percent_decode(pass)),
            None => ConnectOptions::with_token(percent_decode(userinfo)),
        },
    };
    Ok((servers, options))
}

/// URL user-info is percent-encoded (a password with `@` or `:` is written `%40`, `%3A`).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_plain_dot_separated_tokens() {
        for ok in ["code.claimed", "redemption.rolled_back", "book-1.created", "x"] {
            assert_eq!(validate_subject(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            ".",
            "code.",
            ".code",
            "code..claimed",
            "code.*",
            "code.>",
            "code claimed",
            "café",
        ] {
            assert_eq!(validate_subject(bad), Err(()), "{bad}");
        }
    }

    #[test]
    fn a_stream_subject_covers_ours_when_equal_or_a_wider_wildcard() {
        let wanted = "coupond.events.>";
        assert!(covers("coupond.events.>", wanted));
        assert!(covers("coupond.>", wanted));
        assert!(covers(">", wanted));
        assert!(!covers("coupond.events.code.>", wanted));
        assert!(!covers("coupond.events.*", wanted));
        assert!(!covers("coupon.>", wanted));
        assert!(!covers("coup>", wanted));
    }

    #[test]
    fn credentials_leave_the_addresses() {
        let (servers, _) = split_credentials("nats://u:p%40ss@h1:4222, nats://u:p%40ss@h2:4222").unwrap();
        assert_eq!(servers, ["nats://h1:4222", "nats://h2:4222"]);
        let (servers, _) = split_credentials("tok@127.0.0.1:4222").unwrap();
        assert_eq!(servers, ["127.0.0.1:4222"]);
        assert!(matches!(
            split_credentials("nats://a:b@h1,nats://c:d@h2"),
            Err(NatsError::Config(_))
        ));
        assert!(matches!(split_credentials(" , "), Err(NatsError::Config(_))));
    }

    #[test]
    fn userinfo_is_percent_decoded() {
        assert_eq!(percent_decode("p%40ss%3Aword"), "p@ss:word");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
