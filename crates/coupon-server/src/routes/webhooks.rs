//! Webhook endpoints: an admin registers a URL and the event types it wants; the relay POSTs each
//! matching event to it, signed with the endpoint's secret, and records every delivery.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use coupon_store::webhooks::{Delivery, NewWebhook, Subscription, Webhook};
use coupon_store::EventType;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Admin;
use crate::error::{ApiError, Problems};
use crate::extract::{Path, Query};
use crate::idempotency::{Idempotent, KeyHeader, KeyProblems};
use crate::routes::page::{self, PageParams};
use crate::wire::{text, webhook_url, Timestamp, WebhookUrls};
use crate::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    /// Described by its schema (`webhook_url::schema`).
    #[schema(schema_with = webhook_url::schema)]
    pub url: String,
    /// Event types, or `["*"]` for every type (those added later included).
    #[schema(schema_with = text::webhook_events)]
    pub events: Vec<String>,
    #[serde(default)]
    #[schema(max_length = 500)]
    pub description: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Endpoint {
    pub id: Uuid,
    pub url: String,
    #[schema(schema_with = text::webhook_events)]
    pub events: Vec<String>,
    pub description: Option<String>,
    pub created_at: Timestamp,
}

/// The endpoint and its signing secret, which is shown this once.
#[derive(Serialize, ToSchema)]
pub struct CreatedEndpoint {
    #[serde(flatten)]
    pub endpoint: Endpoint,
    /// Receivers check `Coupond-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`
    /// with it. Shown only here.
    pub secret: String,
}

#[derive(Serialize, ToSchema)]
pub struct Endpoints {
    pub webhooks: Vec<Endpoint>,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub event_id: Uuid,
    #[schema(schema_with = text::event_type)]
    pub event_type: &'static str,
    /// `pending` (due at `next_attempt_at`), `delivered`, or `failed` (every attempt failed).
    #[schema(pattern = "^(pending|delivered|failed)$")]
    pub state: &'static str,
    pub attempts: i64,
    pub next_attempt_at: Timestamp,
    pub last_attempt_at: Option<Timestamp>,
    /// The receiver's HTTP status at the last attempt, if it answered.
    pub last_status: Option<i64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    pub delivered_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

#[derive(Serialize, ToSchema)]
pub struct Deliveries {
    pub deliveries: Vec<DeliveryView>,
    pub next_cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct DeliveryPath {
    pub webhook_id: Uuid,
    pub delivery_id: Uuid,
}

impl From<Webhook> for Endpoint {
    fn from(w: Webhook) -> Self {
        let events = w.events.names().into_iter().map(str::to_owned).collect();
        Endpoint {
            id: w.id,
            url: w.url,
            events,
            description: w.description,
            created_at: Timestamp(w.created_at),
        }
    }
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        DeliveryView {
            id: d.id,
            webhook_id: d.webhook_id,
            event_id: d.event_id,
            event_type: d.event_type.as_str(),
            state: d.state.as_str(),
            attempts: d.attempts,
            next_attempt_at: Timestamp(d.next_attempt_at),
            last_attempt_at: d.last_attempt_at.map(Timestamp),
            last_status: d.last_status,
            last_error: d.last_error,
            delivered_at: d.delivered_at.map(Timestamp),
            created_at: Timestamp(d.created_at),
        }
    }
}

fn check_url(urls: &WebhookUrls, url: &str) -> Result<String, ApiError> {
    let invalid = || {
        ApiError::invalid(
            "url",
            "an http:// or https:// URL whose host is a name or an IPv4 address that is not internal, up to 2000 printable ASCII characters",
        )
    };
    if !urls.admits(url) {
        return Err(invalid());
    }
    let parsed = url::Url::parse(url).map_err(|_| invalid())?;
    Ok(parsed.to_string())
}

fn subscription(events: &[String]) -> Result<Subscription, ApiError> {
    if events.is_empty() || events.len() > EventType::ALL.len() {
        return Err(ApiError::invalid("events", "name 1 to 12 event types, or [\"*\"]"));
    }
    Subscription::parse(events).map_err(|name| ApiError::invalid("events", format!("no event type {name:?}")))
}

/// Registers an endpoint. Every event of the types it names, from now on, is POSTed to it,
/// signed with the secret in the answer (shown only here), until it is deleted.
#[utoipa::path(post, path = "/webhooks", operation_id = "create_webhook", tag = "events", request_body = NewEndpoint, security(("bearer" = [])),
    params(KeyHeader),
    responses((status = 201, body = CreatedEndpoint), Problems, KeyProblems))]
pub async fn create(
    _: Admin,
    State(s): State<AppState>,
    Idempotent(req, key): Idempotent<NewEndpoint>,
) -> Result<(StatusCode, Json<CreatedEndpoint>), ApiError> {
    let url = check_url(&s.webhook_urls, &req.url)?;
    let events = subscription(&req.events)?;
    // Counted as sent, as the document's maxLength is; kept trimmed, an empty one is none.
    if req.description.as_ref().is_some_and(|d| d.chars().count() > 500) {
        return Err(ApiError::invalid("description", "at most 500 characters"));
    }
    let description = req.description.map(|d| d.trim().to_owned()).filter(|d| !d.is_empty());
    let secret = coupon_relay::Secret::generate();
    let new = NewWebhook {
        id: Uuid::now_v7(),
        url,
        events,
        description,
        secret: secret.expose().to_owned(),
        created_at: s.clock.now(),
    };
    // The secret is in the answer, so a retry with the key gets it again.
    let secret = secret.expose().to_owned();
    let form = move |webhook: &Webhook| CreatedEndpoint {
        endpoint: webhook.clone().into(),
        secret: secret.clone(),
    };
    let key = key.map(|k| k.answering(StatusCode::CREATED, form.clone()));
    let webhook = s.coupons.create_webhook(new, key).await?;
    Ok((StatusCode::CREATED, Json(form(&webhook))))
}

/// Every endpoint, oldest first. Secrets are not shown.
#[utoipa::path(get, path = "/webhooks", operation_id = "list_webhooks", tag = "events", security(("bearer" = [])),
    responses((status = 200, body = Endpoints), Problems))]
pub async fn list(_: Admin, State(s): State<AppState>) -> Result<Json<Endpoints>, ApiError> {
    let webhooks = s.coupons.webhooks().await?.into_iter().map(Endpoint::from).collect();
    Ok(Json(Endpoints { webhooks }))
}

#[utoipa::path(get, path = "/webhooks/{webhook_id}", operation_id = "show_webhook", tag = "events", security(("bearer" = [])),
    params(("webhook_id" = Uuid, Path)), responses((status = 200, body = Endpoint), Problems))]
pub async fn show(_: Admin, State(s): State<AppState>, Path(id): Path<Uuid>) -> Result<Json<Endpoint>, ApiError> {
    Ok(Json(s.coupons.webhook(id).await?.into()))
}

/// Deletes the endpoint and its deliveries; nothing more is sent to it.
#[utoipa::path(delete, path = "/webhooks/{webhook_id}", operation_id = "delete_webhook", tag = "events", security(("bearer" = [])),
    params(("webhook_id" = Uuid, Path)), responses((status = 204, description = "Deleted"), Problems))]
pub async fn delete(_: Admin, State(s): State<AppState>, Path(id): Path<Uuid>) -> Result<StatusCode, ApiError> {
    s.coupons.delete_webhook(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The endpoint's deliveries, newest first: each event sent to it, its attempts and outcome.
#[utoipa::path(get, path = "/webhooks/{webhook_id}/deliveries", operation_id = "webhook_deliveries", tag = "events", security(("bearer" = [])),
    params(("webhook_id" = Uuid, Path), PageParams), responses((status = 200, body = Deliveries), Problems))]
pub async fn deliveries(
    _: Admin,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
    Query(p): Query<PageParams>,
) -> Result<Json<Deliveries>, ApiError> {
    let at = p.page()?;
    let page = s.coupons.deliveries(id, at.limit, at.after).await?;
    Ok(Json(Deliveries {
        deliveries: page.items.into_iter().map(DeliveryView::from).collect(),
        next_cursor: page.next.map(page::cursor),
    }))
}

/// Sends a delivery again now, whatever became of it (a failed one gets one more attempt).
#[utoipa::path(post, path = "/webhooks/{webhook_id}/deliveries/{delivery_id}/retry", operation_id = "retry_delivery", tag = "events",
    security(("bearer" = [])), params(DeliveryPath),
    responses((status = 202, body = DeliveryView), Problems))]
pub async fn retry(
    _: Admin,
    State(s): State<AppState>,
    Path(DeliveryPath {
        webhook_id,
        delivery_id,
    }): Path<DeliveryPath>,
) -> Result<(StatusCode, Json<DeliveryView>), ApiError> {
    let delivery = s.coupons.retry_delivery(webhook_id, delivery_id, s.clock.now()).await?;
    Ok((StatusCode::ACCEPTED, Json(delivery.into())))
}
