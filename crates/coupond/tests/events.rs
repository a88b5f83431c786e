//! Events as a shop's other systems receive them, from the real binary: a webhook receiver that
//! checks every signature sees every event of a flash sale, once each after deduplication, though
//! it refuses some deliveries and the server is killed in the middle of the sale; NATS JetStream
//! receives the same events, each stored once.

mod common;

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::{serve_with, stdout_of};
use coupon_relay::{verify, Secret};
use coupon_store::testing::{Backend, TestDb};
use futures::StreamExt;
use serde_json::{json, Value};

const JWT_SECRET: &str = "events-test-jwt-secret-of-32-bytes-or-more";

/// What the receiver saw: how many times each event id came, which it refused once and which it
/// took, and anything wrong.
#[derive(Default)]
struct Received {
    secret: Mutex<Option<Secret>>,
    seen: Mutex<HashMap<String, usize>>,
    refused: Mutex<HashSet<String>>,
    accepted: Mutex<HashSet<String>>,
    wrong: Mutex<Vec<String>>,
}

async fn receive(State(r): State<Arc<Received>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let secret = r.secret.lock().unwrap().clone();
    let Some(secret) = secret else {
        return StatusCode::SERVICE_UNAVAILABLE;
    };
    let now = chrono::Utc::now().timestamp();
    if let Err(e) = verify(
        &secret,
        &header("Coupond-Signature"),
        &body,
        now,
        Duration::from_secs(300),
    ) {
        r.wrong.lock().unwrap().push(format!("signature: {e}"));
        return StatusCode::BAD_REQUEST;
    }
    let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let id = header("Coupond-Event-Id");
    if event["id"] != json!(id) || event["type"] != json!(header("Coupond-Event-Type")) {
        r.wrong
            .lock()
            .unwrap()
            .push(format!("headers do not match the body: {event}"));
        return StatusCode::BAD_REQUEST;
    }
    let mut seen = r.seen.lock().unwrap();
    let count = seen.entry(id.clone()).or_insert(0);
    *count += 1;
    let first = *count == 1;
    // Every seventh event is refused the first time: it must come again.
    if first && seen.len() % 7 == 0 {
        r.refused.lock().unwrap().insert(id);
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    r.accepted.lock().unwrap().insert(id);
    StatusCode::NO_CONTENT
}

async fn receiver() -> (String, Arc<Received>) {
    let received = Arc::new(Received::default());
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

/// A `nats-server` with JetStream of the test's own, so its stream holds this test's events only.
struct Nats {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn nats() -> Nats {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server runs (Debian's package nats-server; .ci/run installs it)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(Instant::now() < deadline, "nats-server did not come up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Nats {
        child,
        url: format!("nats://127.0.0.1:{port}"),
        _dir: dir,
    }
}

struct Server {
    child: Child,
    base: String,
}

impl Server {
    async fn get(&self, http: &reqwest::Client, path: &str, token: &str) -> Value {
        let answer = http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        answer.json().await.unwrap()
    }

    /// One series of `/metrics`, as `name{labels}` is written there, if it is.
    async fn metric(&self, http: &reqwest::Client, series: &str) -> Option<f64> {
        let text = http.get(format!("{}/metrics", self.base)).send().await.unwrap();
        let text = text.text().await.unwrap();
        let value = text
            .lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '));
        value.map(|v| v.parse().unwrap())
    }

    async fn post(&self, http: &reqwest::Client, path: &str, token: &str, body: Value) -> Value {
        let request = http.post(format!("{}{path}", self.base)).bearer_auth(token).json(&body);
        request.send().await.unwrap().json().await.unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &std::path::Path, db: &str, nats: &str) -> Server {
    let args = [
        "--database-url",
        db,
        "--jwt-secret",
        JWT_SECRET,
        "--nats-url",
        nats,
        "--throttle",
        "off",
        // The test's receiver is on loopback, which webhooks reach only when allowed.
        "--webhook-allow-networks",
        "127.0.0.1/32",
    ];
    let (child, listen) = serve_with(dir, &args);
    Server {
        child,
        base: format!("http://{listen}"),
    }
}

fn token(role: &str) -> String {
    let out = stdout_of(common::coupond().args([
        "token",
        "--sub",
        "events-test",
        "--role",
        role,
        "--jwt-secret",
        JWT_SECRET,
    ]));
    out.trim().to_owned()
}

/// Claims for `users` at once through the checkout service; says how many got a code.
async fn sale(
    http: &reqwest::Client,
    server: &Server,
    service: &str,
    book: &str,
    users: std::ops::Range<u32>,
) -> usize {
    let claims = users.map(|u| {
        http.post(format!("{}/coupons/assign", server.base))
            .bearer_auth(service)
            .json(&json!({"coupon_book_id": book, "user_id": format!("buyer-{u}")}))
            .send()
    });
    let answers = futures::future::join_all(claims).await;
    answers
        .into_iter()
        .filter(|a| a.as_ref().is_ok_and(|r| r.status() == 201))
        .count()
}

/// Every event in the feed, as the admin API pages it.
async fn feed(http: &reqwest::Client, server: &Server, admin: &str) -> Vec<Value> {
    let (mut all, mut after) = (Vec::new(), None::<String>);
    loop {
        let path = match &after {
            Some(a) => format!("/events?limit=1000&after={a}"),
            None => "/events?limit=1000".to_owned(),
        };
        let page = server.get(http, &path, admin).await;
        let events = page["events"].as_array().unwrap();
        if events.is_empty() {
            return all;
        }
        all.extend(events.iter().cloned());
        after = page["next_cursor"].as_str().map(str::to_owned);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flash_sale_reaches_webhooks_and_nats_across_a_restart() {
    let db = TestDb::new(Backend::Postgres).await;
    let dir = tempfile::tempdir().unwrap();
    let nats = nats().await;
    let (hook, received) = receiver().await;
    let http = reqwest::Client::new();
    let (admin, service) = (token("admin"), token("service"));

    let server = start(dir.path(), &db.url, &nats.url);
    let endpoint = json!({"url": hook, "events": ["*"], "description": "the CRM"});
    let created = server.post(&http, "/webhooks", &admin, endpoint).await;
    let secret = created["secret"].as_str().expect("the secret is shown at creation");
    *received.secret.lock().unwrap() = Some(Secret::new(secret));
    let listed = server.get(&http, "/webhooks", &admin).await;
    assert!(!listed.to_string().contains(secret), "the secret is shown once");
    let spec = json!({"name": "Flash", "discount": {"type": "percentage", "value": 20},
                      "code_pattern": "FLASH-********", "total_codes": 300, "low_stock_threshold": 30});
    let book = server.post(&http, "/coupons", &admin, spec).await;
    let book = book["coupon_book_id"].as_str().unwrap().to_owned();

    // The first half of the sale, then the server dies with deliveries in flight.
    let mut server = server;
    assert_eq!(sale(&http, &server, &service, &book, 0..150).await, 150);
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    drop(server);

    // A new process on the same database sells the rest, and more are refused.
    let mut server = start(dir.path(), &db.url, &nats.url);
    assert_eq!(sale(&http, &server, &service, &book, 150..350).await, 150);

    // The book, 300 claims, low stock and the sell-out. PostgreSQL's feed shows a transaction once
    // every older one on the server has ended, so the last ones may take a moment.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut feed = feed(&http, &server, &admin).await;
    while feed.len() < 303 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        feed = self::feed(&http, &server, &admin).await;
    }
    assert_eq!(feed.len(), 303);
    let ids: HashSet<String> = feed.iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect();
    let kinds = |t: &str| feed.iter().filter(|e| e["type"] == t).count();
    assert_eq!(kinds("code.claimed"), 300);
    assert_eq!(
        (kinds("book.low_stock"), kinds("book.sold_out"), kinds("book.created")),
        (1, 1, 1)
    );

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let accepted = received.accepted.lock().unwrap().clone();
        if accepted.is_superset(&ids) || Instant::now() > deadline {
            assert!(
                received.wrong.lock().unwrap().is_empty(),
                "{:?}",
                received.wrong.lock().unwrap()
            );
            assert_eq!(accepted, ids, "every event of the sale, and nothing else, was taken");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refused = received.refused.lock().unwrap().clone();
    assert!(refused.len() >= ids.len() / 7, "{} refused", refused.len());
    let seen = received.seen.lock().unwrap().clone();
    assert!(
        refused.iter().all(|id| seen[id] >= 2),
        "each refused delivery came again"
    );

    // The endpoint's deliveries say so too.
    let webhook = created["id"].as_str().unwrap();
    let page = server
        .get(&http, &format!("/webhooks/{webhook}/deliveries?limit=100"), &admin)
        .await;
    let deliveries = page["deliveries"].as_array().unwrap();
    assert!(deliveries
        .iter()
        .any(|d| d["attempts"].as_i64() > Some(1) && d["state"] == "delivered"));

    // NATS holds the same events, each once.
    let js = async_nats::jetstream::new(async_nats::connect(&nats.url).await.unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut stream = js.get_stream("COUPOND_EVENTS").await.unwrap();
    while stream.info().await.unwrap().state.messages < ids.len() as u64 {
        assert!(Instant::now() < deadline, "NATS did not receive every event");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config::default())
        .await
        .unwrap();
    let mut messages = consumer.fetch().max_messages(ids.len() + 10).messages().await.unwrap();
    let mut published = Vec::new();
    while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(2), messages.next()).await {
        let id = m
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .unwrap()
            .as_str()
            .to_owned();
        let body: Value = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(
            m.subject.as_str(),
            format!("coupond.events.{}", body["type"].as_str().unwrap())
        );
        published.push(id);
    }
    assert_eq!(published.len(), ids.len(), "each event stored once");
    assert_eq!(published.into_iter().collect::<HashSet<_>>(), ids);

    // The metrics tell the same: every backlog drained (the relay settles and moves its places just
    // after the receipts above), and this run's attempts counted by outcome.
    let backlog = |consumer: &str| format!("coupond_outbox_backlog{{consumer=\"{consumer}\"}}");
    let deadline = Instant::now() + Duration::from_secs(10);
    for consumer in ["webhooks", "nats", "deliveries"] {
        while server.metric(&http, &backlog(consumer)).await != Some(0.0) {
            assert!(Instant::now() < deadline, "the {consumer} backlog did not drain");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let oldest = "coupond_outbox_oldest_seconds{consumer=\"deliveries\"}";
    assert_eq!(server.metric(&http, oldest).await, Some(0.0));
    let attempts = |outcome: &str| format!("coupond_webhook_deliveries_total{{outcome=\"{outcome}\"}}");
    assert!(
        server.metric(&http, &attempts("delivered")).await >= Some(150.0),
        "at least the claims after the restart"
    );
    assert!(server.metric(&http, &attempts("retrying")).await >= Some(1.0));
    assert_eq!(server.metric(&http, &attempts("failed")).await, None, "none given up");

    let term = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    assert!(
        server.child.wait().unwrap().success(),
        "a SIGTERM stops the relay with the server"
    );
}
