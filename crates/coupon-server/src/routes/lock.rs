//! Checkout locks: the holder holds a code for one order until `locked_until`, and releases it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use coupon_store::{LockRequest, Locked, UnlockRequest};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{ApiError, Problem, Problems};
use crate::idempotency::{Idempotent, KeyHeader, KeyProblems};
use crate::routes::lookup::{Cleared, CodeLookup, CodePath};
use crate::wire::{text, LockAnswer, UnlockAnswer};
use crate::AppState;

/// For endpoints that act for a user and take nothing else.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForUser {
    #[serde(default)]
    #[schema(schema_with = text::user_id)]
    pub user_id: Option<String>,
}

/// Holds the user's code for a checkout until `locked_until`.
#[utoipa::path(post, path = "/coupons/lock/{code}", tag = "codes", request_body = ForUser, security(("bearer" = [])),
    params(CodePath, KeyHeader),
    responses((status = 200, body = LockAnswer), Problems, KeyProblems,
        (status = 409, body = Problem, content_type = "application/problem+json", description = "locked, already_redeemed, book state")))]
pub async fn lock(
    lookup: CodeLookup,
    State(s): State<AppState>,
    Idempotent(req, key): Idempotent<ForUser>,
) -> Result<Json<LockAnswer>, ApiError> {
    let lookup = lookup.parse()?;
    let Cleared { code, user, lookups } = lookup.for_user(req.user_id).await?;
    let form = |locked: &Locked| LockAnswer::from(locked.clone());
    let request = LockRequest {
        code,
        user_id: user,
        key: key.map(|k| k.answering(StatusCode::OK, form)),
    };
    let locked = lookups.charge(s.coupons.lock(request, s.clock.now()).await).await?;
    Ok(Json(form(&locked)))
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnlockRequestBody {
    #[serde(default)]
    #[schema(schema_with = text::user_id)]
    pub user_id: Option<String>,
    /// If given, only that lock is released.
    #[serde(default)]
    pub lock_id: Option<Uuid>,
}

/// Releases the checkout hold.
#[utoipa::path(post, path = "/coupons/unlock/{code}", tag = "codes", request_body = UnlockRequestBody, security(("bearer" = [])),
    params(CodePath, KeyHeader),
    responses((status = 200, body = UnlockAnswer), Problems, KeyProblems,
        (status = 409, body = Problem, content_type = "application/problem+json", description = "not_locked, locked (another lock), already_redeemed")))]
pub async fn unlock(
    lookup: CodeLookup,
    State(s): State<AppState>,
    Idempotent(req, key): Idempotent<UnlockRequestBody>,
) -> Result<Json<UnlockAnswer>, ApiError> {
    let lookup = lookup.parse()?;
    let Cleared { code, user, lookups } = lookup.for_user(req.user_id).await?;
    let text = code.to_string();
    let form = move |_: &()| UnlockAnswer {
        status: "active",
        code: text.clone(),
    };
    let request = UnlockRequest {
        code,
        user_id: user,
        lock_id: req.lock_id,
        key: key.map(|k| k.answering(StatusCode::OK, form.clone())),
    };
    lookups.charge(s.coupons.unlock(request, s.clock.now()).await).await?;
    Ok(Json(form(&())))
}
