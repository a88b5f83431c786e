//! Webhook deliveries as the store keeps them: each event fans out once per subscribed endpoint,
//! a lease hands a delivery to one sender at a time, and attempts are recorded until delivered or
//! given up.

use std::collections::HashSet;

use async_trait::async_trait;
use coupon_core::Timestamp;
use coupon_store::webhooks::{
    Attempted, Backlog, Delivery, DeliveryPage, DeliveryState, NewWebhook, Subscription, Webhook,
};
use coupon_store::{Coupons, EventType, Outbox, Store, StoreError};
use serde_json::json;
use uuid::Uuid;

use crate::{at, Ctx};

/// What an admin and the metrics see of the store's webhooks, beside what the relay does with
/// them (`Outbox`): the service's own calls, on the store the relay writes to.
#[async_trait]
trait Admin {
    async fn create_webhook(&self, new: NewWebhook) -> Result<Webhook, StoreError>;
    async fn webhook(&self, id: Uuid) -> Result<Webhook, StoreError>;
    async fn delete_webhook(&self, id: Uuid) -> Result<(), StoreError>;
    async fn deliveries(
        &self,
        id: Uuid,
        limit: u32,
        after: Option<(Timestamp, Uuid)>,
    ) -> Result<DeliveryPage, StoreError>;
    async fn retry_delivery(&self, webhook_id: Uuid, id: Uuid, now: Timestamp) -> Result<Delivery, StoreError>;
    async fn backlog(&self) -> Result<Backlog, StoreError>;
}

#[async_trait]
impl Admin for Store {
    async fn create_webhook(&self, new: NewWebhook) -> Result<Webhook, StoreError> {
        Coupons::naive(self.clone()).create_webhook(new, None).await
    }
    async fn webhook(&self, id: Uuid) -> Result<Webhook, StoreError> {
        Coupons::naive(self.clone()).webhook(id).await
    }
    async fn delete_webhook(&self, id: Uuid) -> Result<(), StoreError> {
        Coupons::naive(self.clone()).delete_webhook(id).await
    }
    async fn deliveries(
        &self,
        id: Uuid,
        limit: u32,
        after: Option<(Timestamp, Uuid)>,
    ) -> Result<DeliveryPage, StoreError> {
        Coupons::naive(self.clone()).deliveries(id, limit, after).await
    }
    async fn retry_delivery(&self, webhook_id: Uuid, id: Uuid, now: Timestamp) -> Result<Delivery, StoreError> {
        Coupons::naive(self.clone()).retry_delivery(webhook_id, id, now).await
    }
    async fn backlog(&self) -> Result<Backlog, StoreError> {
        Coupons::naive(self.clone()).backlog().await
    }
}

fn endpoint(events: Subscription) -> NewWebhook {
    NewWebhook {
        id: Uuid::now_v7(),
        url: "http://127.0.0.1:9/hook".into(),
        events,
        description: None,
        secret: "whsec_test".into(),
        created_at: at(0),
    }
}

/// Fans out until the feed has nothing more (PostgreSQL shows a transaction once every older one on
/// the server has ended, which may take a moment while other tests write).
async fn fan_out_all(cx: &Ctx, expected: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut passed = 0;
    while passed < expected {
        assert!(
            std::time::Instant::now() < deadline,
            "{passed} of {expected} events fanned out"
        );
        let n = cx.backend.fan_out(3, at(5)).await.unwrap();
        if n == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        passed += n;
    }
    assert_eq!(passed, expected);
}

pub async fn events_fan_out_once_to_subscribed_endpoints(cx: Ctx) {
    let every = cx.backend.create_webhook(endpoint(Subscription::All)).await.unwrap();
    let claims = cx
        .backend
        .create_webhook(endpoint(Subscription::Only(vec![EventType::CodeClaimed])))
        .await
        .unwrap();
    let book = cx.book(json!({"code_pattern": "HOOK-*****", "total_codes": 10})).await;
    for u in 0..4 {
        cx.claim(&book, &format!("u{u}"), at(1)).await.unwrap();
    }
    let unread = |backlog: coupon_store::webhooks::Backlog| {
        let unread = backlog.unread.into_iter();
        unread.map(|u| (u.consumer, u.events)).collect::<Vec<_>>()
    };
    assert_eq!(
        unread(cx.backend.backlog().await.unwrap()),
        [("webhooks".to_owned(), 5)],
        "the book's creation and four claims, before the fan-out read them"
    );
    fan_out_all(&cx, 5).await;
    assert_eq!(
        unread(cx.backend.backlog().await.unwrap()),
        [("webhooks".to_owned(), 0)]
    );
    assert_eq!(
        cx.backend.fan_out(100, at(6)).await.unwrap(),
        0,
        "nothing fans out twice"
    );

    let page = cx.backend.deliveries(every.id, 100, None).await.unwrap();
    assert_eq!(page.items.len(), 5);
    let page = cx.backend.deliveries(claims.id, 2, None).await.unwrap();
    assert_eq!(page.items.len(), 2);
    assert!(page
        .items
        .iter()
        .all(|d| d.event_type == EventType::CodeClaimed && d.state == DeliveryState::Pending));
    let rest = cx.backend.deliveries(claims.id, 10, page.next).await.unwrap();
    assert_eq!(rest.items.len(), 2);

    // Leases never overlap: two senders at once take different deliveries, in feed order.
    let (a, b) = futures::join!(
        cx.backend.lease_deliveries(every.id, 3, at(60), at(10)),
        cx.backend.lease_deliveries(every.id, 3, at(60), at(10)),
    );
    // Which of the two runs first is the database's choice: `a` is the one that took three.
    let (a, b) = match (a.unwrap(), b.unwrap()) {
        (a, b) if a.len() >= b.len() => (a, b),
        (a, b) => (b, a),
    };
    assert_eq!(a.len() + b.len(), 5);
    let ids: HashSet<Uuid> = a.iter().chain(&b).map(|d| d.delivery_id).collect();
    assert_eq!(ids.len(), 5, "no delivery leased twice");
    assert!(a.iter().chain(&b).all(|d| d.attempt == 1));
    assert!(a.windows(2).all(|w| w[0].event.cursor < w[1].event.cursor));
    assert!(
        cx.backend
            .lease_deliveries(every.id, 10, at(60), at(20))
            .await
            .unwrap()
            .is_empty(),
        "leased"
    );

    // One delivered, one failed for a retry at 100 s, one given up; the lease of the others ends.
    let settled = vec![
        Attempted {
            delivery_id: a[0].delivery_id,
            status: Some(204),
            failure: None,
            at: at(21),
        },
        Attempted {
            delivery_id: a[1].delivery_id,
            status: Some(500),
            failure: Some(("500".into(), Some(at(100)))),
            at: at(21),
        },
        Attempted {
            delivery_id: a[2].delivery_id,
            status: None,
            failure: Some(("refused".into(), None)),
            at: at(21),
        },
    ];
    cx.backend.settle_deliveries(settled).await.unwrap();
    let again = cx
        .backend
        .lease_deliveries(every.id, 10, at(200), at(61))
        .await
        .unwrap();
    assert_eq!(again.len(), b.len(), "the unsettled ones, once their lease ran out");
    let later = cx
        .backend
        .lease_deliveries(every.id, 10, at(300), at(100))
        .await
        .unwrap();
    assert_eq!(
        later.iter().map(|d| (d.delivery_id, d.attempt)).collect::<Vec<_>>(),
        [(a[1].delivery_id, 2)]
    );

    let all = cx.backend.deliveries(every.id, 100, None).await.unwrap().items;
    let by_id = |id| all.iter().find(|d| d.id == id).unwrap();
    assert_eq!(
        (by_id(a[0].delivery_id).state, by_id(a[0].delivery_id).last_status),
        (DeliveryState::Delivered, Some(204))
    );
    assert_eq!(by_id(a[2].delivery_id).state, DeliveryState::Failed);
    assert_eq!(by_id(a[2].delivery_id).last_error.as_deref(), Some("refused"));

    // An admin sends a failed one again.
    let retried = cx
        .backend
        .retry_delivery(every.id, a[2].delivery_id, at(400))
        .await
        .unwrap();
    assert_eq!(retried.state, DeliveryState::Pending);
    let due = cx
        .backend
        .lease_deliveries(every.id, 10, at(500), at(400))
        .await
        .unwrap();
    assert!(due.iter().any(|d| d.delivery_id == a[2].delivery_id && d.attempt == 2));
    assert!(
        cx.backend
            .retry_delivery(claims.id, a[2].delivery_id, at(400))
            .await
            .is_err(),
        "not that endpoint's"
    );

    let backlog = cx.backend.backlog().await.unwrap();
    assert_eq!(
        backlog.pending_deliveries,
        4 + 4,
        "all but the delivered one, and the claims endpoint's four"
    );
    assert_eq!(
        backlog.oldest_pending,
        Some(at(1)),
        "the book's creation was delivered: the claims are the oldest"
    );

    // Deleting an endpoint takes its deliveries with it.
    cx.backend.delete_webhook(claims.id).await.unwrap();
    assert!(cx.backend.webhook(claims.id).await.is_err());
    assert_eq!(cx.backend.backlog().await.unwrap().pending_deliveries, 4);
    let endpoints = cx.backend.endpoints().await.unwrap();
    assert_eq!(endpoints.iter().map(|e| e.webhook.id).collect::<Vec<_>>(), [every.id]);

    // Pruning keeps what a pending delivery needs, and events the relay has not passed.
    let before = cx.db.scalar("SELECT CAST(count(*) AS BIGINT) FROM events").await;
    cx.backend.prune(at(10_000)).await.unwrap();
    let after = cx.db.scalar("SELECT CAST(count(*) AS BIGINT) FROM events").await;
    assert_eq!(
        after, 4,
        "the four events pending deliveries refer to stay (of {before})"
    );
    assert_eq!(cx.db.scalar("SELECT CAST(count(*) AS BIGINT) FROM deliveries").await, 4);
}

/// An endpoint hears of events that happened after it was registered, not of the history before.
pub async fn a_new_endpoint_starts_with_new_events(cx: Ctx) {
    let book = cx.book(json!({"code_pattern": "OLD-*****", "total_codes": 10})).await;
    cx.claim(&book, "early", at(1)).await.unwrap();
    let mut late = endpoint(Subscription::All);
    late.created_at = at(2);
    let late = cx.backend.create_webhook(late).await.unwrap();
    cx.claim(&book, "late", at(3)).await.unwrap();
    fan_out_all(&cx, 3).await;
    let page = cx.backend.deliveries(late.id, 100, None).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].event_type, EventType::CodeClaimed);
}
