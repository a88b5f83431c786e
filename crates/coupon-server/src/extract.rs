//! Extractors whose rejections are problem+json 400s naming what was wrong, instead of axum's
//! plain-text defaults.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The request's body, within the route's size limit.
pub(crate) async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|e: BytesRejection| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::invalid("body", e.body_text())
        }
    })
}

/// A body's JSON object. An empty body (no bytes at all) reads as `{}`, so endpoints whose fields
/// are all optional take none, and a missing required field is reported by name. Every route with
/// a JSON body takes it with its idempotency key (`crate::idempotency::Idempotent`).
pub(crate) fn json_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes: &[u8] = if bytes.is_empty() { b"{}" } else { bytes };
    let mut value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| ApiError::invalid("body", e.to_string()))?;
    // Every body is an object; serde would also read a struct from an array of its fields.
    if !value.is_object() {
        return Err(ApiError::invalid("body", "must be a JSON object"));
    }
    integral(&mut value);
    T::deserialize(value).map_err(|e| ApiError::invalid("body", e.to_string()))
}

/// Whole numbers written with a fraction (`5.0`, `1e3`) become integers: JSON and JSON Schema
/// have one kind of number, and the document's `integer` is any number without a fractional part.
fn integral(value: &mut serde_json::Value) {
    use serde_json::Value;
    // Below 2^53 every whole f64 is exactly the integer it reads as.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    match value {
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|f| n.is_f64() && f.fract() == 0.0 && f.abs() < EXACT) {
                *n = serde_json::Number::from(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral),
        Value::Object(fields) => fields.values_mut().for_each(integral),
        Value::Null | Value::Bool(_) | Value::String(_) => {}
    }
}

/// Query parameters.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e| ApiError::invalid("query", e.body_text()))
    }
}

/// Path parameters.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|e| ApiError::invalid("path", e.body_text()))
    }
}
