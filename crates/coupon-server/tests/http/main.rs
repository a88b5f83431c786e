//! HTTP tests against the real server on 127.0.0.1:0, each case run on both backends, with the
//! server's clock under the test's control.

mod auth;
mod errors;
mod lifecycle;
mod limits;
mod metadata;
mod operations;
mod pool;
mod races;
mod supply;
mod surface;

use std::sync::Arc;

use coupon_core::{ManualClock, Timestamp};
use coupon_server::{AppState, Claims, JwtSecret, Limits, Role};
use coupon_store::testing::{Backend, TestDb};
use coupon_store::PoolConfig;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::oneshot;

/// 2026-06-01T12:00:00Z.
pub const T0: i64 = 1_780_315_200_000;

pub struct App {
    pub base: String,
    pub clock: Arc<ManualClock>,
    pub addr: std::net::SocketAddr,
    pub http: reqwest::Client,
    secret: JwtSecret,
    _stop: oneshot::Sender<()>,
    pub db: TestDb,
}

/// A response: status and JSON body (`Value::Null` when there is none).
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub content_type: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Reply {
    /// A response read whole: its status, headers and JSON body.
    pub async fn read(res: reqwest::Response) -> Reply {
        let status = res.status();
        let headers = res.headers().clone();
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = res.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            body,
            content_type,
            headers,
        }
    }

    /// The problem code of an error reply.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("<none>")
    }

    /// A 400 `invalid_request` whose `detail` names `naming` (a field, a key).
    #[track_caller]
    pub fn assert_invalid(&self, naming: &str) {
        assert_eq!(
            (self.status, self.code()),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{}",
            self.body
        );
        let detail = self.body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(naming), "{detail:?} names {naming:?}");
    }
}

impl App {
    pub async fn spawn(backend: Backend) -> App {
        App::spawn_with(backend, Limits::default(), PoolConfig::sized(16)).await
    }

    /// The server with these limits, on a store whose pools have that shape.
    pub async fn spawn_with(backend: Backend, limits: Limits, pool: PoolConfig) -> App {
        let db = TestDb::new(backend).await;
        let clock = Arc::new(ManualClock::new(Timestamp::from_millis(T0)));
        let secret = JwtSecret::new("a test secret that is long enough to sign with");
        // The server as `coupond serve` runs it: the claim engine in front of the backend.
        let background = coupon_store::Background::new();
        let store = db.store_with(pool).await;
        let state = AppState {
            coupons: coupon_store::Coupons::batched(store.clone(), store, &background).expect("engine starts"),
            clock: clock.clone(),
            secret: secret.clone(),
            background,
            limits,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(coupon_server::serve(listener, state, async {
            let _ = stopped.await;
        }));
        App {
            base: format!("http://{addr}"),
            addr,
            clock,
            http: reqwest::Client::new(),
            secret,
            _stop: stop,
            db,
        }
    }

    /// A token valid for an hour of the server's clock.
    pub fn token(&self, sub: &str, role: Role) -> String {
        let exp = self.clock_now() / 1000 + 3600;
        self.secret.sign(&Claims {
            sub: sub.into(),
            role,
            exp,
        })
    }

    pub fn admin(&self) -> String {
        self.token("admin", Role::Admin)
    }

    pub fn user(&self, sub: &str) -> String {
        self.token(sub, Role::User)
    }

    pub fn clock_now(&self) -> i64 {
        use coupon_core::Clock;
        self.clock.now().millis()
    }

    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        Reply::read(req.send().await.expect("the server answers")).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    /// Creates a book as admin from a partial spec; returns its id.
    pub async fn book(&self, spec: Value) -> String {
        let mut v = json!({"name": "Summer sale", "discount": {"type": "percentage", "value": 10}});
        v.as_object_mut().unwrap().extend(spec.as_object().unwrap().clone());
        let r = self.post("/coupons", &self.admin(), v).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["coupon_book_id"].as_str().unwrap().to_owned()
    }

    pub async fn upload(&self, book: &str, codes: &[&str]) {
        let r = self
            .post(
                "/coupons/codes",
                &self.admin(),
                json!({"coupon_book_id": book, "codes": codes}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }

    /// Claims any code of the book for the user; returns the code.
    pub async fn claim(&self, book: &str, user: &str) -> String {
        let r = self
            .post("/coupons/assign", &self.user(user), json!({"coupon_book_id": book}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["assigned_code"].as_str().unwrap().to_owned()
    }

    /// Every entry (under `key`) of a list, two at a time through `next_cursor`.
    pub async fn every_page(&self, path: &str, token: &str, key: &str) -> Vec<Value> {
        let (mut all, mut cursor) = (Vec::new(), None::<String>);
        let sep = if path.contains('?') { '&' } else { '?' };
        loop {
            let url = match &cursor {
                None => format!("{path}{sep}limit=2"),
                Some(c) => format!("{path}{sep}limit=2&cursor={c}"),
            };
            let r = self.get(&url, token).await;
            assert_eq!(r.status, StatusCode::OK, "{url}: {}", r.body);
            let page = r.body[key].as_array().unwrap();
            assert!(page.len() <= 2, "{url}");
            all.extend(page.iter().cloned());
            match r.body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return all,
            }
        }
    }

    pub async fn stats(&self, book: &str) -> Value {
        let r = self.get(&format!("/coupons/{book}"), &self.admin()).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body["stats"].clone()
    }
}

/// Generates one test per case and backend.
macro_rules! suite {
    ($($module:ident :: $case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$module::$case(super::App::spawn(coupon_store::testing::Backend::Sqlite).await).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$module::$case(super::App::spawn(coupon_store::testing::Backend::Postgres).await).await
                }
            )*
        }
    };
}

suite!(
    lifecycle::full_lifecycle_over_http,
    lifecycle::shared_codes_over_http,
    lifecycle::claim_ttl_follows_the_server_clock,
    lifecycle::concurrent_assigns_never_oversell,
    lifecycle::admin_manages_supply,
    auth::tokens_are_required_and_checked,
    auth::roles_limit_who_acts_for_whom,
    errors::every_claim_error_is_reachable,
    errors::every_code_error_is_reachable,
    errors::bad_input_is_a_400_and_writes_nothing,
    errors::errors_come_in_the_promised_order,
    surface::health_and_readiness,
    surface::openapi_and_docs_are_served,
    surface::search_over_http,
    operations::a_rollback_gives_the_use_back,
    operations::concurrent_rollbacks_count_once,
    operations::a_rollback_racing_redeems_keeps_counts_exact,
    operations::histories_page_newest_first,
    operations::the_catalog_lists_every_book,
    metadata::metadata_round_trips,
    metadata::bad_metadata_is_refused_and_writes_nothing,
    pool::the_listing_shows_each_code_as_it_is_now,
    pool::the_listing_pages_and_checks_its_input,
    pool::an_expired_books_codes_are_expired,
    pool::the_pool_exports_as_csv,
    pool::the_export_streams_a_large_book_in_pages,
    supply::import_reads_csv_and_plain_text,
    supply::a_bad_import_writes_nothing,
    supply::removing_codes_takes_only_never_held_ones,
    races::fifty_redemptions_of_one_code_win_once,
    races::fifty_claims_by_one_user_win_once,
);
