//! Redeeming a code against an order, and the dry-run `validate` that says what a redeem would
//! answer now.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use coupon_core::rules::check_redeem;
use coupon_core::{Amount, CouponError, OrderId};
use coupon_store::{RedeemRequest, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::{ApiError, Problem, Problems};
use crate::extract::Query;
use crate::idempotency::{Idempotent, KeyHeader, KeyProblems};
use crate::routes::lookup::{Cleared, CodeLookup, CodePath};
use crate::wire::{text, Metadata, Redemption};
use crate::AppState;

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeemRequestBody {
    /// Repeating a redeem with the same order id answers the first result and counts once.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200)]
    pub order_id: Option<String>,
    /// Minor units; without it `discount_applied` and `final_price` are null.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_000_000_000_000_000_i64)]
    pub order_amount: Option<i64>,
    /// Required while a live lock holds the code.
    #[serde(default)]
    pub lock_id: Option<Uuid>,
    #[serde(default)]
    #[schema(schema_with = text::user_id)]
    pub user_id: Option<String>,
    /// Kept with the redemption.
    #[serde(default)]
    pub metadata: Option<Metadata>,
}

fn order_amount(minor_units: Option<i64>) -> Result<Option<Amount>, CouponError> {
    minor_units.map(|n| Amount::parse("order_amount", n)).transpose()
}

/// Redeems the user's code against an order. The answer's `status` is `redeemed`.
#[utoipa::path(post, path = "/coupons/redeem/{code}", tag = "codes", request_body = RedeemRequestBody, security(("bearer" = [])),
    params(CodePath, KeyHeader),
    responses((status = 200, body = Redemption), Problems, KeyProblems,
        (status = 409, body = Problem, content_type = "application/problem+json", description = "locked, already_redeemed, user_limit_reached, min_order_not_met, order_amount_required, book state, idempotency_in_flight")))]
pub async fn redeem(
    lookup: CodeLookup,
    State(s): State<AppState>,
    Idempotent(req, key): Idempotent<RedeemRequestBody>,
) -> Result<Json<Redemption>, ApiError> {
    let lookup = lookup.parse()?;
    let order_amount = order_amount(req.order_amount)?;
    let order_id = req.order_id.map(OrderId::parse).transpose()?;
    let Cleared { code, user, lookups } = lookup.for_user(req.user_id).await?;
    let request = RedeemRequest {
        code,
        user_id: user,
        order_id,
        order_amount,
        lock_id: req.lock_id,
        metadata: req.metadata.map(Into::into).unwrap_or_default(),
        key: key.map(|k| k.answering(StatusCode::OK, Redemption::of)),
    };
    let redeemed = lookups.charge(s.coupons.redeem(request, s.clock.now()).await).await?;
    Ok(Json(Redemption::of(&redeemed)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ValidateParams {
    #[param(minimum = 0, maximum = 1_000_000_000_000_000_i64)]
    pub order_amount: Option<i64>,
    #[param(schema_with = text::user_in_query)]
    pub user_id: Option<String>,
    /// The lock a redeem would present.
    pub lock_id: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct Validation {
    pub valid: bool,
    /// The error code a redeem would get now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    pub discount_applied: Option<i64>,
    pub final_price: Option<i64>,
}

/// Dry run of a redeem: whether it would succeed and for what discount. Changes nothing.
#[utoipa::path(get, path = "/coupons/validate/{code}", tag = "codes", security(("bearer" = [])),
    params(CodePath, ValidateParams),
    responses((status = 200, body = Validation), Problems))]
pub async fn validate(
    lookup: CodeLookup,
    State(s): State<AppState>,
    Query(p): Query<ValidateParams>,
) -> Result<Json<Validation>, ApiError> {
    let lookup = lookup.parse()?;
    let order_amount = order_amount(p.order_amount)?;
    let Cleared { code, user, lookups } = lookup.for_user(p.user_id).await?;
    let verdict = match s.coupons.code_view(&code, user.as_str(), p.lock_id).await {
        Ok(view) => check_redeem(
            &view.book,
            &view.code,
            user.as_str(),
            &view.holdings,
            p.lock_id,
            order_amount,
            s.clock.now(),
        ),
        Err(StoreError::Rejected(e)) => Err(e),
        Err(e) => return Err(e.into()),
    };
    // A dry run answers 200 either way; an unknown code or another's still counts as a guess.
    Ok(Json(match lookups.charge(verdict).await {
        Ok(applied) => Validation {
            valid: true,
            reason: None,
            discount_applied: applied.map(|a| a.discount_applied),
            final_price: applied.map(|a| a.final_price),
        },
        Err(e) => Validation {
            valid: false,
            reason: Some(e.code()),
            discount_applied: None,
            final_price: None,
        },
    }))
}
