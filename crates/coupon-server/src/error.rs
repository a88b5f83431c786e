//! The one place where errors become HTTP responses: RFC 9457 problem details with a stable
//! machine `code`. Internal failures are logged here, once, and never described to the client.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use coupon_core::CouponError;
use coupon_store::StoreError;
use serde::Serialize;
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
    #[error("internal error")]
    Internal(#[source] StoreError),
}

impl ApiError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        ApiError::Coupon(CouponError::invalid(field, message))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Rejected(e) => ApiError::Coupon(e),
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

pub fn status_of(e: &CouponError) -> StatusCode {
    match e {
        CouponError::Invalid(_) => StatusCode::BAD_REQUEST,
        CouponError::NotFound(_) => StatusCode::NOT_FOUND,
        CouponError::NotAssignedToUser => StatusCode::FORBIDDEN,
        _ => StatusCode::CONFLICT,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, detail) = match &self {
            ApiError::Coupon(e) => (status_of(e), e.code(), e.to_string()),
            ApiError::Unauthorized(why) => (StatusCode::UNAUTHORIZED, "unauthorized", why.to_string()),
            ApiError::Forbidden(why) => (StatusCode::FORBIDDEN, "forbidden", why.to_string()),
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", self.to_string()),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", self.to_string()),
            ApiError::Internal(e) => {
                tracing::error!(error = %e, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "the server could not complete the request".into(),
                )
            }
        };
        let problem = Problem {
            kind: format!("urn:coupond:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            code: code.to_owned(),
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        (status, [(header::CONTENT_TYPE, "application/problem+json")], body).into_response()
    }
}
