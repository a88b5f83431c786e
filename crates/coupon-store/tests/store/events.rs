//! The outbox and its feed: every change's events, written with the change, read back in a stable
//! order that never skips an event whose transaction commits late.

use std::collections::HashSet;
use std::sync::Arc;

use coupon_core::{BookPatch, Rollback};
use coupon_store::testing::{Backend, TestDb};
use coupon_store::{Event, EventCursor, EventQuery, EventType, RollbackRequest};
use serde_json::json;

use crate::{at, redeem_req, Ctx};

/// The next `count` events after `after`, a page of `limit` at a time, and where the feed then
/// stands. PostgreSQL's feed shows a transaction once every older one on the server has ended, so
/// the last events may take a moment to show while other tests write.
async fn drain(cx: &Ctx, after: Option<EventCursor>, limit: u32, count: usize) -> (Vec<Event>, Option<EventCursor>) {
    let (mut all, mut cursor) = (Vec::new(), after);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while all.len() < count {
        let query = EventQuery {
            after: cursor,
            limit,
            types: vec![],
        };
        let page = cx.store.events(query).await.expect("feed");
        if page.events.is_empty() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} of {count} events came",
                all.len()
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        all.extend(page.events);
        cursor = page.next;
    }
    assert_eq!(all.len(), count, "more events than expected: {all:?}");
    // Nothing more is coming once the writers are done.
    let rest = cx
        .store
        .events(EventQuery {
            after: cursor,
            limit,
            types: vec![],
        })
        .await
        .expect("feed");
    assert_eq!(rest.events, [], "more events than expected");
    (all, cursor)
}

fn types(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(|e| e.event_type.as_str()).collect()
}

/// A book's life, one change after another: each writes its event, with the book, code and user
/// it concerns, in the order the changes happened.
pub async fn every_change_writes_its_event(cx: Ctx) {
    let book = cx.book(json!({"total_codes": 5})).await;
    cx.store
        .add_codes(book.id, vec!["EV-1".into(), "EV-2".into()], at(1), None)
        .await
        .unwrap();
    let claimed = cx.claim(&book, "ada", at(2)).await.unwrap();
    let code = claimed.code.code.clone();
    let lock = cx.lock(&code, "ada", at(3)).await.unwrap();
    cx.unlock(&code, "ada", Some(lock.lock_id), at(4)).await.unwrap();
    let redemption = cx
        .redeem(redeem_req(&code, "ada", Some("order-1"), Some(5000), None), at(5))
        .await
        .unwrap();
    // A repeat answers the first redemption and writes nothing.
    cx.redeem(redeem_req(&code, "ada", Some("order-1"), Some(5000), None), at(6))
        .await
        .unwrap();
    let rollback = RollbackRequest {
        redemption_id: redemption.redemption_id,
        rollback: Rollback::new(Some("refund".into()), Default::default(), at(7)).unwrap(),
        key: None,
    };
    cx.store.rollback(rollback.clone(), at(7)).await.unwrap();
    cx.store.rollback(rollback, at(8)).await.unwrap();
    let patch = BookPatch {
        name: Some("Winter sale".into()),
        ..Default::default()
    };
    cx.store.update_book(book.id, patch, at(9), None).await.unwrap();
    cx.store
        .remove_codes(book.id, vec!["EV-1".into(), "EV-2".into(), "NOPE".into()], at(10), None)
        .await
        .unwrap();

    let (events, _) = drain(&cx, None, 3, 10).await;
    assert_eq!(
        types(&events),
        [
            "book.created",
            "codes.added",
            "code.claimed",
            "code.locked",
            "code.unlocked",
            "code.redeemed",
            "redemption.rolled_back",
            "book.updated",
            "codes.removed",
            "book.sold_out",
        ]
    );
    assert!(events.iter().all(|e| e.book_id == Some(book.id)));
    let times: Vec<_> = events.iter().map(|e| e.occurred_at).collect();
    assert_eq!(times, [0, 1, 2, 3, 4, 5, 7, 9, 10, 10].map(at));
    for e in &events[2..7] {
        assert_eq!(
            (e.code.as_deref(), e.user_id.as_deref()),
            (Some(code.as_str()), Some("ada")),
            "{e:?}"
        );
    }
    assert_eq!(events[0].data["name"], "Summer sale");
    assert_eq!(events[1].data, json!({"coupon_book_id": book.id, "count": 2}));
    assert_eq!(events[3].data["lock_id"], json!(lock.lock_id));
    assert_eq!(events[5].data["redemption_id"], json!(redemption.redemption_id));
    assert_eq!(events[6].data["redemption_id"], json!(redemption.redemption_id));
    assert_eq!(events[7].data["name"], "Winter sale");
    // The claimed code was held, so one of the two uploaded ones stays.
    assert_eq!(events[8].data["count"], 1);
    let ids: HashSet<_> = events.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), events.len(), "every event has its own id");

    // Only the types asked for, in the same order.
    let query = EventQuery {
        after: None,
        limit: 100,
        types: vec![EventType::CodeLocked, EventType::BookUpdated],
    };
    let page = cx.store.events(query).await.unwrap();
    assert_eq!(types(&page.events), ["code.locked", "book.updated"]);
}

/// A claim batch writes one event per code it gave out, in its one transaction; a page of the
/// feed ends where the next one starts, and a consumer that caught up keeps its place.
pub async fn a_batch_writes_its_events_at_once(cx: Ctx) {
    let book = cx.book(json!({"code_pattern": "BATCH-*****", "total_codes": 40})).await;
    let claims = (0..30).map(|u| {
        let (cx, book) = (&cx, &book);
        async move { cx.claim(book, &format!("user-{u}"), at(1)).await }
    });
    let claimed: Vec<_> = futures::future::join_all(claims).await;
    assert!(claimed.iter().all(Result::is_ok));

    let (events, end) = drain(&cx, None, 7, 31).await;
    let claims: Vec<&Event> = events
        .iter()
        .filter(|e| e.event_type == EventType::CodeClaimed)
        .collect();
    assert_eq!(claims.len(), 30);
    let users: HashSet<_> = claims.iter().map(|e| e.user_id.clone().unwrap()).collect();
    assert_eq!(users.len(), 30, "one event per claimer");
    let cursors: Vec<_> = events.iter().map(|e| e.cursor).collect();
    assert!(
        cursors.windows(2).all(|w| w[0] < w[1]),
        "the feed's order is its cursors' order"
    );
    assert_eq!(end, cursors.last().copied());

    let page = cx
        .store
        .events(EventQuery {
            after: end,
            limit: 10,
            types: vec![],
        })
        .await
        .unwrap();
    assert!(page.events.is_empty());
    assert_eq!(page.next, end, "a consumer that caught up polls from where it is");
}

/// `book.low_stock` once when the pool falls to the threshold, and again only after it rose above
/// it; `book.sold_out` once when nothing is left, not for every claim refused after.
pub async fn stock_alerts_come_once_per_crossing(cx: Ctx) {
    let book = cx
        .book(json!({"total_codes": 40, "low_stock_threshold": 3, "max_codes_per_user": 100}))
        .await;
    let codes: Vec<String> = (0..20).map(|i| format!("LOW-{i}")).collect();
    cx.store.add_codes(book.id, codes, at(0), None).await.unwrap();
    let alerts = |events: &[Event]| -> Vec<(&'static str, serde_json::Value)> {
        events
            .iter()
            .filter(|e| matches!(e.event_type, EventType::BookLowStock | EventType::BookSoldOut))
            .map(|e| (e.event_type.as_str(), e.data["available"].clone()))
            .collect()
    };
    let claim = |n: usize, t: i64| {
        let (cx, book) = (&cx, &book);
        async move {
            for _ in 0..n {
                let _ = cx.claim(book, "marketing-test", at(t)).await;
            }
        }
    };
    claim(16, 1).await;
    let (events, cursor) = drain(&cx, None, 100, 18).await;
    assert_eq!(alerts(&events), [], "4 left, above the threshold");

    claim(1, 2).await;
    claim(2, 3).await;
    let (events, cursor) = drain(&cx, cursor, 100, 4).await;
    assert_eq!(alerts(&events), [("book.low_stock", json!(3))], "once, at 3 left");

    claim(1, 4).await;
    claim(3, 5).await;
    let (events, cursor) = drain(&cx, cursor, 100, 2).await;
    assert_eq!(
        alerts(&events),
        [("book.sold_out", json!(0))],
        "once, however many claims are refused"
    );
    assert_eq!(
        events.iter().filter(|e| e.event_type == EventType::CodeClaimed).count(),
        1
    );

    // Restocked to 2, under the threshold: not low again until it rose above it.
    cx.store
        .add_codes(book.id, vec!["LOW-A".into(), "LOW-B".into()], at(6), None)
        .await
        .unwrap();
    claim(2, 7).await;
    let (events, cursor) = drain(&cx, cursor, 100, 4).await;
    assert_eq!(alerts(&events), [("book.sold_out", json!(0))]);

    // Above the threshold again: the next fall is announced, as is a new threshold that puts the
    // pool under it.
    let more: Vec<String> = (0..5).map(|i| format!("LOW-M{i}")).collect();
    let cap = BookPatch {
        low_stock_threshold: Some(Some(10)),
        ..Default::default()
    };
    cx.store
        .update_book(
            book.id,
            BookPatch {
                low_stock_threshold: Some(None),
                ..Default::default()
            },
            at(8),
            None,
        )
        .await
        .unwrap();
    let bigger = cx.book(json!({"total_codes": 100, "low_stock_threshold": 2})).await;
    cx.store.add_codes(bigger.id, more, at(8), None).await.unwrap();
    cx.claim(&bigger, "u1", at(9)).await.unwrap();
    cx.claim(&bigger, "u2", at(9)).await.unwrap();
    cx.store.update_book(bigger.id, cap, at(10), None).await.unwrap();
    cx.claim(&bigger, "u3", at(11)).await.unwrap();
    let (events, _) = drain(&cx, cursor, 100, 8).await;
    let on_bigger: Vec<_> = events
        .iter()
        .filter(|e| e.book_id == Some(bigger.id))
        .cloned()
        .collect();
    assert_eq!(
        alerts(&on_bigger),
        [("book.low_stock", json!(3))],
        "3 left under the new threshold of 10"
    );
    assert!(alerts(&events).iter().all(|(t, _)| *t != "book.sold_out"));
    let pool = "SELECT CAST(coalesce(sum(abs(pool - (SELECT count(*) FROM codes \
                WHERE book_id = books.id AND status = 'available'))), 0) AS BIGINT) FROM books";
    assert_eq!(cx.db.scalar(pool).await, 0, "the pool counters follow the codes");
}

/// A claim that ran out unredeemed is announced when its code goes back to the pool.
pub async fn lapsed_claims_are_announced(cx: Ctx) {
    let book = cx
        .book(json!({"code_pattern": "LAPSE-*****", "total_codes": 1, "claim_ttl_seconds": 60}))
        .await;
    let first = cx.claim(&book, "ada", at(0)).await.unwrap();
    cx.claim(&book, "bob", at(61)).await.unwrap();
    // Sold out by the first claim; the lapsed code comes back and goes out in one transaction, so
    // the pool never showed anything left and the sale is not announced sold out twice.
    let (events, _) = drain(&cx, None, 100, 5).await;
    assert_eq!(
        events.iter().filter(|e| e.event_type == EventType::BookSoldOut).count(),
        1
    );
    let lapsed: Vec<_> = events
        .iter()
        .filter(|e| e.event_type == EventType::ClaimLapsed)
        .collect();
    assert_eq!(lapsed.len(), 1);
    assert_eq!(lapsed[0].code.as_deref(), Some(first.code.code.as_str()));
    assert_eq!(lapsed[0].user_id.as_deref(), Some("ada"));
    let order = types(&events);
    let at_lapse = order.iter().position(|t| *t == "claim.lapsed").unwrap();
    assert_eq!(
        order[at_lapse + 1],
        "code.claimed",
        "the lapse comes before the claim that took its code"
    );
}

/// Consumers page the feed while many writers commit at once: together the pages hold every
/// event exactly once, in one order.
pub async fn concurrent_writers_never_make_the_feed_skip(cx: Ctx) {
    let cx = Arc::new(cx);
    let book = cx
        .book(json!({"code_pattern": "RACE-******", "total_codes": 2000, "max_codes_per_user": 100}))
        .await;
    let writers = (0..8).map(|w| {
        let (cx, book) = (cx.clone(), book.clone());
        tokio::spawn(async move {
            for i in 0..40 {
                let _ = cx.claim(&book, &format!("writer-{w}"), at(i)).await;
                if i % 10 == 0 {
                    let patch = BookPatch {
                        description: Some(format!("{w}-{i}")),
                        ..Default::default()
                    };
                    cx.store.update_book(book.id, patch, at(i), None).await.unwrap();
                }
            }
        })
    });
    let writers = futures::future::join_all(writers);
    let reader = {
        let cx = cx.clone();
        async move {
            let (mut seen, mut cursor) = (Vec::new(), None);
            for _ in 0..400 {
                let page = cx
                    .store
                    .events(EventQuery {
                        after: cursor,
                        limit: 5,
                        types: vec![],
                    })
                    .await
                    .unwrap();
                seen.extend(page.events);
                cursor = page.next;
                tokio::task::yield_now().await;
            }
            (seen, cursor)
        }
    };
    let (done, (mut seen, cursor)) = futures::join!(writers, reader);
    assert!(done.into_iter().all(|w| w.is_ok()));
    let total = 8 * 40 + 8 * 4 + 1;
    let (rest, _) = drain(&cx, cursor, 50, total - seen.len()).await;
    seen.extend(rest);
    let (all, _) = drain(&cx, None, 1000, total).await;
    let ids: Vec<_> = seen.iter().map(|e| e.id).collect();
    assert_eq!(
        ids,
        all.iter().map(|e| e.id).collect::<Vec<_>>(),
        "no event skipped or seen twice"
    );
}

/// A transaction that wrote its event first but commits last: the feed holds back everything
/// after it until it commits, so a consumer paging through never passes it by.
pub async fn a_late_commit_is_not_skipped() {
    let db = TestDb::new(Backend::Postgres).await;
    let store = db.store().await;
    let cx = Ctx {
        store: coupon_store::Coupons::naive(store.clone()),
        backend: store,
        db,
    };
    let book = cx.book(json!({"total_codes": 10})).await;
    let (client, conn) = tokio_postgres::connect(&cx.db.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let conn = tokio::spawn(conn);
    client.batch_execute("BEGIN").await.unwrap();
    client
        .execute(
            "INSERT INTO events (id, type, occurred_at, book_id, data) VALUES ($1, 'book.updated', 0, $2, '{}')",
            &[&uuid::Uuid::now_v7(), &book.id],
        )
        .await
        .unwrap();
    // Later positions commit first.
    cx.store
        .add_codes(book.id, vec!["LATE-1".into()], at(1), None)
        .await
        .unwrap();
    let (before, cursor) = drain(&cx, None, 10, 1).await;
    assert_eq!(
        types(&before),
        ["book.created"],
        "held back behind the open transaction"
    );
    client.batch_execute("COMMIT").await.unwrap();
    let (after, _) = drain(&cx, cursor, 10, 2).await;
    assert_eq!(
        types(&after),
        ["book.updated", "codes.added"],
        "the late one is not passed by"
    );
    drop(client);
    let _ = conn.await;
}
