//! What the server tells its operators: an id on every request (in its log span and on its
//! response), request counts and durations by route, and `/metrics` in Prometheus' text format.
//!
//! `observe` is the outermost layer, so a request shed for load or sent to no route still gets an
//! id, a span and a count. A router's layers run once the router has matched the path, so the
//! route's template is already in the request there.
//!
//! The recorder is installed once per process (`install_recorder`, by `coupond serve`); the store
//! records through the same `metrics` facade, and `/metrics` renders whatever was recorded.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use coupon_store::telemetry as store;
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use subtle::ConstantTimeEq;
use tracing::Instrument;
use uuid::Uuid;

use crate::error::ApiError;
use crate::AppState;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// The longest request id taken from a client; a longer one is replaced.
pub const MAX_REQUEST_ID: usize = 200;

pub const HTTP_REQUESTS: &str = "coupond_http_requests_total";
pub const HTTP_REQUEST_SECONDS: &str = "coupond_http_request_duration_seconds";

/// From half a millisecond (a sold-out claim answered from memory) to ten seconds (a request
/// stuck behind a saturated database, near its timeout).
const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// How often the recorder's histograms are folded, so that they do not grow between scrapes.
const UPKEEP: Duration = Duration::from_secs(5);

/// A request's id: the client's `X-Request-Id` if it is sane, else a new UUID v7. It is in the
/// request's extensions for any handler that wants it.
#[derive(Debug, Clone)]
pub struct RequestId(HeaderValue);

impl RequestId {
    fn of(req: &Request) -> RequestId {
        let sent = req.headers().get(&REQUEST_ID).filter(|id| is_sane(id.as_bytes()));
        RequestId(match sent {
            Some(id) => id.clone(),
            None => {
                let mut text = Uuid::encode_buffer();
                let text = Uuid::now_v7().hyphenated().encode_lower(&mut text);
                HeaderValue::from_str(text).expect("a UUID is a header value")
            }
        })
    }

    pub fn as_str(&self) -> &str {
        // Checked or generated as printable ASCII.
        self.0.to_str().unwrap_or_default()
    }
}

/// Printable ASCII of at most `MAX_REQUEST_ID` characters: safe to log and to echo.
fn is_sane(id: &[u8]) -> bool {
    !id.is_empty() && id.len() <= MAX_REQUEST_ID && id.iter().all(|b| (b' '..=b'~').contains(b))
}

/// The outermost layer: gives the request its id and span, answers with the id, counts and times
/// the answer by route, method and status (when `/metrics` is served). The time is until the
/// answer's head: a streamed export goes on after it.
pub(crate) async fn observe(State(series): State<Option<RequestSeries>>, mut req: Request, next: Next) -> Response {
    let id = RequestId::of(&req);
    let method = method_label(req.method());
    // The template, never the raw path, which holds codes.
    let route = req.extensions().get::<MatchedPath>().cloned();
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        request_id = id.as_str(),
        // Displayed, not debugged: log lines read `route=/coupons/assign`, unquoted.
        route = route.as_ref().map(|r| tracing::field::display(r.as_str()))
    );
    req.extensions_mut().insert(id.clone());
    let started = Instant::now();
    let mut response = next.run(req).instrument(span.clone()).await;
    let took = started.elapsed();
    let status = response.status();
    if let Some(series) = &series {
        let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
        series.record(route, method, status.as_u16(), took);
    }
    span.in_scope(|| tracing::debug!(status = status.as_u16(), micros = took.as_micros() as u64, "answered"));
    response.headers_mut().insert(REQUEST_ID, id.0);
    response
}

/// The request series' handles by route, method and status, each found in the recorder once
/// rather than per request: building a key from its labels and looking it up cost about as much
/// as answering a sold-out claim. Routes are the router's templates, so the map stays small.
#[derive(Clone, Default)]
pub(crate) struct RequestSeries(Arc<RwLock<HashMap<Box<str>, Vec<Series>>>>);

struct Series {
    method: &'static str,
    status: u16,
    requests: Counter,
    seconds: Histogram,
}

impl Series {
    fn record(&self, took: Duration) {
        self.requests.increment(1);
        self.seconds.record(took.as_secs_f64());
    }
}

fn find<'a>(known: &'a HashMap<Box<str>, Vec<Series>>, route: &str, method: &str, status: u16) -> Option<&'a Series> {
    known
        .get(route)?
        .iter()
        .find(|s| s.method == method && s.status == status)
}

impl RequestSeries {
    fn record(&self, route: &str, method: &'static str, status: u16, took: Duration) {
        if let Some(series) = find(&self.0.read().unwrap_or_else(|e| e.into_inner()), route, method, status) {
            return series.record(took);
        }
        // First of its kind: made under the write lock, unless another request made it meanwhile.
        let mut known = self.0.write().unwrap_or_else(|e| e.into_inner());
        if let Some(series) = find(&known, route, method, status) {
            return series.record(took);
        }
        let labels = [
            ("route", route.to_owned()),
            ("method", method.to_owned()),
            ("status", status.to_string()),
        ];
        let series = Series {
            method,
            status,
            requests: metrics::counter!(HTTP_REQUESTS, &labels),
            seconds: metrics::histogram!(HTTP_REQUEST_SECONDS, &labels),
        };
        series.record(took);
        known.entry(route.into()).or_default().push(series);
    }
}

/// A method as a label: the standard ones by name, any other as `other`, so that invented methods
/// add no series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// How `/metrics` is served: the recorder's handle, and the bearer token a scraper must send.
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
    token: Option<Arc<str>>,
    apart: bool,
    series: RequestSeries,
}

impl Metrics {
    /// Open to anyone, on the API's port.
    pub fn new(handle: PrometheusHandle) -> Self {
        Metrics {
            handle,
            token: None,
            apart: false,
            series: RequestSeries::default(),
        }
    }

    /// Scrapers must send `Authorization: Bearer <token>`.
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token.map(Arc::from);
        self
    }

    /// Served on a listener of its own (`serve_metrics`), not on the API's port.
    pub fn apart(mut self) -> Self {
        self.apart = true;
        self
    }

    /// The handles `observe` counts requests with.
    pub(crate) fn series(&self) -> RequestSeries {
        self.series.clone()
    }

    /// Whether the API's router serves `/metrics`.
    pub(crate) fn on_api_port(&self) -> bool {
        !self.apart
    }

    /// The bearer token, compared in constant time; the refusal never says what was expected.
    fn authorize(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(expected) = &self.token else {
            return Ok(());
        };
        let sent = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(ApiError::Unauthorized(crate::error::NO_TOKEN))?;
        if bool::from(sent.trim().as_bytes().ct_eq(expected.as_bytes())) {
            Ok(())
        } else {
            Err(ApiError::Unauthorized("the metrics token is not the one configured"))
        }
    }

    /// Folds the histograms now and then under the service's background owner.
    pub(crate) fn start(&self, background: &coupon_store::Background) {
        let (handle, stopping) = (self.handle.clone(), background.stopping());
        background.spawn_on(&tokio::runtime::Handle::current(), async move {
            tokio::pin!(stopping);
            loop {
                tokio::select! {
                    () = &mut stopping => return,
                    () = tokio::time::sleep(UPKEEP) => handle.run_upkeep(),
                }
            }
        });
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("apart", &self.apart)
            .finish()
    }
}

/// `GET /metrics`: every series in Prometheus' text format, with the connection and outbox gauges
/// sampled now. Not throttled, not shed, and not in the OpenAPI document (it is not JSON).
pub(crate) async fn scrape(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(metrics) = &state.metrics else {
        return crate::routes::not_found().await.into_response();
    };
    if let Err(refused) = metrics.authorize(&headers) {
        return refused.into_response();
    }
    state.coupons.record_connections();
    state.coupons.record_backlog(state.clock.now()).await;
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        metrics.handle.render(),
    )
        .into_response()
}

/// Installs the process's one Prometheus recorder, with explicit histogram buckets and every
/// series' help text, and returns its handle. A second call fails: there is one global recorder.
pub fn install_recorder() -> Result<PrometheusHandle, BuildError> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(HTTP_REQUEST_SECONDS.into()), SECONDS_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(store::BATCH_COMMIT_SECONDS.into()), SECONDS_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(store::BATCH_SIZE.into()), store::BATCH_SIZE_BUCKETS)?
        .install_recorder()?;
    metrics::describe_counter!(HTTP_REQUESTS, "HTTP requests answered, by route, method and status.");
    metrics::describe_histogram!(
        HTTP_REQUEST_SECONDS,
        metrics::Unit::Seconds,
        "Time until an HTTP answer's head, by route, method and status."
    );
    store::describe();
    Ok(handle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_printable_ascii_of_bounded_length() {
        assert!(is_sane(b"req-123 from the gateway"));
        assert!(is_sane("a".repeat(MAX_REQUEST_ID).as_bytes()));
        assert!(!is_sane("a".repeat(MAX_REQUEST_ID + 1).as_bytes()));
        assert!(!is_sane(b""));
        assert!(!is_sane(b"tab\there"));
        assert!(!is_sane("caf\u{e9}".as_bytes()));
    }

    #[test]
    fn invented_methods_share_one_label() {
        assert_eq!(method_label(&Method::POST), "POST");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
    }
}
