//! Which error a route that looks a code up answers when several things are wrong at once: the
//! order `CodeLookup`'s steps keep, from the request's extraction to the failed-look-up budget.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request};
use coupon_core::{ManualClock, Timestamp};
use coupon_store::testing::{Backend, TestDb};
use coupon_store::{Coupons, PoolConfig};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use crate::{router, AppState, Claims, JwtSecret, Limits, Role, Services, Throttle, ThrottleConfig, Tokens};

/// 2026-06-01T12:00:00Z.
const NOW: i64 = 1_780_315_200_000;

struct Server {
    app: axum::Router,
    secret: JwtSecret,
    _db: TestDb,
}

impl Server {
    /// An empty store, and a budget of one failed look-up per user.
    async fn start() -> Server {
        let db = TestDb::new(Backend::Sqlite).await;
        let mut config = ThrottleConfig::default();
        for setting in ["*.user=1000/s", "lookups.user=1/h"] {
            config.set(setting).unwrap();
        }
        let secret = JwtSecret::new("a test secret that is long enough to sign with");
        let store = db.store_with(PoolConfig::sized(4)).await;
        let state = AppState::from(Services {
            coupons: Coupons::naive(store),
            clock: Arc::new(ManualClock::new(Timestamp::from_millis(NOW))),
            tokens: Tokens::hs256(secret.clone()),
            throttle: Throttle::new(config).unwrap(),
            background: coupon_store::Background::new(),
            limits: Limits::default(),
            metrics: None,
            webhook_urls: Default::default(),
        });
        Server {
            app: router(state),
            secret,
            _db: db,
        }
    }

    /// The answer's status, problem code and detail, sent by the user `alice` (anonymously
    /// without a token).
    async fn call(&self, method: &str, uri: &str, body: &str, token: bool) -> (u16, String, String) {
        let mut req = Request::builder().method(method).uri(uri);
        if token {
            let token = self.secret.sign(&Claims {
                sub: "alice".into(),
                role: Role::User,
                exp: NOW / 1000 + 3600,
            });
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let req = req.body(Body::from(body.to_owned())).unwrap();
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status().as_u16();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let problem: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let text = |key: &str| problem[key].as_str().unwrap_or_default().to_owned();
        (status, text("code"), text("detail"))
    }
}

/// Each request has several things wrong; the answer is the first in the order the handlers have
/// always checked them: the token, the body or query, the code, the order's fields, the user acted
/// for, the failed-look-up budget.
#[rustfmt::skip]
const CASES: &[(&str, &str, &str, bool, u16, &str, &str)] = &[
    // method  path                                                  body                                          token  status code                         detail starts with
    ("POST", "/coupons/lock/no%20such",                              "{",                                          false, 401, "unauthorized",               "an Authorization"),
    ("POST", "/coupons/lock/no%20such",                              "{",                                          true,  400, "invalid_request",            "body: "),
    ("POST", "/coupons/assign/no%20such",                            "[]",                                         true,  400, "invalid_request",            "body: "),
    ("GET",  "/coupons/validate/no%20such?order_amount=x",           "",                                           true,  400, "invalid_request",            "query: "),
    ("POST", "/coupons/redeem/no%20such",                            r#"{"order_amount": -1, "user_id": "bob"}"#,  true,  400, "invalid_request",            "code: "),
    ("POST", "/coupons/unlock/no%20such",                            r#"{"user_id": "bob"}"#,                      true,  400, "invalid_request",            "code: "),
    ("POST", "/coupons/redeem/GHOST",                                r#"{"order_amount": -1, "user_id": "bob"}"#,  true,  400, "invalid_request",            "order_amount: "),
    ("POST", "/coupons/redeem/GHOST",                                r#"{"order_id": "", "user_id": "bob"}"#,      true,  400, "invalid_request",            "order_id: "),
    ("GET",  "/coupons/validate/GHOST?order_amount=-1&user_id=bob",  "",                                           true,  400, "invalid_request",            "order_amount: "),
    ("POST", "/coupons/assign/GHOST",                                r#"{"user_id": "bob"}"#,                      true,  403, "forbidden",                  "a user may act only for itself"),
    // An unknown code: alice's one failed look-up is spent.
    ("POST", "/coupons/lock/GHOST",                                  "",                                           true,  404, "not_found",                  ""),
    ("POST", "/coupons/lock/GHOST",                                  "",                                           true,  429, "too_many_failed_lookups",    ""),
    ("GET",  "/coupons/validate/GHOST",                              "",                                           true,  429, "too_many_failed_lookups",    ""),
    ("POST", "/coupons/unlock/GHOST",                                r#"{"user_id": "bob"}"#,                      true,  403, "forbidden",                  "a user may act only for itself"),
    ("POST", "/coupons/redeem/GHOST",                                r#"{"order_amount": -1}"#,                    true,  400, "invalid_request",            "order_amount: "),
    ("POST", "/coupons/assign/no%20such",                            "",                                           true,  400, "invalid_request",            "code: "),
];

#[tokio::test]
async fn the_first_error_in_order_is_answered() {
    let server = Server::start().await;
    for &(method, uri, body, token, status, code, detail) in CASES {
        let (got_status, got_code, got_detail) = server.call(method, uri, body, token).await;
        assert_eq!(
            (got_status, got_code.as_str()),
            (status, code),
            "{method} {uri} {body}: {got_detail}"
        );
        assert!(got_detail.starts_with(detail), "{method} {uri} {body}: {got_detail}");
    }
}
