//! `Idempotency-Key`: a state-changing request sent with one acts at most once, and a retry gets
//! the first answer again with `Idempotent-Replayed: true` (the IETF header draft, as Stripe
//! practises it). The key belongs to the caller (the token's subject); the request it was first
//! sent with is remembered as a digest of its method, path, query and body, and the same key with
//! another request answers 422 `idempotency_key_reused`. A retry while the first still runs on
//! this instance answers 409 `idempotency_in_flight`.
//!
//! The store writes the first answer with the request's effect (`coupon_store::idempotency`); this
//! module reads the key off the request and gives the store the function that renders the answer,
//! the same one the handler answers with. Answers given before the store is asked (a malformed
//! request, a refused token, a throttle) are not recorded: nothing happened, and a retry runs
//! afresh. A keyed claim skips the claim engine's sold-out memory, so it is always the database's.

use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use coupon_core::CouponError;
use coupon_store::{Key, Keyed, Reply};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::auth::{authenticate, Caller};
use crate::error::{refusal, ApiError};
use crate::extract::{json_body, read_body};
use crate::AppState;

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
pub const REPLAYED: &str = "idempotent-replayed";
/// The longest key taken, as Stripe takes them.
const MAX_KEY: usize = 255;

/// A JSON body (as [`crate::extract::json_body`] reads it) and the request's idempotency key, if
/// it sent one. Taken last, after the caller.
pub struct Idempotent<T>(pub T, pub Option<RequestKey>);

/// The key a request came with, scoped to its caller, with the digest of what it asked.
#[derive(Debug, Clone)]
pub struct RequestKey(Key);

impl<T: DeserializeOwned> FromRequest<AppState> for Idempotent<T> {
    type Rejection = ApiError;

    /// A malformed body is answered before a malformed key, as it would be without one.
    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let sent = SentKey::of(&req, state);
        let bytes = read_body(req, state).await?;
        let body = json_body(&bytes)?;
        let key = sent
            .map(|mut sent| {
                sent.update(&bytes);
                sent.finish()
            })
            .transpose()?;
        Ok(Idempotent(body, key))
    }
}

/// A key a request sent, waiting for the digest of its body: read off the request's head before
/// the body is taken, so nothing of the request is copied, and a request without a key pays for
/// nothing.
pub(crate) struct SentKey {
    /// Whose key and the key, or why it is refused (answered once the body was read).
    key: Result<(String, String), ApiError>,
    digest: Fingerprint,
    at: coupon_core::Timestamp,
}

impl SentKey {
    pub(crate) fn of(req: &Request, state: &AppState) -> Option<SentKey> {
        let value = req.headers().get(IDEMPOTENCY_KEY)?;
        let key = parse_key(value).and_then(|key| {
            let caller = match req.extensions().get::<Caller>() {
                Some(caller) => caller.clone(),
                None => authenticate(req.headers(), state)?,
            };
            Ok((caller.sub.as_str().to_owned(), key))
        });
        let target = req.uri().path_and_query().map_or("", |p| p.as_str());
        Some(SentKey {
            key,
            digest: Fingerprint::new(req.method().as_str(), target),
            at: state.clock.now(),
        })
    }

    /// Feeds body bytes to the digest, as they come.
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.digest.update(bytes);
    }

    pub(crate) fn finish(self) -> Result<RequestKey, ApiError> {
        let (scope, key) = self.key?;
        Ok(RequestKey(Key {
            scope,
            key,
            fingerprint: self.digest.finish(),
            at: self.at,
        }))
    }
}

/// The key as sent: a token (Stripe's form) or a structured-field string (the draft's, quoted).
fn parse_key(value: &HeaderValue) -> Result<String, ApiError> {
    let invalid = |why: &str| ApiError::invalid("Idempotency-Key", why.to_owned());
    let text = value.to_str().map_err(|_| invalid("must be printable ASCII"))?;
    let text = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(text);
    if text.is_empty() || text.len() > MAX_KEY {
        return Err(invalid("must be 1 to 255 characters"));
    }
    if !text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(invalid("must be printable ASCII"));
    }
    Ok(text.to_owned())
}

/// A digest of what the request asked: method, path and query, and the body's bytes (fed as they
/// come, for a body streamed to disk).
struct Fingerprint(Sha256);

impl Fingerprint {
    fn new(method: &str, target: &str) -> Self {
        let mut digest = Sha256::new();
        for part in [method.as_bytes(), b"\n", target.as_bytes(), b"\n"] {
            digest.update(part);
        }
        Fingerprint(digest)
    }

    fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(self) -> String {
        self.0.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl RequestKey {
    pub fn key(&self) -> &Key {
        &self.0
    }

    /// The key for the store, with how the request answers: `status` and `form`'s JSON when it
    /// succeeds, the problem when a rule refuses it. The handler answers a success with the same
    /// `status` and `form`, so a retry gets the bytes the first request got.
    pub fn answering<T: 'static, W: Serialize>(
        self,
        status: StatusCode,
        form: impl Fn(&T) -> W + Send + Sync + 'static,
    ) -> Keyed<T> {
        Keyed::new(self.0, move |outcome: Result<&T, &CouponError>| match outcome {
            Ok(value) => Reply {
                status: status.as_u16(),
                body: serde_json::to_string(&form(value)).unwrap_or_default(),
            },
            Err(e) => refusal(e),
        })
    }
}

/// The header, as the document states it for every route that takes it.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct KeyHeader {
    /// New for each request and the same for its retries, so that a retry is answered from the
    /// first request's record rather than acting again (kept `--idempotency-retention`, 24 hours
    /// by default). Printable ASCII, bare or as a quoted string.
    #[param(
        rename = "Idempotency-Key",
        required = false,
        min_length = 1,
        max_length = 255,
        pattern = "^[ -~]{1,255}$"
    )]
    pub idempotency_key: String,
}

/// The answers a keyed request may get on top of its route's own: the key sent with another
/// request (422), or still running (409, listed with the route's other conflicts).
pub struct KeyProblems;

impl utoipa::IntoResponses for KeyProblems {
    fn responses() -> std::collections::BTreeMap<String, utoipa::openapi::RefOr<utoipa::openapi::Response>> {
        use utoipa::openapi::{Content, Ref, ResponseBuilder};
        let response = ResponseBuilder::new()
            .description("idempotency_key_reused: the Idempotency-Key was first sent with another request")
            .content(
                "application/problem+json",
                Content::new(Some(Ref::from_schema_name("Problem"))),
            )
            .build();
        [("422".to_owned(), utoipa::openapi::RefOr::T(response))].into()
    }
}

/// A recorded answer, given again.
pub fn replayed(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let content_type = if status.is_success() {
        "application/json"
    } else {
        "application/problem+json"
    };
    let mut response = (status, [(header::CONTENT_TYPE, content_type)], reply.body).into_response();
    response
        .headers_mut()
        .insert(REPLAYED, HeaderValue::from_static("true"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_tokens_or_quoted_strings_of_printable_ascii() {
        let parse = |s: &str| parse_key(&HeaderValue::from_str(s).unwrap()).ok();
        assert_eq!(parse("abc-123").as_deref(), Some("abc-123"));
        assert_eq!(parse("\"8e03978e-40d5\"").as_deref(), Some("8e03978e-40d5"));
        assert_eq!(parse(&"k".repeat(255)).map(|k| k.len()), Some(255));
        assert_eq!(parse(&"k".repeat(256)), None);
        assert_eq!(parse("\"\""), None);
        assert_eq!(parse("tab\there"), None);
    }

    fn fingerprint(method: &str, target: &str, body: &[u8]) -> String {
        let mut digest = Fingerprint::new(method, target);
        digest.update(body);
        digest.finish()
    }

    #[test]
    fn the_fingerprint_tells_requests_apart() {
        let a = fingerprint("POST", "/coupons/assign", b"{\"a\":1}");
        assert_eq!(a.len(), 64);
        assert_eq!(a, fingerprint("POST", "/coupons/assign", b"{\"a\":1}"));
        assert_ne!(a, fingerprint("POST", "/coupons/assign", b"{\"a\":2}"));
        assert_ne!(a, fingerprint("PATCH", "/coupons/assign", b"{\"a\":1}"));
        assert_ne!(a, fingerprint("POST", "/coupons/assign?x", b"{\"a\":1}"));
    }
}
