//! The event feed: every change's event, in a stable order, for consumers that pull.

use axum::extract::State;
use axum::Json;
use coupon_store::{EventCursor, EventQuery, EventType};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Admin;
use crate::error::{ApiError, Problems};
use crate::extract::Query;
use crate::wire::{text, Event};
use crate::AppState;

const MAX_EVENTS: u32 = 1000;
const DEFAULT_EVENTS: u32 = 100;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    /// Continue after this place: the `next_cursor` of the previous page. From the oldest event
    /// kept when absent.
    #[param(schema_with = text::event_cursor)]
    pub after: Option<String>,
    /// 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Only events of these types.
    #[serde(rename = "type")]
    #[param(rename = "type", schema_with = text::event_types)]
    pub types: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Events {
    pub events: Vec<Event>,
    /// Where to continue: pass it as `after`. When nothing new has committed, it is the place
    /// asked for, so a consumer polls with it until there is. Null only on an empty feed read
    /// from its start.
    #[schema(schema_with = text::next_event_cursor)]
    pub next_cursor: Option<String>,
}

impl EventParams {
    fn query(&self) -> Result<EventQuery, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_EVENTS);
        if !(1..=MAX_EVENTS).contains(&limit) {
            return Err(ApiError::invalid("limit", format!("must be from 1 to {MAX_EVENTS}")));
        }
        let after = self
            .after
            .as_deref()
            .map(|a| a.parse::<EventCursor>())
            .transpose()
            .map_err(|()| ApiError::invalid("after", "not a cursor this service gave out"))?;
        Ok(EventQuery {
            after,
            limit,
            types: event_types(self.types.as_deref())?,
        })
    }
}

/// A comma-separated list of event types (none: every type).
pub fn event_types(list: Option<&str>) -> Result<Vec<EventType>, ApiError> {
    let Some(list) = list else { return Ok(Vec::new()) };
    list.split(',')
        .map(|name| EventType::parse(name).ok_or_else(|| ApiError::invalid("type", format!("no event type {name:?}"))))
        .collect()
}

/// Events in the order they committed, a page at a time. A consumer that passes each page's
/// `next_cursor` back as `after` sees every event once, however late its transaction committed.
#[utoipa::path(get, path = "/events", operation_id = "events", tag = "events", security(("bearer" = [])),
    params(EventParams),
    responses((status = 200, body = Events), Problems))]
pub async fn list(_: Admin, State(s): State<AppState>, Query(p): Query<EventParams>) -> Result<Json<Events>, ApiError> {
    let page = s.coupons.events(p.query()?).await?;
    Ok(Json(Events {
        events: page.events.into_iter().map(Event::from).collect(),
        next_cursor: page.next.map(|c| c.to_string()),
    }))
}
