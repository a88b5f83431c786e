//! The HTTP side of the load: one keep-alive HTTP/1.1 connection per worker, tokens, and latency
//! tallies. No pooling: each worker owns its connection, as a browser tab or checkout worker would.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// Connecting included; far above any latency worth measuring.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A server and the identity requests are sent with.
pub struct Target {
    addr: SocketAddr,
    host: HeaderValue,
    authorization: HeaderValue,
}

impl Target {
    pub fn new(addr: SocketAddr, token: &str) -> anyhow::Result<Arc<Target>> {
        Ok(Arc::new(Target {
            addr,
            host: HeaderValue::from_str(&addr.to_string())?,
            authorization: HeaderValue::from_str(&format!("Bearer {token}"))?,
        }))
    }
}

/// A server's answer and how long it took, connecting excluded.
pub struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
    pub latency: Duration,
}

/// One worker's connection. A transport error drops it; the next request opens a new one.
pub struct Connection {
    target: Arc<Target>,
    sender: Option<SendRequest<Full<Bytes>>>,
    timeout: Duration,
}

impl Connection {
    pub fn new(target: Arc<Target>) -> Connection {
        Connection {
            target,
            sender: None,
            timeout: REQUEST_TIMEOUT,
        }
    }

    /// For requests that are slow by nature, such as generating a large book's codes.
    pub fn with_timeout(self, timeout: Duration) -> Connection {
        Connection { timeout, ..self }
    }

    pub async fn get(&mut self, path: &str) -> anyhow::Result<Answer> {
        self.send(Method::GET, path, None, None).await
    }

    pub async fn post(&mut self, path: &str, body: &impl Serialize) -> anyhow::Result<Answer> {
        self.post_keyed(path, body, None).await
    }

    /// A POST with an `Idempotency-Key`, if given.
    pub async fn post_keyed(&mut self, path: &str, body: &impl Serialize, key: Option<&str>) -> anyhow::Result<Answer> {
        self.send(Method::POST, path, Some(serde_json::to_vec(body)?), key)
            .await
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        key: Option<&str>,
    ) -> anyhow::Result<Answer> {
        // A server that stopped accepting (out of file descriptors, say) would otherwise hang the bench.
        let timeout = self.timeout;
        let answer = tokio::time::timeout(timeout, self.try_send(method, path, body, key)).await;
        let answer = answer.unwrap_or_else(|_| Err(anyhow::anyhow!("no answer within {timeout:?}")));
        if answer.is_err() {
            self.sender = None;
        }
        answer
    }

    async fn try_send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        key: Option<&str>,
    ) -> anyhow::Result<Answer> {
        let sender = match &mut self.sender {
            Some(sender) => sender,
            None => self.sender.insert(handshake(self.target.addr).await?),
        };
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.target.host.clone())
            .header(AUTHORIZATION, self.target.authorization.clone());
        if body.is_some() {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        let request = request.body(Full::new(Bytes::from(body.unwrap_or_default())))?;
        exchange(sender, request).await
    }
}

async fn handshake(addr: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    // Requests are small and answered one at a time: Nagle would only add delay.
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // Its errors surface on the sender as well, where they are counted.
        let _ = connection.await;
    });
    Ok(sender)
}

async fn exchange(sender: &mut SendRequest<Full<Bytes>>, request: Request<Full<Bytes>>) -> anyhow::Result<Answer> {
    let started = Instant::now();
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok(Answer {
        status,
        body,
        latency: started.elapsed(),
    })
}

/// Runs `count` workers concurrently and collects what each returns.
pub async fn workers<T, F, Fut>(count: usize, worker: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let mut set = JoinSet::new();
    for i in 0..count {
        set.spawn(worker(i));
    }
    let mut results = Vec::with_capacity(count);
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(result) => results.push(result),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    results
}

/// Expected answers with their latencies, and everything else counted as an error.
#[derive(Clone)]
pub struct Tally {
    /// Microseconds, from 1 µs to one minute at three significant figures.
    pub latency: Histogram<u64>,
    /// Unexpected statuses and transport errors.
    pub errors: u64,
}

impl Tally {
    pub fn new() -> Tally {
        Tally {
            latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"),
            errors: 0,
        }
    }

    pub fn record(&mut self, latency: Duration) {
        self.latency
            .saturating_record(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
    }

    /// Expected answers.
    pub fn answers(&self) -> u64 {
        self.latency.len()
    }

    pub fn merge(tallies: impl IntoIterator<Item = Tally>) -> Tally {
        let mut total = Tally::new();
        for t in tallies {
            total.latency.add(&t.latency).expect("histograms with equal bounds");
            total.errors += t.errors;
        }
        total
    }
}

impl Default for Tally {
    fn default() -> Tally {
        Tally::new()
    }
}

/// Waits a little after a transport error so a refused connection does not become a busy loop.
pub async fn back_off() {
    tokio::time::sleep(Duration::from_millis(20)).await;
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    role: &'a str,
    exp: u64,
}

/// An HS256 token as coupond verifies it, valid for a day.
pub fn token(secret: &str, sub: &str, role: &str) -> anyhow::Result<String> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    let claims = Claims {
        sub,
        role,
        exp: now.as_secs() + 86_400,
    };
    Ok(jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )?)
}

/// Quantiles of a phase's latencies, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub max: f64,
}
