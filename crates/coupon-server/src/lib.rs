//! coupond's HTTP API. Handlers are thin: extract and check input, authorize, call the per-request
//! service (`coupon_store::Coupons`) with the clock's `now`, and map the answer; every error
//! becomes problem+json in `error.rs`.

pub mod auth;
mod docs;
pub mod error;
mod extract;
pub mod idempotency;
pub mod limits;
mod routes;
pub mod telemetry;
pub mod throttle;
pub mod wire;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use axum::middleware;
use axum::routing::{get, post};
use axum::Router;
use coupon_core::Clock;
use coupon_store::{Background, Coupons};
use tokio::net::TcpListener;

pub use auth::{Claims, JwtSecret, KeyError, Role, RoleNames, TokenAlgorithm, TokenKeys, TokenRules, Tokens};
pub use docs::ApiDoc;
pub use limits::Limits;
pub use telemetry::Metrics;
pub use throttle::{Throttle, ThrottleConfig};

/// What every request may use. axum clones it for each extractor and layer that takes it, so it is
/// one reference count, whatever it holds.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

struct Shared {
    services: Services,
    /// `/openapi.json` as this server serves it, rendered on first request.
    openapi: std::sync::OnceLock<axum::body::Bytes>,
}

pub struct Services {
    pub coupons: Coupons,
    pub clock: Arc<dyn Clock>,
    /// How bearer tokens are verified.
    pub tokens: Tokens,
    /// Request buckets and failed-look-up budgets.
    pub throttle: Throttle,
    /// The owner of every background task; `serve` shuts it down last.
    pub background: Background,
    pub limits: Limits,
    /// How `/metrics` is served; not at all without a recorder.
    pub metrics: Option<Metrics>,
    /// Which webhook URLs are registered: the literal addresses the relay may send to.
    pub webhook_urls: wire::WebhookUrls,
}

impl From<Services> for AppState {
    fn from(services: Services) -> Self {
        AppState(Arc::new(Shared {
            services,
            openapi: std::sync::OnceLock::new(),
        }))
    }
}

impl AppState {
    /// The OpenAPI document with this server's webhook URL pattern, rendered once.
    pub(crate) fn openapi(&self) -> axum::body::Bytes {
        let doc = self
            .0
            .openapi
            .get_or_init(|| docs::served(&self.webhook_urls).to_string().into());
        doc.clone()
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0.services
    }
}

pub fn router(state: AppState) -> Router {
    use routes::{books, catalog, claims, events, health, lock, redeem, redemptions, rollback, users, webhooks};
    let limits = Arc::new(state.limits.clone());
    let codes_body = DefaultBodyLimit::max(limits.codes_body_bytes);
    let routes = Router::new()
        .route("/coupons", post(books::create).get(catalog::list))
        .route("/coupons/search", get(books::search))
        .route("/coupons/codes", post(books::upload).layer(codes_body))
        .route("/coupons/{book_id}", get(books::show).patch(books::update))
        .route("/coupons/{book_id}/codes/generate", post(books::generate))
        .route("/coupons/{book_id}/redemptions", get(redemptions::of_book))
        .route(
            "/coupons/redemptions/{redemption_id}/rollback",
            post(rollback::rollback),
        )
        .route("/coupons/{book_id}/codes", get(routes::pool::list))
        .route(
            "/coupons/{book_id}/codes/import",
            post(routes::pool::import).layer(DefaultBodyLimit::max(routes::pool::MAX_IMPORT_BYTES)),
        )
        .route(
            "/coupons/{book_id}/codes/remove",
            post(routes::pool::remove).layer(codes_body),
        )
        .route("/coupons/assign", post(claims::assign))
        .route("/coupons/assign/{code}", post(claims::assign_code))
        .route("/coupons/lock/{code}", post(lock::lock))
        .route("/coupons/unlock/{code}", post(lock::unlock))
        .route("/coupons/redeem/{code}", post(redeem::redeem))
        .route("/coupons/validate/{code}", get(redeem::validate))
        .route("/users/{user_id}/coupons", get(users::coupons))
        .route("/users/{user_id}/redemptions", get(redemptions::of_user))
        .route("/events", get(events::list))
        .route("/webhooks", post(webhooks::create).get(webhooks::list))
        .route("/webhooks/{webhook_id}", get(webhooks::show).delete(webhooks::delete))
        .route("/webhooks/{webhook_id}/deliveries", get(webhooks::deliveries))
        .route(
            "/webhooks/{webhook_id}/deliveries/{delivery_id}/retry",
            post(webhooks::retry),
        )
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .route("/openapi.json", get(docs::openapi))
        .route("/docs", get(docs::ui))
        .route("/docs/{file}", get(docs::asset));
    let routes = match &state.metrics {
        Some(metrics) if metrics.on_api_port() => routes.route("/metrics", get(telemetry::scrape)),
        _ => routes,
    };
    routes
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            throttle::throttle_request,
        ))
        .route_layer(middleware::from_fn_with_state(limits.clone(), limits::deadline))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(limits.body_bytes))
        .layer(middleware::from_fn_with_state(
            limits::InFlight::new(&limits),
            limits::shed,
        ))
        .layer(middleware::from_fn_with_state(
            request_series(&state),
            telemetry::observe,
        ))
        .with_state(state)
}

/// What `observe` counts requests into: nothing unless `/metrics` is served.
fn request_series(state: &AppState) -> Option<telemetry::RequestSeries> {
    state.metrics.as_ref().map(Metrics::series)
}

/// `/metrics` alone, for a listener of its own: no throttle, no load shedding, no other route.
fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(telemetry::scrape))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(middleware::from_fn_with_state(
            request_series(&state),
            telemetry::observe,
        ))
        .with_state(state)
}

/// Serves HTTP/1.1 until `shutdown` completes, then lets requests in flight finish (their batches
/// still run, so every client is answered), and then stops the background work and waits for it.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let background = state.background.clone();
    state.throttle.start(&background);
    if let Some(metrics) = &state.metrics {
        metrics.start(&background);
    }
    let header_read_timeout = state.limits.header_read_timeout;
    accept(listener, router(state), header_read_timeout, shutdown).await;
    background.shutdown().await;
    Ok(())
}

/// Serves `/metrics` alone on `listener` (`--metrics-listen`), as a task of the background owner:
/// it stops when `serve` stops the background work.
pub fn serve_metrics(listener: TcpListener, state: AppState) {
    let (background, header_read_timeout) = (state.background.clone(), state.limits.header_read_timeout);
    let app = metrics_router(state);
    background.spawn_on(
        &tokio::runtime::Handle::current(),
        accept(listener, app, header_read_timeout, background.stopping()),
    );
}

/// The accept loop: each connection is hyper's HTTP/1 connection with `app` as its service, until
/// `shutdown` completes; then the connections' requests in flight are finished.
///
/// A plain accept loop over hyper's HTTP/1 connection rather than `axum::serve`: an idle keep-alive
/// connection then holds only its HTTP/1 state and buffers, which matters with tens of thousands
/// of them open during a flash sale.
async fn accept(
    listener: TcpListener,
    app: Router,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    // hyper times header reads only with a timer; without one a slowloris client holds its
    // connection for ever.
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, most likely: let connections close, then go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        // The peer address rides on each request, for throttling by client IP.
        let service = tower::util::MapRequest::new(app.clone(), move |mut req: Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(throttle::PeerAddr(peer));
            req
        });
        let service = hyper_util::service::TowerToHyperService::new(service);
        let conn = graceful.watch(http.serve_connection(hyper_util::rt::TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
