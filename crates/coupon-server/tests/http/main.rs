//! HTTP tests against the real server on 127.0.0.1:0, each case run on both backends, with the
//! server's clock under the test's control.

mod auth;
mod errors;
mod events;
mod idempotency;
mod idp;
mod lifecycle;
mod limits;
mod matrix;
mod metadata;
mod operations;
mod pool;
mod races;
mod supply;
mod surface;
mod telemetry;
mod throttle;
mod webhooks;

use std::sync::{Arc, OnceLock};

use coupon_core::{ManualClock, Timestamp};
use coupon_server::{AppState, Claims, JwtSecret, Limits, Metrics, Role, Services, Throttle, Tokens};
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

/// `/metrics` open on the API's port, from the test process's one recorder: every server of the
/// process records into it, so a test asserts that counters rose by at least its own requests.
pub fn open_metrics() -> Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS
        .get_or_init(|| Metrics::new(coupon_server::telemetry::install_recorder().expect("the one recorder")))
        .clone()
}

impl App {
    pub async fn spawn(backend: Backend) -> App {
        App::start(
            backend,
            None,
            Throttle::default(),
            Limits::default(),
            PoolConfig::sized(16),
        )
        .await
    }

    /// The server with `/metrics` served as `metrics` says.
    pub async fn spawn_with_metrics(backend: Backend, metrics: Metrics) -> App {
        App::serving(
            backend,
            None,
            Throttle::default(),
            Limits::default(),
            PoolConfig::sized(16),
            metrics,
        )
        .await
    }

    /// The server with these limits, on a store whose pools have that shape.
    pub async fn spawn_with(backend: Backend, limits: Limits, pool: PoolConfig) -> App {
        App::start(backend, None, Throttle::default(), limits, pool).await
    }

    /// The server with a throttle of the test's own.
    pub async fn spawn_throttled(backend: Backend, throttle: Throttle) -> App {
        App::start(backend, None, throttle, Limits::default(), PoolConfig::sized(16)).await
    }

    /// The server verifying tokens with `tokens`: HS256 with the test secret when `None`.
    pub async fn spawn_with_tokens(backend: Backend, tokens: Option<Tokens>) -> App {
        App::start(
            backend,
            tokens,
            Throttle::default(),
            Limits::default(),
            PoolConfig::sized(16),
        )
        .await
    }

    async fn start(
        backend: Backend,
        tokens: Option<Tokens>,
        throttle: Throttle,
        limits: Limits,
        pool: PoolConfig,
    ) -> App {
        App::serving(backend, tokens, throttle, limits, pool, open_metrics()).await
    }

    async fn serving(
        backend: Backend,
        tokens: Option<Tokens>,
        throttle: Throttle,
        limits: Limits,
        pool: PoolConfig,
        metrics: Metrics,
    ) -> App {
        let db = TestDb::new(backend).await;
        let clock = Arc::new(ManualClock::new(Timestamp::from_millis(T0)));
        let secret = JwtSecret::new("a test secret that is long enough to sign with");
        // The server as `coupond serve` runs it: the claim engine in front of the backend.
        let background = coupon_store::Background::new();
        let store = db.store_with(pool).await;
        let state = AppState::from(Services {
            coupons: coupon_store::Coupons::batched(store.clone(), store, &background).expect("engine starts"),
            clock: clock.clone(),
            tokens: tokens.unwrap_or_else(|| Tokens::hs256(secret.clone())),
            throttle,
            background,
            limits,
            metrics: Some(metrics),
            webhook_urls: Default::default(),
        });
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

    /// Every row of the database as sorted text: equal snapshots mean nothing was written.
    pub async fn snapshot(&self) -> Vec<String> {
        self.db.snapshot().await
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

/// The server a case runs against: `App::spawn`'s, or the one its `with` function starts.
macro_rules! server {
    ($backend:expr) => {
        super::App::spawn($backend).await
    };
    ($backend:expr, $module:ident :: $server:ident) => {
        super::$module::$server($backend).await
    };
}

/// Generates one test per case and backend; `module::case with server` runs the case against the
/// server `module::server(backend)` starts.
macro_rules! suite {
    ($($module:ident :: $case:ident $(with $server:ident)?),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let app = server!(coupon_store::testing::Backend::Sqlite $(, $module::$server)?);
                    super::$module::$case(app).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let app = server!(coupon_store::testing::Backend::Postgres $(, $module::$server)?);
                    super::$module::$case(app).await
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
    idp::rs256_tokens_from_a_key_set_are_accepted with rs256_key_set,
    idp::es256_tokens_from_a_pem_key_are_accepted with es256_pem,
    idp::refused_tokens_are_challenged with rs256_key_set,
    idp::leeway_forgives_small_clock_skew with rs256_key_set,
    idp::roles_come_from_a_roles_array with rs256_key_set,
    idp::roles_come_from_a_scope_string with es256_pem,
    errors::every_claim_error_is_reachable,
    errors::every_code_error_is_reachable,
    errors::bad_input_is_a_400_and_writes_nothing,
    errors::errors_come_in_the_promised_order,
    surface::health_and_readiness,
    surface::openapi_and_docs_are_served,
    surface::search_over_http,
    telemetry::requests_and_outcomes_are_counted,
    telemetry::request_ids_are_echoed_generated_or_replaced,
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
    events::events_show_what_the_answers_showed,
    events::bad_feed_parameters_are_400s,
    webhooks::endpoints_are_registered_listed_and_deleted,
    webhooks::bad_endpoints_are_400s_and_write_nothing,
    idempotency::a_retried_request_acts_once,
    idempotency::a_refusal_is_answered_again,
    idempotency::bad_keys_are_400s_and_write_nothing,
    idempotency::concurrent_retries_act_once,
    idempotency::a_retried_import_is_answered,
    idempotency::stored_state_refusals_are_409s,
);

/// Generates one test per case and backend, for cases that start their own servers.
macro_rules! suite_by_backend {
    ($($module:ident :: $case:ident),* $(,)?) => {
        mod by_backend_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$module::$case(coupon_store::testing::Backend::Sqlite).await
                }
            )*
        }
        mod by_backend_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$module::$case(coupon_store::testing::Backend::Postgres).await
                }
            )*
        }
    };
}

suite_by_backend!(
    limits::bodies_over_their_cap_are_413_and_write_nothing,
    limits::requests_past_the_limit_are_shed_at_once,
    limits::a_body_that_does_not_arrive_is_a_408,
    limits::an_answer_that_does_not_come_is_a_503,
    limits::slow_headers_close_the_connection,
    matrix::authorization_matrix_of_every_route_and_role,
    matrix::matrix_bodies_cannot_set_what_the_server_owns,
    races::fifty_redemptions_of_one_code_win_once,
    races::fifty_claims_by_one_user_win_once,
    telemetry::a_metrics_token_guards_the_scrape,
    throttle::requests_beyond_the_bucket_are_refused_with_429,
    throttle::guessing_codes_is_stopped_without_slowing_others,
    throttle::failed_lookups_count_per_ip_and_for_whom_a_service_acts,
    throttle::instances_share_buckets_through_redis,
    throttle::a_redis_outage_falls_back_to_memory_limits,
);

/// Cases of PostgreSQL alone: what a database server does that a file does not.
mod postgres_only {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_database_outage_is_a_503_until_it_passes() {
        let app = super::App::spawn(coupon_store::testing::Backend::Postgres).await;
        super::idempotency::a_database_outage_is_a_503_until_it_passes(app).await
    }
}
