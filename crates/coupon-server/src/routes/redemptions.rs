//! Redemptions after the fact: their history, by book and by user (the rollback that undoes one
//! is in `rollback.rs`).

use axum::extract::State;
use axum::Json;
use coupon_store::{RedemptionQuery, RedemptionsOf};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{Admin, Caller};
use crate::error::{ApiError, Problems};
use crate::extract::{Path, Query};
use crate::routes::page::{self, PageParams};
use crate::routes::users::UserPath;
use crate::wire::Redemption;
use crate::AppState;

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
