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
