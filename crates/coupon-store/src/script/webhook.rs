//! Webhook endpoints and their deliveries: registration, the fan-out of the feed into one delivery
//! per event and matching endpoint, leasing due deliveries to send, recording how each attempt
//! went, an admin's retry, and the backlog the metrics show. The relay's other places in the feed
//! and pruning are in `event.rs`.

use coupon_core::Timestamp;
use uuid::Uuid;

use super::event::{advance, cursor};
use crate::backend::{Fields, Planning, Tx};
use crate::outbox::{self, EventCursor, EventQuery};
use crate::statements::Q;
use crate::webhooks::{
    Attempted, Backlog, Delivery, DeliveryPage, DeliveryState, Due, Endpoint, NewWebhook, Subscription, Unread,
    Webhook, FAN_OUT,
};
use crate::{EventType, Page, StoreError};

write!(CreateWebhook { new: NewWebhook } -> Webhook = |tx, s, _events| create(tx, &s.new).await);
read!(LoadWebhook { id: Uuid } -> Webhook = |tx, s| get(tx, s.id).await);
read!(Endpoints {} -> Vec<Endpoint> = |tx, _s| endpoints(tx).await);
write!(DeleteWebhook { id: Uuid } -> () = |tx, s, _events| delete(tx, s.id).await);
write!(FanOut { limit: u32, now: Timestamp } -> usize =
    |tx, s, _events| fan_out(tx, s.limit, s.now).await; planning = Planning::IndexOrder);
write!(LeaseDeliveries { webhook_id: Uuid, limit: u32, until: Timestamp, now: Timestamp } -> Vec<Due> =
    |tx, s, _events| lease(tx, s.webhook_id, s.limit, s.until, s.now).await; planning = Planning::IndexOrder);
write!(SettleDeliveries { attempts: Vec<Attempted> } -> () = |tx, s, _events| settle(tx, &s.attempts).await);
read!(ListDeliveries { webhook_id: Uuid, limit: u32, after: Option<(Timestamp, Uuid)> } -> DeliveryPage =
    |tx, s| deliveries(tx, s.webhook_id, s.limit, s.after).await);
write!(RetryDelivery { webhook_id: Uuid, id: Uuid, now: Timestamp } -> Delivery =
    |tx, s, _events| retry(tx, s.webhook_id, s.id, s.now).await);
read!(ReadBacklog {} -> Backlog = |tx, _s| backlog(tx).await);

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

fn endpoint(r: &impl Fields) -> Result<Endpoint, StoreError> {
    let events = r.string("events")?;
    Ok(Endpoint {
        webhook: Webhook {
            id: r.uuid("id")?,
            url: r.string("url")?,
            events: Subscription::from_json(&events).ok_or_else(|| corrupt("webhook events"))?,
            description: r.opt_string("description")?,
            created_at: Timestamp::from_millis(r.i64("created_at")?),
        },
        secret: r.string("secret")?,
    })
}

fn delivery(r: &impl Fields) -> Result<Delivery, StoreError> {
    let (state, kind) = (r.string("state")?, r.string("event_type")?);
    let at = |c: &str| Ok::<_, StoreError>(r.opt_i64(c)?.map(Timestamp::from_millis));
    Ok(Delivery {
        id: r.uuid("id")?,
        webhook_id: r.uuid("webhook_id")?,
        event_id: r.uuid("event_id")?,
        event_type: EventType::parse(&kind).ok_or_else(|| corrupt("delivery event type"))?,
        state: DeliveryState::parse(&state).ok_or_else(|| corrupt("delivery state"))?,
        attempts: r.i64("attempts")?,
        next_attempt_at: Timestamp::from_millis(r.i64("next_attempt_at")?),
        last_attempt_at: at("last_attempt_at")?,
        last_status: r.opt_i64("last_status")?,
        last_error: r.opt_string("last_error")?,
        delivered_at: at("delivered_at")?,
        created_at: Timestamp::from_millis(r.i64("created_at")?),
    })
}

async fn create<T: Tx>(tx: &T, new: &NewWebhook) -> Result<Webhook, StoreError> {
    let events = new.events.to_json();
    tx.exec(Q::WebhookInsert {
        id: new.id.into(),
        url: new.url.as_str().into(),
        events: events.as_str().into(),
        description: new.description.as_deref().into(),
        secret: new.secret.as_str().into(),
        created_at: new.created_at.millis().into(),
    })
    .await?;
    Ok(Webhook {
        id: new.id,
        url: new.url.clone(),
        events: new.events.clone(),
        description: new.description.clone(),
        created_at: new.created_at,
    })
}

pub(crate) async fn endpoints<T: Tx>(tx: &T) -> Result<Vec<Endpoint>, StoreError> {
    tx.query(Q::Webhooks {}).await?.iter().map(endpoint).collect()
}

async fn get<T: Tx>(tx: &T, id: Uuid) -> Result<Webhook, StoreError> {
    let row = tx.first(Q::WebhookRead { webhook_id: id.into() }).await?;
    Ok(endpoint(&row.ok_or(StoreError::not_found("webhook"))?)?.webhook)
}

async fn delete<T: Tx>(tx: &T, id: Uuid) -> Result<(), StoreError> {
    match tx.exec(Q::WebhookDelete { webhook_id: id.into() }).await? {
        0 => Err(StoreError::not_found("webhook")),
        _ => Ok(()),
    }
}

/// Turns the next `limit` events of the feed into deliveries, one per event and endpoint that
/// subscribed to its type and existed when it happened, and moves the fan-out's place past them,
/// in one transaction: the place is locked, so instances take turns and each event fans out once.
/// Says how many events it passed.
async fn fan_out<T: Tx>(tx: &T, limit: u32, now: Timestamp) -> Result<usize, StoreError> {
    let from = cursor(tx, Q::RelayCursor { name: FAN_OUT.into() }).await?;
    let query = EventQuery {
        after: Some(from),
        limit,
        types: Vec::new(),
    };
    let (events, endpoints) = futures::try_join!(outbox::keys(tx, &query), endpoints(tx))?;
    let Some(to) = events.last().map(|e| e.cursor) else {
        return Ok(0);
    };
    let mut ids = Vec::new();
    let mut webhooks = Vec::new();
    let mut xids = Vec::new();
    let mut positions = Vec::new();
    let mut event_ids = Vec::new();
    let mut types = Vec::new();
    for e in &events {
        for w in endpoints.iter().map(|p| &p.webhook) {
            if w.events.matches(e.event_type) && e.occurred_at >= w.created_at {
                ids.push(Uuid::now_v7());
                webhooks.push(w.id);
                xids.push(e.cursor.xid);
                positions.push(e.cursor.position);
                event_ids.push(e.id);
                types.push(e.event_type.as_str());
            }
        }
    }
    if !ids.is_empty() {
        tx.exec(Q::RecordDeliveries {
            ids: ids.as_slice().into(),
            webhook_ids: webhooks.as_slice().into(),
            event_xids: xids.as_slice().into(),
            event_positions: positions.as_slice().into(),
            event_ids: event_ids.as_slice().into(),
            event_types: types.as_slice().into(),
            now: now.millis().into(),
        })
        .await?;
    }
    if !advance(tx, FAN_OUT, from, to).await? {
        return Err(StoreError::Conflict("the fan-out's place moved"));
    }
    Ok(events.len())
}

/// Leases up to `limit` of the endpoint's due deliveries until `until`, counting an attempt for
/// each (a crash mid-attempt counts it too), with their events.
async fn lease<T: Tx>(
    tx: &T,
    webhook_id: Uuid,
    limit: u32,
    until: Timestamp,
    now: Timestamp,
) -> Result<Vec<Due>, StoreError> {
    let lease = Q::LeaseDeliveries {
        webhook_id: webhook_id.into(),
        now: now.millis().into(),
        until: until.millis().into(),
        limit: (limit as i64).into(),
    };
    let leased = tx.query(lease).await?;
    if leased.is_empty() {
        return Ok(Vec::new());
    }
    let mut keys = Vec::with_capacity(leased.len());
    let (mut xids, mut positions) = (Vec::new(), Vec::new());
    for r in &leased {
        let key = EventCursor {
            xid: r.i64("event_xid")?,
            position: r.i64("event_position")?,
        };
        keys.push((r.uuid("id")?, r.i64("attempts")?, key));
        xids.push(key.xid);
        positions.push(key.position);
    }
    let rows = tx
        .query(Q::EventsAt {
            xids: xids.as_slice().into(),
            positions: positions.as_slice().into(),
        })
        .await?;
    let mut events = std::collections::HashMap::with_capacity(rows.len());
    for r in &rows {
        let e = outbox::event(r)?;
        events.insert(e.cursor, e);
    }
    let mut due: Vec<Due> = keys
        .into_iter()
        .map(|(delivery_id, attempt, key)| {
            let event = events
                .get(&key)
                .cloned()
                .ok_or_else(|| corrupt("a delivery's event is gone"))?;
            Ok(Due {
                delivery_id,
                attempt,
                event,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    due.sort_unstable_by_key(|d| d.event.cursor);
    Ok(due)
}

/// Records how each attempt went, in one transaction. An attempt whose delivery is no longer
/// pending (an admin's retry raced it, or it was settled already) changes nothing.
async fn settle<T: Tx>(tx: &T, attempts: &[Attempted]) -> Result<(), StoreError> {
    let writes = attempts.iter().map(|a| async move {
        match &a.failure {
            None => {
                let delivered = Q::SettleDelivered {
                    delivery_id: a.delivery_id.into(),
                    delivered_at: a.at.millis().into(),
                    status: a.status.into(),
                };
                tx.exec(delivered).await
            }
            Some((error, next)) => {
                let next = next.map(Timestamp::millis);
                let failed = Q::SettleFailed {
                    delivery_id: a.delivery_id.into(),
                    status: a.status.into(),
                    error: error.as_str().into(),
                    next_attempt_at: next.into(),
                };
                tx.exec(failed).await
            }
        }
    });
    futures::future::try_join_all(writes).await?;
    Ok(())
}

async fn deliveries<T: Tx>(
    tx: &T,
    webhook_id: Uuid,
    limit: u32,
    after: Option<(Timestamp, Uuid)>,
) -> Result<DeliveryPage, StoreError> {
    get(tx, webhook_id).await?;
    let (at, id) = match after {
        Some((at, id)) => (Some(at.millis()), Some(id)),
        None => (None, None),
    };
    let page = Q::Deliveries {
        webhook_id: webhook_id.into(),
        after_at: at.into(),
        after_id: id.into(),
        limit: (limit as i64 + 1).into(),
    };
    let rows = tx.query(page).await?;
    let items = rows.iter().map(delivery).collect::<Result<Vec<_>, _>>()?;
    Ok(Page::from_overfetch(items, limit, |d| (d.created_at, d.id)))
}

/// Makes a delivery due again now, whatever became of it: an admin's "send it again".
async fn retry<T: Tx>(tx: &T, webhook_id: Uuid, id: Uuid, now: Timestamp) -> Result<Delivery, StoreError> {
    let (webhook_id, delivery_id) = (webhook_id.into(), id.into());
    let retry = Q::RetryDelivery {
        webhook_id,
        delivery_id,
        now: now.millis().into(),
    };
    if tx.exec(retry).await? == 0 {
        return Err(StoreError::not_found("delivery"));
    }
    let row = tx
        .first(Q::DeliveryRead {
            webhook_id,
            delivery_id,
        })
        .await?;
    delivery(&row.ok_or(StoreError::not_found("delivery"))?)
}

async fn backlog<T: Tx>(tx: &T) -> Result<Backlog, StoreError> {
    let (pending, unread) = futures::try_join!(tx.first(Q::Backlog {}), tx.query(Q::Unread {}))?;
    let pending = pending.ok_or_else(|| corrupt("backlog"))?;
    let unread = unread
        .iter()
        .map(|row| {
            Ok(Unread {
                consumer: row.string("name")?,
                events: row.i64("unread")?,
                oldest: row.opt_i64("oldest")?.map(Timestamp::from_millis),
            })
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(Backlog {
        unread,
        pending_deliveries: pending.i64("pending")?,
        oldest_pending: pending.opt_i64("oldest")?.map(Timestamp::from_millis),
    })
}
