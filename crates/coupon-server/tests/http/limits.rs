//! Resource limits over HTTP: bodies over their route's cap, requests past the concurrency limit,
//! requests that outlive their timeout, slow headers, and a database pool with nothing free. Each
//! server gets small limits; nothing here measures time, only statuses and headers. Requests are
//! held open with `Expect: 100-continue`: hyper answers `100 Continue` when the handler starts
//! reading the body, so the test knows the request is in flight without waiting on a clock.

use std::time::Duration;

use coupon_server::Limits;
use coupon_store::testing::Backend;
use coupon_store::PoolConfig;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::App;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_an_exhausted_pool_is_a_quick_503() {
    an_exhausted_pool_is_a_quick_503(Backend::Postgres).await
}

async fn spawn(backend: Backend, limits: Limits) -> App {
    App::spawn_with(backend, limits, PoolConfig::sized(16)).await
}

/// A 408 or 503 problem that tells the client when to come back.
#[track_caller]
fn assert_retry_later(status: u16, code: &str, got: &Raw) {
    assert_eq!((got.status, got.code()), (status, code), "{}", got.body);
    assert_eq!(got.header("retry-after"), Some("1"));
    assert_eq!(got.header("content-type"), Some("application/problem+json"));
}

pub async fn bodies_over_their_cap_are_413_and_write_nothing(backend: Backend) {
    let limits = Limits {
        body_bytes: 1024,
        codes_body_bytes: 8 * 1024,
        ..Limits::default()
    };
    let app = spawn(backend, limits).await;
    let book = app.book(json!({})).await;
    let before = app.db.snapshot().await;
    let (admin, user) = (app.admin(), app.user("u1"));

    let note = "x".repeat(2000);
    let big_claim = json!({"coupon_book_id": book, "metadata": {"note": note}});
    let r = app.post("/coupons/assign", &user, big_claim.clone()).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    assert_eq!(r.content_type, "application/problem+json");
    let r = app
        .call(
            reqwest::Method::PATCH,
            &format!("/coupons/{book}"),
            Some(&admin),
            Some(json!({"description": note})),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);

    // No Content-Length: the cap applies as the chunks arrive.
    let body = big_claim.to_string();
    let (first, rest) = body.split_at(body.len() / 2);
    let mut raw = Raw::open(&app).await;
    let head = format!(
        "POST /coupons/assign HTTP/1.1\r\nHost: coupond\r\nAuthorization: Bearer {user}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    raw.send(head.as_bytes()).await;
    for chunk in [first, rest] {
        raw.send(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes()).await;
    }
    raw.send(b"0\r\n\r\n").await;
    let r = raw.response().await;
    assert_eq!((r.status, r.code()), (413, "payload_too_large"), "{}", r.body);

    // The lists of codes have a cap of their own: over the JSON one, under theirs, is fine.
    let many: Vec<String> = (0..1000).map(|i| format!("CODE-{i:08}")).collect();
    let r = app
        .post("/coupons/codes", &admin, json!({"coupon_book_id": book, "codes": many}))
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    let r = app
        .post(&format!("/coupons/{book}/codes/remove"), &admin, json!({"codes": many}))
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(app.db.snapshot().await, before, "a refused body wrote nothing");

    let some = &many[..100];
    let r = app
        .post("/coupons/codes", &admin, json!({"coupon_book_id": book, "codes": some}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["uploaded_codes_count"], 100);

    // Every string has a cap, a search's category too.
    let long = "c".repeat(101);
    app.get(&format!("/coupons/search?category={long}"), &user)
        .await
        .assert_invalid("category");
}

pub async fn requests_past_the_limit_are_shed_at_once(backend: Backend) {
    let limits = Limits {
        max_concurrent_requests: 2,
        ..Limits::default()
    };
    let app = spawn(backend, limits).await;
    let user = app.user("u1");
    let body = json!({"coupon_book_id": uuid::Uuid::nil()}).to_string();
    let mut first = Raw::held(&app, "/coupons/assign", &user, body.len()).await;
    let _second = Raw::held(&app, "/coupons/assign", &user, body.len()).await;

    let r = Raw::of(app.http.get(format!("{}/coupons/search", app.base)).bearer_auth(&user)).await;
    assert_retry_later(503, "overloaded", &r);
    assert!(r.header("x-request-id").is_some(), "a shed request has an id too");
    for probe in ["/healthz", "/readyz", "/metrics"] {
        let r = app.http.get(format!("{}{probe}", app.base)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{probe} answers while the server is full");
    }

    // One held request finishes: its answer is out, so its slot is free again.
    first.send(body.as_bytes()).await;
    let r = first.response().await;
    assert_eq!((r.status, r.code()), (404, "not_found"), "{}", r.body);
    let r = app.get("/coupons/search", &user).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

pub async fn a_body_that_does_not_arrive_is_a_408(backend: Backend) {
    let limits = Limits {
        request_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let app = spawn(backend, limits).await;
    let held = Raw::held(&app, "/coupons/assign", &app.user("u1"), 100).await;
    let r = held.response().await;
    assert_retry_later(408, "request_timeout", &r);
}

pub async fn an_answer_that_does_not_come_is_a_503(backend: Backend) {
    let limits = Limits {
        request_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let app = spawn(backend, limits).await;
    let lock = app.db.lock_books().await;
    let spec = json!({"name": "Waits", "discount": {"type": "percentage", "value": 10}});
    let r = Raw::of(
        app.http
            .post(format!("{}/coupons", app.base))
            .bearer_auth(app.admin())
            .json(&spec),
    )
    .await;
    assert_retry_later(503, "timeout", &r);
    lock.release().await;
}

pub async fn slow_headers_close_the_connection(backend: Backend) {
    let limits = Limits {
        header_read_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let app = spawn(backend, limits).await;
    let mut raw = Raw::open(&app).await;
    raw.send(b"GET /healthz HTTP/1.1\r\nHost: coupond\r\n").await;
    // A guard against a hang, not a measurement: the server closes long before.
    let read = tokio::time::timeout(Duration::from_secs(60), raw.read_to_end()).await;
    let text = read.expect("the server closes the connection");
    assert!(!text.starts_with("HTTP/1.1 2"), "{text}");
}

async fn an_exhausted_pool_is_a_quick_503(backend: Backend) {
    let pool = PoolConfig {
        size: 1,
        acquire_timeout: Duration::from_millis(200),
    };
    let app = App::spawn_with(backend, Limits::default(), pool).await;
    let book = app.book(json!({})).await;
    let admin = app.admin();
    let lock = app.db.lock_books().await;
    // The pool's one connection waits on the lock with this request.
    let waiting = app
        .http
        .get(format!("{}/coupons/{book}", app.base))
        .bearer_auth(&admin)
        .send();
    let waiting = tokio::spawn(waiting);
    lock.until_waited_on().await;

    let r = Raw::of(app.http.get(format!("{}/coupons/search", app.base)).bearer_auth(&admin)).await;
    assert_retry_later(503, "unavailable", &r);
    lock.release().await;
    let r = waiting.await.unwrap().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// An HTTP/1.1 exchange written by hand, for what a client library will not do: stop half-way
/// through a request, or send a body in chunks of our choosing. Also holds a reqwest answer.
struct Raw {
    stream: Option<TcpStream>,
    read: Vec<u8>,
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Raw {
    async fn open(app: &App) -> Raw {
        Raw {
            stream: Some(TcpStream::connect(app.addr).await.expect("connect")),
            read: Vec::new(),
            status: 0,
            headers: Vec::new(),
            body: Value::Null,
        }
    }

    /// A POST whose headers are sent and whose handler is reading the `len`-byte body, which has
    /// not been sent.
    async fn held(app: &App, path: &str, token: &str, len: usize) -> Raw {
        let mut raw = Raw::open(app).await;
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: coupond\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {len}\r\nExpect: 100-continue\r\n\r\n"
        );
        raw.send(head.as_bytes()).await;
        raw.read_head().await;
        assert_eq!(raw.status, 100, "the handler reads the body");
        raw
    }

    /// A request sent by reqwest, its answer read whole.
    async fn of(req: reqwest::RequestBuilder) -> Raw {
        let res = req.send().await.expect("the server answers");
        let status = res.status().as_u16();
        let headers = res
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
            .collect();
        let body = serde_json::from_str(&res.text().await.unwrap()).unwrap_or(Value::Null);
        Raw {
            stream: None,
            read: Vec::new(),
            status,
            headers,
            body,
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("<none>")
    }

    /// Sends bytes; the server may have answered and closed already, which the answer will show.
    async fn send(&mut self, bytes: &[u8]) {
        let stream = self.stream.as_mut().expect("a raw connection");
        let _ = stream.write_all(bytes).await;
    }

    /// Reads more; false at the end of the stream.
    async fn fill(&mut self) -> bool {
        let stream = self.stream.as_mut().expect("a raw connection");
        let mut buf = [0u8; 8192];
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.read.extend_from_slice(&buf[..n]);
                true
            }
        }
    }

    async fn read_to_end(&mut self) -> String {
        while self.fill().await {}
        String::from_utf8_lossy(&self.read).into_owned()
    }

    /// Reads one status line and its headers.
    async fn read_head(&mut self) {
        let end = loop {
            if let Some(i) = self.read.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            assert!(self.fill().await, "the connection closed before an answer");
        };
        let head = String::from_utf8_lossy(&self.read[..end]).into_owned();
        self.read.drain(..end + 4);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        self.status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        self.headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
    }

    /// Reads the final answer (after any `100 Continue`) with its Content-Length body.
    async fn response(mut self) -> Raw {
        loop {
            self.read_head().await;
            if self.status != 100 {
                break;
            }
        }
        let len: usize = self.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        while self.read.len() < len {
            assert!(self.fill().await, "the connection closed inside the body");
        }
        self.body = serde_json::from_slice(&self.read[..len]).unwrap_or(Value::Null);
        self
    }
}
