//! Resource limits: how large a body may be, how long a request may take, and how many may be in
//! flight. Past a limit the server answers at once (413, 408, 503 with `Retry-After`) instead of
//! queueing work it cannot finish, so a flood slows nobody already being served.
//!
//! Two middlewares, both here: `shed` (outside the router, inside only `telemetry::observe`) refuses a request when
//! `max_concurrent_requests` are in flight, and `deadline` (around each matched route) answers a
//! request that outlives its timeout. Health probes and `/metrics` are never shed: an orchestrator
//! must still see a busy instance as alive and ready, and a busy one is when its metrics matter.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// The import route, whose body may take minutes to arrive.
const IMPORT_ROUTE: &str = "/coupons/{book_id}/codes/import";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Every JSON body but the two that carry lists of codes. Room for the largest valid book (a
    /// 5,000-character description, 32 tags and 50 metadata entries at their caps are ~140 KB
    /// of 4-byte characters), and little more.
    pub body_bytes: usize,
    /// `POST /coupons/codes` and `POST /coupons/{book_id}/codes/remove`: 100,000 codes of up to 64
    /// characters. (The streamed import has its own, `routes::pool::MAX_IMPORT_BYTES`.)
    pub codes_body_bytes: usize,
    /// How long a request may take until its answer starts. Streamed CSV exports are not bounded
    /// once their first bytes are out: the answer has started.
    pub request_timeout: Duration,
    /// The import's own timeout: 256 MiB over a slow link takes longer than any other request.
    pub import_timeout: Duration,
    /// How long a client may take to send a request's headers; an idle keep-alive connection is
    /// closed after as long (slowloris).
    pub header_read_timeout: Duration,
    /// Requests in flight at most; the next is answered 503 `overloaded` at once.
    pub max_concurrent_requests: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            body_bytes: 256 * 1024,
            codes_body_bytes: 16 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            import_timeout: Duration::from_secs(600),
            header_read_timeout: Duration::from_secs(30),
            // A flash sale's burst fits; past it, a quick 503 beats an unbounded queue.
            max_concurrent_requests: 4096,
        }
    }
}

/// The permits of `shed`, shared by every clone of the router.
#[derive(Clone)]
pub(crate) struct InFlight(Arc<Semaphore>);

impl InFlight {
    pub(crate) fn new(limits: &Limits) -> Self {
        InFlight(Arc::new(Semaphore::new(limits.max_concurrent_requests.max(1))))
    }
}

/// Refuses the request with 503 `overloaded` when the server is already at its limit. A permit is
/// held until the response is handed back (a streamed body then goes on without one).
pub(crate) async fn shed(State(in_flight): State<InFlight>, req: Request, next: Next) -> Response {
    if matches!(req.uri().path(), "/healthz" | "/readyz" | "/metrics") {
        return next.run(req).await;
    }
    match in_flight.0.clone().try_acquire_owned() {
        Ok(_permit) => next.run(req).await,
        Err(_) => ApiError::Overloaded.into_response(),
    }
}

/// Answers a request that outlives its timeout: 408 `request_timeout` while its body was still
/// arriving (the client is slow), 503 `timeout` once it had all of it (the server is). The work
/// the request started may still finish: a claim or redeem already in a batch commits.
pub(crate) async fn deadline(State(limits): State<Arc<Limits>>, req: Request, next: Next) -> Response {
    let import = req
        .extensions()
        .get::<MatchedPath>()
        .is_some_and(|p| p.as_str() == IMPORT_ROUTE);
    let timeout = if import {
        limits.import_timeout
    } else {
        limits.request_timeout
    };
    let received = Arc::new(AtomicBool::new(false));
    let req = req.map(|body| {
        let watched = Watched {
            done: received.clone(),
            inner: body,
        };
        watched.note_end();
        Body::new(watched)
    });
    match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) if received.load(Ordering::Acquire) => ApiError::Timeout.into_response(),
        Err(_) => ApiError::RequestTimeout.into_response(),
    }
}

/// A request body that records when it has been read to its end.
struct Watched {
    inner: Body,
    done: Arc<AtomicBool>,
}

impl Watched {
    fn note_end(&self) {
        if self.inner.is_end_stream() {
            self.done.store(true, Ordering::Release);
        }
    }
}

impl HttpBody for Watched {
    type Data = <Body as HttpBody>::Data;
    type Error = <Body as HttpBody>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let frame = Pin::new(&mut self.inner).poll_frame(cx);
        match &frame {
            Poll::Ready(None) => self.done.store(true, Ordering::Release),
            Poll::Ready(Some(Ok(_))) => self.note_end(),
            _ => {}
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The largest book the rules accept, in 4-byte characters, fits the JSON cap: no valid body
    /// is refused for its size.
    #[test]
    fn the_largest_valid_book_fits_the_body_cap() {
        let wide = |n: usize| "😀".repeat(n);
        let metadata: serde_json::Map<_, _> = (0..coupon_core::metadata::MAX_KEYS)
            .map(|i| {
                let key = format!("{i:02}{}", wide(coupon_core::metadata::MAX_KEY - 2));
                (key, json!(wide(coupon_core::metadata::MAX_VALUE)))
            })
            .collect();
        let book = json!({
            "name": wide(200), "description": wide(5000), "category": wide(100),
            "tags": (0..32).map(|_| wide(50)).collect::<Vec<_>>(),
            "discount": {"type": "percentage", "value": 10, "currency": "EUR"},
            "code_mode": "shared", "code": "A".repeat(coupon_core::code::MAX_CODE_LEN), "total_codes": 10,
            "metadata": metadata,
        });
        let new: crate::wire::NewBook = serde_json::from_value(book.clone()).expect("a valid body");
        coupon_core::NewBook::from(new)
            .into_draft(uuid::Uuid::nil(), coupon_core::Timestamp::from_millis(0))
            .expect("a valid book");
        let bytes = serde_json::to_vec(&book).unwrap().len();
        assert!(bytes < Limits::default().body_bytes, "{bytes} bytes");
    }

    /// 100,000 codes of 64 characters fit the upload cap.
    #[test]
    fn the_largest_upload_fits_its_cap() {
        let codes: Vec<String> = (0..100_000).map(|i| format!("{i:064}")).collect();
        let body = json!({"coupon_book_id": uuid::Uuid::nil(), "codes": codes});
        let bytes = serde_json::to_vec(&body).unwrap().len();
        assert!(bytes < Limits::default().codes_body_bytes, "{bytes} bytes");
    }
}
