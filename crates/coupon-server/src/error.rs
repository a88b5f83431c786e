//! The one place where errors become HTTP responses: RFC 9457 problem details with a stable
//! machine `code`. Internal failures are logged here, once, and never described to the client.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use coupon_core::CouponError;
use coupon_store::StoreError;
use serde::Serialize;
use std::collections::BTreeMap;

use utoipa::openapi::{Content, Ref, RefOr, Response as ApiResponse, ResponseBuilder};
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Coupon(#[from] CouponError),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("the request body is larger than the server accepts")]
    PayloadTooLarge,
    #[error("the route does not take this method")]
    MethodNotAllowed,
    #[error("{0}")]
    UnsupportedMediaType(&'static str),
    /// A throttle refused the request: `rate_limited`, or `too_many_failed_lookups`.
    #[error("{detail}")]
    TooManyRequests {
        code: &'static str,
        detail: &'static str,
        retry_after: std::time::Duration,
    },
    #[error("internal error")]
    Internal(#[source] StoreError),
    /// A local file or task failed (an import's spool file, say): a 500 like `Internal`.
    #[error("internal error")]
    Io(#[source] std::io::Error),
    // Limits (`limits.rs`, and the database's acquire timeout): 408 and 503s with `Retry-After`.
    #[error("the request body did not arrive in time")]
    RequestTimeout,
    #[error("the server has too many requests in flight; retry shortly")]
    Overloaded,
    #[error("the server did not answer in time; the request may or may not have taken effect")]
    Timeout,
    #[error(
        "the database is busy or unreachable; retry shortly (a write retried with its Idempotency-Key is not repeated)"
    )]
    Unavailable(#[source] StoreError),
    /// The request's idempotency key was answered before: that answer, given again.
    #[error("answered before")]
    Replayed(coupon_store::Reply),
    #[error("this Idempotency-Key was first sent with another request")]
    KeyReused,
    #[error("a request with this Idempotency-Key is still running; retry shortly")]
    KeyInFlight,
}

/// Seconds a client should wait before retrying a 408 or 503: saturation passes quickly.
const RETRY_AFTER_SECONDS: &str = "1";

/// Why a request without credentials is refused: its 401 challenges without an error code. Kept
/// here, with the challenge that tells it apart, so that this mapping depends on no module that
/// produces errors.
pub(crate) const NO_TOKEN: &str = "an Authorization: Bearer token is required";

/// Whole seconds, rounded up: what `Retry-After` and `RateLimit-Reset` carry. Here because the
/// 429's `Retry-After` is written here; the throttle uses it for `RateLimit-Reset`.
pub(crate) fn seconds_up(d: std::time::Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl ApiError {
    /// The domain error inside, if this is one.
    pub fn as_coupon(&self) -> Option<&CouponError> {
        match self {
            ApiError::Coupon(e) => Some(e),
            _ => None,
        }
    }

    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        ApiError::Coupon(CouponError::invalid(field, message))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Rejected(e) => ApiError::Coupon(e),
            StoreError::Replayed(reply) => ApiError::Replayed(reply),
            StoreError::KeyReused => ApiError::KeyReused,
            StoreError::KeyInFlight => ApiError::KeyInFlight,
            e if e.is_unavailable() => ApiError::Unavailable(e),
            other => ApiError::Internal(other),
        }
    }
}

/// An `application/problem+json` body.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// `urn:coupond:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable machine code, e.g. `out_of_stock`.
    pub code: String,
}

/// The error answers every authenticated route may give, for the OpenAPI document. Routes list
/// their own 409 codes on top.
pub struct Problems;

impl utoipa::IntoResponses for Problems {
    fn responses() -> BTreeMap<String, RefOr<ApiResponse>> {
        [
            ("400", "invalid_request: the field at fault is named in `detail`"),
            ("401", "unauthorized: no token, or one that is invalid or expired"),
            ("403", "forbidden (role), or not_assigned_to_user"),
            ("404", "not_found"),
            ("409", "a rule of the book or the code refused the request"),
        ]
        .into_iter()
        .map(|(status, description)| {
            let response = ResponseBuilder::new()
                .description(description)
                .content(
                    "application/problem+json",
                    Content::new(Some(Ref::from_schema_name("Problem"))),
                )
                .build();
            (status.to_owned(), RefOr::T(response))
        })
        .collect()
    }
}

/// The HTTP status of each domain error. No wildcard arm: a new `CouponError` variant does not
/// compile until it is given a status here (its code comes from `CouponError::code`, exhaustive too).
pub fn status_of(e: &CouponError) -> StatusCode {
    match e {
        CouponError::Invalid(_) => StatusCode::BAD_REQUEST,
        CouponError::NotFound(_) => StatusCode::NOT_FOUND,
        CouponError::NotAssignedToUser => StatusCode::FORBIDDEN,
        CouponError::BookInactive
        | CouponError::NotStarted
        | CouponError::Expired
        | CouponError::UserLimitReached
        | CouponError::DailyLimitReached
        | CouponError::OutOfStock
        | CouponError::CodeTaken
        | CouponError::Locked
        | CouponError::NotLocked
        | CouponError::AlreadyRedeemed
        | CouponError::MinOrderNotMet
        | CouponError::OrderAmountRequired
        | CouponError::SharedBook
        | CouponError::TotalCodesExceeded { .. }
        | CouponError::WindowConflict => StatusCode::CONFLICT,
    }
}

impl ApiError {
    /// The status and stable machine code this error answers with.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Coupon(e) => (status_of(e), e.code()),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            ApiError::TooManyRequests { code, .. } => (StatusCode::TOO_MANY_REQUESTS, code),
            ApiError::Internal(_) | ApiError::Io(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
            ApiError::RequestTimeout => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            ApiError::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            ApiError::Timeout => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Replayed(reply) => (
                StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "replayed",
            ),
            ApiError::KeyReused => (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused"),
            ApiError::KeyInFlight => (StatusCode::CONFLICT, "idempotency_in_flight"),
        }
    }
}

/// A rule's refusal as the API answers it: what a keyed request's record keeps.
pub(crate) fn refusal(e: &CouponError) -> coupon_store::Reply {
    let status = status_of(e);
    let body = serde_json::to_string(&problem(status, e.code(), e.to_string())).unwrap_or_default();
    coupon_store::Reply {
        status: status.as_u16(),
        body,
    }
}

fn problem(status: StatusCode, code: &str, detail: String) -> Problem {
    Problem {
        kind: format!("urn:coupond:problem:{code}"),
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        status: status.as_u16(),
        detail,
        code: code.to_owned(),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Replayed(reply) = self {
            return crate::idempotency::replayed(reply);
        }
        let (status, code) = self.status_and_code();
        let detail = match &self {
            ApiError::Coupon(e) => e.to_string(),
            ApiError::Unauthorized(why) | ApiError::Forbidden(why) => why.to_string(),
            ApiError::UnsupportedMediaType(why) => why.to_string(),
            ApiError::PayloadTooLarge | ApiError::MethodNotAllowed | ApiError::TooManyRequests { .. } => {
                self.to_string()
            }
            ApiError::Internal(e) => {
                tracing::error!(error = %e, "request failed");
                "the server could not complete the request".into()
            }
            ApiError::Io(e) => {
                tracing::error!(error = %e, "request failed");
                "the server could not complete the request".into()
            }
            ApiError::RequestTimeout | ApiError::Overloaded | ApiError::Timeout => self.to_string(),
            ApiError::KeyReused | ApiError::KeyInFlight | ApiError::Replayed(_) => self.to_string(),
            // Saturation or an outage, not a fault of ours: a warning, and nothing of the database's
            // words to the client.
            ApiError::Unavailable(e) => {
                tracing::warn!(error = %e, "database unavailable");
                self.to_string()
            }
        };
        let problem = problem(status, code, detail);
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, [(header::CONTENT_TYPE, "application/problem+json")], body).into_response();
        if let ApiError::Unauthorized(why) = &self {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, challenge(why));
        }
        if let ApiError::TooManyRequests { retry_after, .. } = &self {
            let seconds = seconds_up(*retry_after).max(1);
            response.headers_mut().insert(header::RETRY_AFTER, seconds.into());
        }
        if matches!(status, StatusCode::REQUEST_TIMEOUT | StatusCode::SERVICE_UNAVAILABLE) {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                axum::http::HeaderValue::from_static(RETRY_AFTER_SECONDS),
            );
        }
        response
    }
}

/// The RFC 6750 challenge of a 401: the scheme and realm, and, when a token was sent but refused,
/// `invalid_token` with the reason (a fixed sentence of ours, never the token).
fn challenge(why: &str) -> axum::http::HeaderValue {
    let value = if why == NO_TOKEN {
        "Bearer realm=\"coupond\"".to_owned()
    } else {
        format!("Bearer realm=\"coupond\", error=\"invalid_token\", error_description=\"{why}\"")
    };
    axum::http::HeaderValue::from_str(&value).unwrap_or(axum::http::HeaderValue::from_static("Bearer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every domain error, each once. A new variant breaks the match below, which sends whoever
    /// adds it here to list it and give it a row in the tables.
    fn every_coupon_error() -> Vec<CouponError> {
        let all = vec![
            CouponError::invalid("field", "message"),
            CouponError::NotFound("book"),
            CouponError::NotAssignedToUser,
            CouponError::BookInactive,
            CouponError::NotStarted,
            CouponError::Expired,
            CouponError::UserLimitReached,
            CouponError::DailyLimitReached,
            CouponError::OutOfStock,
            CouponError::CodeTaken,
            CouponError::Locked,
            CouponError::NotLocked,
            CouponError::AlreadyRedeemed,
            CouponError::MinOrderNotMet,
            CouponError::OrderAmountRequired,
            CouponError::SharedBook,
            CouponError::TotalCodesExceeded {
                held: 1,
                total: 1,
                adding: 1,
            },
            CouponError::WindowConflict,
        ];
        for e in &all {
            match e {
                CouponError::Invalid(_)
                | CouponError::NotFound(_)
                | CouponError::NotAssignedToUser
                | CouponError::BookInactive
                | CouponError::NotStarted
                | CouponError::Expired
                | CouponError::UserLimitReached
                | CouponError::DailyLimitReached
                | CouponError::OutOfStock
                | CouponError::CodeTaken
                | CouponError::Locked
                | CouponError::NotLocked
                | CouponError::AlreadyRedeemed
                | CouponError::MinOrderNotMet
                | CouponError::OrderAmountRequired
                | CouponError::SharedBook
                | CouponError::TotalCodesExceeded { .. }
                | CouponError::WindowConflict => {}
            }
        }
        all
    }

    #[test]
    fn every_error_has_its_documented_status_and_code() {
        let expected = [
            (400, "invalid_request"),
            (404, "not_found"),
            (403, "not_assigned_to_user"),
            (409, "book_inactive"),
            (409, "not_started"),
            (409, "expired"),
            (409, "user_limit_reached"),
            (409, "daily_limit_reached"),
            (409, "out_of_stock"),
            (409, "code_taken"),
            (409, "locked"),
            (409, "not_locked"),
            (409, "already_redeemed"),
            (409, "min_order_not_met"),
            (409, "order_amount_required"),
            (409, "shared_book"),
            (409, "total_codes_exceeded"),
            (409, "window_conflict"),
        ];
        let domain: Vec<_> = every_coupon_error()
            .into_iter()
            .map(|e| ApiError::Coupon(e).status_and_code())
            .map(|(status, code)| (status.as_u16(), code))
            .collect();
        assert_eq!(domain, expected);

        let others = [
            (ApiError::Unauthorized("no token"), 401, "unauthorized"),
            (ApiError::Forbidden("role"), 403, "forbidden"),
            (ApiError::PayloadTooLarge, 413, "payload_too_large"),
            (ApiError::MethodNotAllowed, 405, "method_not_allowed"),
            (ApiError::Internal(StoreError::Conflict("test")), 500, "internal_error"),
            (ApiError::UnsupportedMediaType("csv"), 415, "unsupported_media_type"),
            (
                ApiError::TooManyRequests {
                    code: "rate_limited",
                    detail: "slow down",
                    retry_after: std::time::Duration::from_secs(1),
                },
                429,
                "rate_limited",
            ),
            (ApiError::Io(std::io::Error::other("disk full")), 500, "internal_error"),
            (ApiError::RequestTimeout, 408, "request_timeout"),
            (ApiError::Overloaded, 503, "overloaded"),
            (ApiError::Timeout, 503, "timeout"),
            (
                ApiError::Unavailable(StoreError::Unavailable("pool".into())),
                503,
                "unavailable",
            ),
            (ApiError::KeyReused, 422, "idempotency_key_reused"),
            (ApiError::KeyInFlight, 409, "idempotency_in_flight"),
        ];
        for (e, status, code) in others {
            assert_eq!(e.status_and_code(), (StatusCode::from_u16(status).unwrap(), code));
        }
    }

    /// README.md's error table lists each code in the row of its status.
    #[test]
    fn the_readme_error_table_is_true() {
        let readme = include_str!("../../../README.md");
        let row = |status: u16| {
            readme
                .lines()
                .find(|l| l.starts_with(&format!("| {status} |")))
                .unwrap_or_else(|| panic!("README.md has no row for {status}"))
        };
        let mut documented = 0;
        for e in every_coupon_error() {
            let (status, code) = ApiError::Coupon(e).status_and_code();
            assert!(
                row(status.as_u16()).contains(&format!("`{code}`")),
                "README.md lists {code} under {status}"
            );
            documented += 1;
        }
        for (status, code) in [
            (401, "unauthorized"),
            (403, "forbidden"),
            (405, "method_not_allowed"),
            (408, "request_timeout"),
            (413, "payload_too_large"),
            (415, "unsupported_media_type"),
            (429, "rate_limited"),
            (429, "too_many_failed_lookups"),
            (409, "idempotency_in_flight"),
            (422, "idempotency_key_reused"),
        ] {
            assert!(
                row(status).contains(&format!("`{code}`")),
                "README.md lists {code} under {status}"
            );
            documented += 1;
        }
        // Codes are the quoted words of the 4xx rows, outside the remarks in parentheses.
        for code in ["overloaded", "timeout", "unavailable"] {
            assert!(
                row(503).contains(&format!("`{code}`")),
                "README.md lists {code} under 503"
            );
        }
        let listed = readme
            .lines()
            .filter(|l| l.starts_with("| 4"))
            .map(|l| l.split('(').next().unwrap_or_default().matches('`').count() / 2)
            .sum::<usize>();
        assert_eq!(listed, documented, "README.md's table lists exactly these codes");
    }
}
