//! Checkout locks: the holder holds a code for one order until `locked_until`, and releases it.

use axum::extract::State;
use axum::Json;
use coupon_store::{LockRequest, UnlockRequest};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{ApiError, Problem, Problems};
use crate::extract::Body;
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
    params(CodePath),
    responses((status = 200, body = LockAnswer), Problems,
        (status = 409, body = Problem, content_type = "application/problem+json", description = "locked, already_redeemed, book state")))]
pub async fn lock(
    lookup: CodeLookup,
    State(s): State<AppState>,
    Body(req): Body<ForUser>,
) -> Result<Json<LockAnswer>, ApiError> {
    let lookup = lookup.parse()?;
    let Cleared { code, user, lookups } = lookup.for_user(req.user_id).await?;
    let request = LockRequest { code, user_id: user };
    let locked = lookups.charge(s.coupons.lock(request, s.clock.now()).await).await?;
    Ok(Json(locked.into()))
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
    params(CodePath),
    responses((status = 200, body = UnlockAnswer), Problems,
        (status = 409, body = Problem, content_type = "application/problem+json", description = "not_locked, locked (another lock), already_redeemed")))]
pub async fn unlock(
    lookup: CodeLookup,
    State(s): State<AppState>,
    Body(req): Body<UnlockRequestBody>,
) -> Result<Json<UnlockAnswer>, ApiError> {
    let lookup = lookup.parse()?;
    let Cleared { code, user, lookups } = lookup.for_user(req.user_id).await?;
    let text = code.to_string();
    let request = UnlockRequest {
        code,
        user_id: user,
        lock_id: req.lock_id,
    };
    lookups.charge(s.coupons.unlock(request, s.clock.now()).await).await?;
    Ok(Json(UnlockAnswer {
        status: "active",
        code: text,
    }))
}
