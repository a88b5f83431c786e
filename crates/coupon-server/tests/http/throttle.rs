//! Throttling over HTTP: request buckets per principal and client IP, the failed-look-up budget
//! that stops code guessing, and buckets shared through the real Redis (and what an outage does).

use coupon_server::{Role, Throttle, ThrottleConfig};
use coupon_store::testing::Backend;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::{App, Reply};

fn throttle(settings: &[&str]) -> ThrottleConfig {
    let mut config = ThrottleConfig::default();
    for s in settings {
        config.set(s).unwrap();
    }
    // Tests tell clients apart by the X-Forwarded-For their proxy (the test) writes.
    config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    config
}

async fn spawn(backend: Backend, config: ThrottleConfig) -> App {
    App::spawn_throttled(backend, Throttle::new(config).unwrap()).await
}

/// A server whose buckets are in Redis from its first request.
async fn spawn_shared(backend: Backend, config: ThrottleConfig) -> App {
    let throttle = Throttle::new(config).unwrap();
    assert!(throttle.connect().await, "Redis answers");
    App::spawn_throttled(backend, throttle).await
}

impl App {
    /// A request from client `ip`, through the trusted proxy.
    async fn from(&self, ip: &str, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        let mut req = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .header("x-forwarded-for", ip);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        Reply::read(req.send().await.expect("the server answers")).await
    }
}

fn header(r: &Reply, name: &str) -> String {
    r.headers
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_else(|| panic!("{name} is missing"))
}

#[track_caller]
fn assert_refused(r: &Reply, code: &str) {
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::TOO_MANY_REQUESTS, code),
        "{}",
        r.body
    );
    assert_eq!(r.content_type, "application/problem+json");
    let wait: u64 = header(r, "retry-after").parse().unwrap();
    assert!(wait >= 1, "Retry-After says when to come back");
}

pub async fn requests_beyond_the_bucket_are_refused_with_429(backend: Backend) {
    let app = spawn(
        backend,
        throttle(&["reads.user=1/h:3", "claims.user=1/h:1", "*.anonymous=1/h:2"]),
    )
    .await;
    let alice = app.user("alice");
    let remaining: Vec<String> = {
        let mut seen = Vec::new();
        for _ in 0..3 {
            let r = app.get("/coupons/search", &alice).await;
            assert_eq!(r.status, StatusCode::OK);
            assert_eq!(header(&r, "ratelimit-limit"), "3");
            seen.push(header(&r, "ratelimit-remaining"));
        }
        seen
    };
    assert_eq!(remaining, ["2", "1", "0"]);
    let refused = app.get("/coupons/search", &alice).await;
    assert_refused(&refused, "rate_limited");
    assert_eq!(header(&refused, "ratelimit-remaining"), "0");
    let reset: u64 = header(&refused, "ratelimit-reset").parse().unwrap();
    assert!(reset > 3600, "a full bucket is three hours of refills away: {reset}");
    // Each principal has its own bucket, and a service is not held to a user's.
    assert_eq!(
        app.get("/coupons/search", &app.user("bob")).await.status,
        StatusCode::OK
    );
    let service = app.token("checkout", Role::Service);
    for _ in 0..10 {
        assert_eq!(app.get("/coupons/search", &service).await.status, StatusCode::OK);
    }
    // Groups are counted apart: alice may still claim, once.
    let book = app.book(json!({})).await;
    app.upload(&book, &["T1", "T2"]).await;
    app.claim(&book, "alice").await;
    let again = app
        .post("/coupons/assign", &alice, json!({"coupon_book_id": book}))
        .await;
    assert_refused(&again, "rate_limited");
    assert_eq!(
        app.stats(&book).await["total_assigned"],
        1,
        "a refused claim writes nothing"
    );
    // Callers without a valid token are counted by client IP.
    for _ in 0..2 {
        let r = app
            .from("198.51.100.1", Method::GET, "/coupons/search", None, None)
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = app
        .from("198.51.100.1", Method::GET, "/coupons/search", Some("junk"), None)
        .await;
    assert_refused(&r, "rate_limited");
    let other = app
        .from("198.51.100.2", Method::GET, "/coupons/search", None, None)
        .await;
    assert_eq!(
        other.status,
        StatusCode::UNAUTHORIZED,
        "another client is not slowed down"
    );
    // Probes are never throttled.
    for _ in 0..10 {
        let r = app.from("198.51.100.1", Method::GET, "/healthz", None, None).await;
        assert_eq!(r.status, StatusCode::OK);
    }
}

/// The four routes that look a code up, each way a guess can fail.
fn guesses(code: &str) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (Method::GET, format!("/coupons/validate/{code}"), None),
        (Method::POST, format!("/coupons/lock/{code}"), Some(json!({}))),
        (Method::POST, format!("/coupons/redeem/{code}"), Some(json!({}))),
        (Method::POST, format!("/coupons/assign/{code}"), Some(json!({}))),
        (Method::POST, format!("/coupons/unlock/{code}"), Some(json!({}))),
    ]
}

pub async fn guessing_codes_is_stopped_without_slowing_others(backend: Backend) {
    let app = spawn(backend, throttle(&["lookups.user=1/h:5", "lookups.ip=1/h:100"])).await;
    let book = app.book(json!({"max_codes_per_user": null})).await;
    app.upload(&book, &["REAL-1", "REAL-2", "ALICE-1"]).await;
    let held = app.claim(&book, "alice").await;
    let (mallory, alice) = (app.user("mallory"), app.user("alice"));
    // Five failures of every kind: unknown codes on each route, and a code that is not hers.
    let mut failures = Vec::new();
    for (method, path, body) in guesses("GUESS-1").into_iter().take(4) {
        let r = app.from("203.0.113.6", method, &path, Some(&mallory), body).await;
        failures.push((r.status.as_u16(), r.body["valid"].clone()));
    }
    let not_hers = app
        .from(
            "203.0.113.6",
            Method::POST,
            &format!("/coupons/lock/{held}"),
            Some(&mallory),
            Some(json!({})),
        )
        .await;
    failures.push((not_hers.status.as_u16(), Value::Null));
    assert_eq!(
        failures,
        [
            (200, json!(false)),
            (404, Value::Null),
            (404, Value::Null),
            (404, Value::Null),
            (403, Value::Null)
        ]
    );
    // The budget is spent: every look-up is refused before it is made, a real code's included,
    // so that a guess that would hit tells her nothing.
    for (method, path, body) in guesses("REAL-2") {
        let r = app.from("203.0.113.6", method, &path, Some(&mallory), body).await;
        assert_refused(&r, "too_many_failed_lookups");
    }
    assert_eq!(app.stats(&book).await["total_assigned"], 1, "nothing was claimed");
    // She may still do what needs no look-up.
    let claimed = app
        .from(
            "203.0.113.6",
            Method::POST,
            "/coupons/assign",
            Some(&mallory),
            Some(json!({"coupon_book_id": book})),
        )
        .await;
    assert_eq!(claimed.status, StatusCode::CREATED, "{}", claimed.body);
    // Alice is not slowed down, and successes never count: she looks her code up at will.
    for _ in 0..8 {
        let r = app
            .from(
                "203.0.113.7",
                Method::GET,
                &format!("/coupons/validate/{held}"),
                Some(&alice),
                None,
            )
            .await;
        assert_eq!(
            (r.status, r.body["valid"].clone()),
            (StatusCode::OK, json!(true)),
            "{}",
            r.body
        );
    }
    // Admins, who can list every code, have no budget.
    let admin = app.admin();
    for i in 0..8 {
        let r = app
            .from(
                "203.0.113.6",
                Method::POST,
                &format!("/coupons/lock/NOPE-{i}"),
                Some(&admin),
                Some(json!({"user_id": "x"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }
}

pub async fn failed_lookups_count_per_ip_and_for_whom_a_service_acts(backend: Backend) {
    let app = spawn(backend, throttle(&["lookups.user=1/h:2", "lookups.ip=1/h:3"])).await;
    let book = app.book(json!({})).await;
    app.upload(&book, &["DAVE-1", "SPARE-1"]).await;
    let daves = app.claim(&book, "dave").await;
    // Three users behind one address spend the address's budget, one failure each...
    for user in ["u1", "u2", "u3"] {
        let r = app
            .from(
                "192.0.2.50",
                Method::GET,
                "/coupons/validate/NOPE",
                Some(&app.user(user)),
                None,
            )
            .await;
        assert_eq!(r.body["reason"], "not_found");
    }
    // ...so a fourth there is refused, while the same user elsewhere is not.
    let u4 = app.user("u4");
    assert_refused(
        &app.from("192.0.2.50", Method::GET, "/coupons/validate/NOPE", Some(&u4), None)
            .await,
        "too_many_failed_lookups",
    );
    let elsewhere = app
        .from("192.0.2.51", Method::GET, "/coupons/validate/NOPE", Some(&u4), None)
        .await;
    assert_eq!(elsewhere.status, StatusCode::OK);
    // A service's failures count against the user it acts for, never against its own address,
    // which carries every customer of the shop.
    let service = app.token("checkout", Role::Service);
    let for_carol = || {
        app.from(
            "10.9.9.9",
            Method::POST,
            "/coupons/redeem/NOPE",
            Some(&service),
            Some(json!({"user_id": "carol"})),
        )
    };
    for _ in 0..2 {
        assert_eq!(for_carol().await.status, StatusCode::NOT_FOUND);
    }
    let carol = for_carol().await;
    assert_refused(&carol, "too_many_failed_lookups");
    let redeemed = app
        .from(
            "10.9.9.9",
            Method::POST,
            &format!("/coupons/redeem/{daves}"),
            Some(&service),
            Some(json!({"user_id": "dave"})),
        )
        .await;
    assert_eq!(redeemed.status, StatusCode::OK, "{}", redeemed.body);
}

fn unique_prefix() -> String {
    format!("coupond-test:{}", uuid::Uuid::now_v7())
}

pub async fn instances_share_buckets_through_redis(backend: Backend) {
    let mut config = throttle(&["reads.user=1/h:3"]);
    config.redis_url = Some("redis://127.0.0.1:6379".into());
    config.redis_prefix = unique_prefix();
    let one = spawn_shared(backend, config.clone()).await;
    let two = spawn_shared(backend, config).await;
    // The test servers share their signing secret, as a deployment's instances do.
    let token = one.user("alice");
    assert_eq!(one.get("/coupons/search", &token).await.status, StatusCode::OK);
    assert_eq!(two.get("/coupons/search", &token).await.status, StatusCode::OK);
    let last = one.get("/coupons/search", &token).await;
    assert_eq!(header(&last, "ratelimit-remaining"), "0");
    assert_refused(&two.get("/coupons/search", &token).await, "rate_limited");
    assert_refused(&one.get("/coupons/search", &token).await, "rate_limited");
}

pub async fn a_redis_outage_falls_back_to_memory_limits(backend: Backend) {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut redis = std::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--save", "", "--appendonly", "no"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server starts");
    let mut config = throttle(&["reads.user=1/h:4"]);
    config.redis_url = Some(format!("redis://127.0.0.1:{port}"));
    config.redis_prefix = unique_prefix();
    let app = spawn_shared(backend, config).await;
    let token = app.user("alice");
    let mut statuses = Vec::new();
    for _ in 0..2 {
        statuses.push(app.get("/coupons/search", &token).await.status.as_u16());
    }
    redis.kill().unwrap();
    redis.wait().unwrap();
    // Without Redis the instance counts in memory: never an error, never unlimited.
    for _ in 0..8 {
        statuses.push(app.get("/coupons/search", &token).await.status.as_u16());
    }
    assert!(statuses.iter().all(|s| *s == 200 || *s == 429), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&429), "the limit still holds: {statuses:?}");
    assert!(statuses.iter().filter(|s| **s == 200).count() <= 2 + 4, "{statuses:?}");
}
