//! The admin's catalog: every book, whatever its status or window, newest first. Customers search
//! (`books::search`) only what they may claim now.

use axum::extract::State;
use axum::Json;
use coupon_core::BookStatus;
use coupon_store::{Scope, SearchQuery};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Admin;
use crate::error::{ApiError, Problems};
use crate::extract::Query;
use crate::routes::books::{check_text_query, SearchResults};
use crate::routes::page::PageAt;
use crate::wire::{self, text};
use crate::AppState;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only books in this status.
    #[param(value_type = Option<wire::BookStatus>)]
    pub status: Option<String>,
    /// Words that must all appear in the name, description or tags.
    #[param(max_length = 200)]
    pub q: Option<String>,
    /// 1 to 100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    #[param(schema_with = text::page_cursor)]
    pub cursor: Option<String>,
}

/// Every book, paused, archived, expired and not yet started ones included, newest first.
#[utoipa::path(get, path = "/coupons", tag = "books", security(("bearer" = [])), params(ListParams),
    responses((status = 200, body = SearchResults), Problems))]
pub async fn list(
    _: Admin,
    State(s): State<AppState>,
    Query(p): Query<ListParams>,
) -> Result<Json<SearchResults>, ApiError> {
    let status = p
        .status
        .as_deref()
        .map(|raw| {
            BookStatus::parse(raw).ok_or_else(|| ApiError::invalid("status", "must be active, paused or archived"))
        })
        .transpose()?;
    check_text_query(p.q.as_deref())?;
    let PageAt { limit, after } = PageAt::parse(p.limit, p.cursor.as_deref())?;
    let query = SearchQuery {
        scope: Scope::All(status),
        text: p.q,
        limit,
        after,
        ..Default::default()
    };
    SearchResults::found(&s, query).await
}
