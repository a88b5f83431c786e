//! Claims: a code of a book for a user, any available one (`assign`) or the one named
//! (`assign_code`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use coupon_core::{Timestamp, UserId};
use coupon_store::{ClaimRequest, ClaimTarget, Claimed};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::{ApiError, Problem, Problems};
use crate::idempotency::{Idempotent, KeyHeader, KeyProblems, RequestKey};
use crate::routes::lookup::{Cleared, CodeLookup, CodePath};
use crate::wire::{text, Book, ClaimedCode, Metadata};
use crate::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignRequest {
    pub coupon_book_id: Uuid,
    #[serde(default)]
    #[schema(schema_with = text::user_id)]
    pub user_id: Option<String>,
    /// Kept with the claim while the user holds the code.
    #[serde(default)]
    pub metadata: Option<Metadata>,
}

/// `POST /coupons/assign/{code}`: for whom, and the claim's notes.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignCodeBody {
    #[serde(default)]
    #[schema(schema_with = text::user_id)]
    pub user_id: Option<String>,
    /// Kept with the claim while the user holds the code.
    #[serde(default)]
    pub metadata: Option<Metadata>,
}

#[derive(Serialize, ToSchema)]
pub struct Assigned {
    #[serde(flatten)]
    pub claim: ClaimedCode,
    pub coupon: Book,
}

impl Assigned {
    fn new(claimed: &Claimed, now: Timestamp) -> Self {
        Assigned {
            claim: ClaimedCode::new(claimed.code.clone(), &claimed.book, now),
            coupon: claimed.book.clone().into(),
        }
    }
}

async fn claim(
    s: &AppState,
    target: ClaimTarget,
    user: UserId,
    metadata: Option<Metadata>,
    key: Option<RequestKey>,
) -> Result<(StatusCode, Json<Assigned>), ApiError> {
    let now = s.clock.now();
    let request = ClaimRequest {
        target,
        user_id: user.clone(),
        metadata: metadata.map(Into::into).unwrap_or_default(),
        key: key.map(|k| k.answering(StatusCode::CREATED, move |c| Assigned::new(c, now))),
    };
    let claimed = s.coupons.claim(request, now).await?;
    Ok((StatusCode::CREATED, Json(Assigned::new(&claimed, now))))
}

/// Assigns an available code of the book to the user, atomically, never over supply or limits.
#[utoipa::path(post, path = "/coupons/assign", tag = "codes", request_body = AssignRequest, security(("bearer" = [])),
    params(KeyHeader),
    responses((status = 201, body = Assigned), Problems, KeyProblems,
        (status = 409, body = Problem, content_type = "application/problem+json", description = "book_inactive, not_started, expired, user_limit_reached, daily_limit_reached, out_of_stock")))]
pub async fn assign(
    caller: Caller,
    State(s): State<AppState>,
    Idempotent(req, key): Idempotent<AssignRequest>,
) -> Result<(StatusCode, Json<Assigned>), ApiError> {
    let user = caller.acting_for(req.user_id)?;
    claim(&s, ClaimTarget::Book(req.coupon_book_id), user, req.metadata, key).await
}

/// Assigns that code (in shared mode, an instance of it) to the user.
#[utoipa::path(post, path = "/coupons/assign/{code}", tag = "codes", request_body = AssignCodeBody, security(("bearer" = [])),
    params(CodePath, KeyHeader),
    responses((status = 201, body = Assigned), Problems, KeyProblems,
        (status = 409, body = Problem, content_type = "application/problem+json", description = "code_taken, out_of_stock, limits, book state")))]
pub async fn assign_code(
    lookup: CodeLookup,
    State(s): State<AppState>,
    Idempotent(req, key): Idempotent<AssignCodeBody>,
) -> Result<(StatusCode, Json<Assigned>), ApiError> {
    let lookup = lookup.parse()?;
    let Cleared { code, user, lookups } = lookup.for_user(req.user_id).await?;
    lookups
        .charge(claim(&s, ClaimTarget::Code(code), user, req.metadata, key).await)
        .await
}
