//! Redemptions after the fact: their history, by book and by user, and the rollback that undoes
//! one when its order fails (a declined payment, a cancellation, a refund).

use axum::extract::State;
use axum::Json;
use coupon_core::Rollback;
use coupon_store::{RedemptionQuery, RedemptionsOf, RollbackRequest};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{Admin, Caller, Operator};
use crate::error::{ApiError, Problems};
use crate::extract::{Body, Path, Query};
use crate::routes::page::{self, PageParams};
use crate::routes::users::UserPath;
use crate::wire::{Metadata, Redemption};
use crate::AppState;

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequestBody {
    /// Why the redemption is undone; trimmed, an empty one is none.
    #[serde(default)]
    #[schema(max_length = 500)]
    pub reason: Option<String>,
    #[serde(default)]
    pub metadata: Option<Metadata>,
}

/// Undoes a redemption: its use goes back to the code, which is its owner's to lock and redeem
/// again, and to the user's count. Repeating it answers the first rollback and counts once.
#[utoipa::path(post, path = "/coupons/redemptions/{redemption_id}/rollback", tag = "redemptions",
    request_body = RollbackRequestBody, security(("bearer" = [])),
    params(("redemption_id" = Uuid, Path)),
    responses((status = 200, body = Redemption), Problems))]
pub async fn rollback(
    _: Operator,
    State(s): State<AppState>,
    Path(redemption_id): Path<Uuid>,
    Body(req): Body<RollbackRequestBody>,
) -> Result<Json<Redemption>, ApiError> {
    let now = s.clock.now();
    let metadata = req.metadata.map(Into::into).unwrap_or_default();
    let request = RollbackRequest {
        redemption_id,
        rollback: Rollback::new(req.reason, metadata, now)?,
    };
    Ok(Json(s.coupons.rollback(request, now).await?.into()))
}

#[derive(Serialize, ToSchema)]
pub struct Redemptions {
    pub redemptions: Vec<Redemption>,
    pub next_cursor: Option<String>,
}

async fn history(s: &AppState, of: RedemptionsOf, p: PageParams) -> Result<Json<Redemptions>, ApiError> {
    let at = p.page()?;
    let query = RedemptionQuery {
        of,
        limit: at.limit,
        after: at.after,
    };
    let page = s.coupons.redemptions(query).await?;
    Ok(Json(Redemptions {
        redemptions: page.items.into_iter().map(Redemption::from).collect(),
        next_cursor: page.next.map(page::cursor),
    }))
}

/// The book's redemptions, newest first, rolled-back ones included.
#[utoipa::path(get, path = "/coupons/{book_id}/redemptions", tag = "redemptions", operation_id = "book_redemptions", security(("bearer" = [])),
    params(("book_id" = Uuid, Path), PageParams),
    responses((status = 200, body = Redemptions), Problems))]
pub async fn of_book(
    _: Admin,
    State(s): State<AppState>,
    Path(book_id): Path<Uuid>,
    Query(p): Query<PageParams>,
) -> Result<Json<Redemptions>, ApiError> {
    history(&s, RedemptionsOf::Book(book_id), p).await
}

/// The user's redemptions, newest first, rolled-back ones included. `me` is the caller.
#[utoipa::path(get, path = "/users/{user_id}/redemptions", tag = "redemptions", operation_id = "user_redemptions", security(("bearer" = [])),
    params(UserPath, PageParams),
    responses((status = 200, body = Redemptions), Problems))]
pub async fn of_user(
    caller: Caller,
    State(s): State<AppState>,
    Path(UserPath { user_id }): Path<UserPath>,
    Query(p): Query<PageParams>,
) -> Result<Json<Redemptions>, ApiError> {
    let user = caller.user_in_path(user_id)?;
    history(&s, RedemptionsOf::User(user), p).await
}
