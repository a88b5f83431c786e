//! Rolling back a redemption when its order fails (a declined payment, a cancellation, a refund):
//! the code's use goes back to its owner, and the user's count drops.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use coupon_core::Rollback;
use coupon_store::RollbackRequest;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Operator;
use crate::error::{ApiError, Problems};
use crate::extract::Path;
use crate::idempotency::{Idempotent, KeyHeader, KeyProblems};
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
    params(("redemption_id" = Uuid, Path), KeyHeader),
    responses((status = 200, body = Redemption), Problems, KeyProblems))]
pub async fn rollback(
    _: Operator,
    State(s): State<AppState>,
    Path(redemption_id): Path<Uuid>,
    Idempotent(req, key): Idempotent<RollbackRequestBody>,
) -> Result<Json<Redemption>, ApiError> {
    let now = s.clock.now();
    let metadata = req.metadata.map(Into::into).unwrap_or_default();
    let request = RollbackRequest {
        redemption_id,
        rollback: Rollback::new(req.reason, metadata, now)?,
        key: key.map(|k| k.answering(StatusCode::OK, Redemption::of)),
    };
    Ok(Json(Redemption::of(&s.coupons.rollback(request, now).await?)))
}
