//! Speaking HTTP to the servers: one keep-alive connection per client and instance, dropped on any
//! error (a killed server leaves a dead socket behind), and the tokens requests are signed with.

use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpStream;

use crate::operation::Request;

const IDEMPOTENCY_KEY: &str = "idempotency-key";
const REPLAYED: &str = "idempotent-replayed";

/// What came back from one attempt, when something did.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Bytes,
    pub replayed: bool,
}

/// One client's connections, one per instance.
pub struct Client {
    addrs: Vec<SocketAddr>,
    senders: Vec<Option<SendRequest<Full<Bytes>>>>,
    timeout: Duration,
}

impl Client {
    pub fn new(addrs: Vec<SocketAddr>, timeout: Duration) -> Client {
        Client {
            senders: addrs.iter().map(|_| None).collect(),
            addrs,
            timeout,
        }
    }

    pub fn instances(&self) -> usize {
        self.addrs.len()
    }

    /// One attempt. An error is anything that left the outcome unknown: no connection, a reset,
    /// no answer within the timeout.
    pub async fn send(
        &mut self,
        instance: usize,
        token: &str,
        key: Option<&str>,
        request: &Request,
    ) -> Result<Reply, String> {
        let timeout = self.timeout;
        let attempt = tokio::time::timeout(timeout, self.try_send(instance, token, key, request)).await;
        let reply = attempt.unwrap_or_else(|_| Err(format!("no answer within {timeout:?}")));
        if reply.is_err() {
            self.senders[instance] = None;
        }
        reply
    }

    async fn try_send(
        &mut self,
        instance: usize,
        token: &str,
        key: Option<&str>,
        request: &Request,
    ) -> Result<Reply, String> {
        let addr = self.addrs[instance];
        let sender = match &mut self.senders[instance] {
            Some(sender) => sender,
            None => self.senders[instance].insert(connect(addr).await?),
        };
        let mut builder = hyper::Request::builder()
            .method(if request.post { Method::POST } else { Method::GET })
            .uri(&request.target)
            .header(HOST, addr.to_string())
            .header(AUTHORIZATION, format!("Bearer {token}"));
        if request.post {
            builder = builder.header(CONTENT_TYPE, "application/json");
        }
        if let Some(key) = key {
            builder = builder.header(IDEMPOTENCY_KEY, HeaderValue::from_str(key).map_err(|e| e.to_string())?);
        }
        let http = builder
            .body(Full::new(Bytes::from(request.body.clone())))
            .map_err(|e| e.to_string())?;
        sender.ready().await.map_err(|e| format!("connection: {e}"))?;
        let response = sender.send_request(http).await.map_err(|e| format!("send: {e}"))?;
        let status = response.status();
        let replayed = response
            .headers()
            .get(REPLAYED)
            .is_some_and(|v| v.as_bytes() == b"true");
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        Ok(Reply { status, body, replayed })
    }
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        // Its errors reach the sender too, where the attempt fails.
        let _ = connection.await;
    });
    Ok(sender)
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    role: &'a str,
    exp: u64,
}

/// An HS256 token as coupond verifies it, valid for a week (a run never lasts that long).
pub fn token(secret: &str, sub: &str, role: &str) -> anyhow::Result<String> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    let claims = Claims {
        sub,
        role,
        exp: now.as_secs() + 7 * 86_400,
    };
    Ok(jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )?)
}

/// Milliseconds since the Unix epoch: the history's clock.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
