use coupon_core::{BookPatch, BookStatus, CodeState, CouponError};
use coupon_store::{ClaimBatches, ClaimRequest, ClaimTarget};
use serde_json::json;

use crate::{at, Ctx};

pub async fn claims_follow_the_book_and_user_limits(cx: Ctx) {
    let book = cx.book(json!({"max_codes_per_user": 2})).await;
    cx.store
        .add_codes(book.id, vec!["C1".into(), "C2".into(), "C3".into()], at(0), None)
        .await
        .unwrap();
    let first = cx.claim(&book, "alice", at(1)).await.unwrap();
    assert_eq!(first.code.owner.as_deref(), Some("alice"));
    assert_eq!(first.code.state(&book, at(1)), CodeState::Active);
    assert_eq!(first.book.id, book.id);
    cx.claim(&book, "alice", at(2)).await.unwrap();
    assert_eq!(
        cx.claim(&book, "alice", at(3)).await.unwrap_err(),
        CouponError::UserLimitReached
    );
    cx.claim(&book, "bob", at(4)).await.unwrap();
    assert_eq!(
        cx.claim(&book, "carol", at(5)).await.unwrap_err(),
        CouponError::OutOfStock
    );
    // The limit is checked before the stock: a user at the limit hears about the limit.
    assert_eq!(
        cx.claim(&book, "alice", at(6)).await.unwrap_err(),
        CouponError::UserLimitReached
    );

    let mine = cx.store.user_codes("alice").await.unwrap();
    assert_eq!(mine.len(), 2);
    assert!(mine
        .iter()
        .all(|(c, b)| c.owner.as_deref() == Some("alice") && b.id == book.id));
    let missing = cx
        .claim(
            &coupon_core::Book {
                id: uuid::Uuid::now_v7(),
                ..book
            },
            "alice",
            at(7),
        )
        .await;
    assert_eq!(missing.unwrap_err(), CouponError::NotFound("coupon book"));
}

pub async fn daily_limits_reset_at_utc_midnight(cx: Ctx) {
    let book = cx
        .book(json!({"max_codes_per_user": null, "claims_per_user_per_day": 2}))
        .await;
    let codes: Vec<String> = (0..5).map(|i| format!("D{i}")).collect();
    cx.store.add_codes(book.id, codes, at(0), None).await.unwrap();
    cx.claim(&book, "alice", at(0)).await.unwrap();
    cx.claim(&book, "alice", at(1)).await.unwrap();
    assert_eq!(
        cx.claim(&book, "alice", at(2)).await.unwrap_err(),
        CouponError::DailyLimitReached
    );
    // T0 is noon UTC: twelve hours later is the next UTC day.
    cx.claim(&book, "alice", at(12 * 3600)).await.unwrap();
}

pub async fn a_specific_code_is_claimed_once(cx: Ctx) {
    let book = cx.book(json!({})).await;
    cx.store
        .add_codes(book.id, vec!["PICK-ME".into(), "OTHER".into()], at(0), None)
        .await
        .unwrap();
    let claimed = cx.claim_code(" pick-me ", "alice", at(1)).await.unwrap();
    assert_eq!(claimed.code.code, "PICK-ME");
    assert_eq!(
        cx.claim_code("PICK-ME", "bob", at(2)).await.unwrap_err(),
        CouponError::CodeTaken
    );
    assert_eq!(
        cx.claim_code("NOPE", "bob", at(2)).await.unwrap_err(),
        CouponError::NotFound("code")
    );
    // Alice's one code is her limit, whichever way she asks.
    assert_eq!(
        cx.claim_code("OTHER", "alice", at(3)).await.unwrap_err(),
        CouponError::UserLimitReached
    );
}

pub async fn shared_books_hand_out_instances(cx: Ctx) {
    let book = cx
        .book(json!({"code_mode": "shared", "code": "WELCOME10", "total_codes": 2}))
        .await;
    let a = cx.claim_code("welcome10", "alice", at(1)).await.unwrap();
    let b = cx.claim(&book, "bob", at(2)).await.unwrap();
    assert_eq!((a.code.code.as_str(), b.code.code.as_str()), ("WELCOME10", "WELCOME10"));
    assert_ne!(a.code.instance, b.code.instance);
    assert_eq!(
        cx.claim_code("WELCOME10", "alice", at(3)).await.unwrap_err(),
        CouponError::UserLimitReached
    );
    assert_eq!(
        cx.claim_code("WELCOME10", "carol", at(3)).await.unwrap_err(),
        CouponError::OutOfStock
    );
    let stats = cx.stats(book.id, at(4)).await;
    assert_eq!(
        (stats.total_generated, stats.total_assigned, stats.available),
        (2, 2, 0)
    );
    // Each holder locks and redeems their own instance of the one code.
    let lock = cx.lock("WELCOME10", "bob", at(5)).await.unwrap();
    let r = cx
        .redeem(
            crate::redeem_req("WELCOME10", "bob", Some("o1"), Some(1000), Some(lock.lock_id)),
            at(6),
        )
        .await
        .unwrap();
    assert_eq!(r.discount_applied, Some(100));
    cx.redeem(
        crate::redeem_req("WELCOME10", "alice", Some("o2"), Some(1000), None),
        at(7),
    )
    .await
    .unwrap();
}

pub async fn paused_archived_and_out_of_window_books_refuse_claims(cx: Ctx) {
    let book = cx
        .book(json!({"starts_at": "2026-06-01T12:00:10Z", "expires_at": "2026-06-01T12:01:00Z", "max_codes_per_user": null}))
        .await;
    cx.store
        .add_codes(book.id, vec!["W1".into(), "W2".into(), "W3".into()], at(0), None)
        .await
        .unwrap();
    assert_eq!(
        cx.claim(&book, "alice", at(9)).await.unwrap_err(),
        CouponError::NotStarted
    );
    cx.claim(&book, "alice", at(10)).await.unwrap();
    cx.claim(&book, "alice", at(60)).await.unwrap();
    assert_eq!(
        cx.claim(&book, "alice", at(61)).await.unwrap_err(),
        CouponError::Expired
    );

    let paused = BookPatch {
        status: Some(BookStatus::Paused),
        ..Default::default()
    };
    cx.store.update_book(book.id, paused, at(20), None).await.unwrap();
    assert_eq!(
        cx.claim(&book, "bob", at(30)).await.unwrap_err(),
        CouponError::BookInactive
    );
    assert_eq!(
        cx.claim_code("W3", "bob", at(30)).await.unwrap_err(),
        CouponError::BookInactive
    );
    // Paused stops claims only: what is held may still be locked.
    let mine = cx.store.user_codes("alice").await.unwrap();
    cx.lock(&mine[0].0.code, "alice", at(30)).await.unwrap();
    let archived = BookPatch {
        status: Some(BookStatus::Archived),
        ..Default::default()
    };
    cx.store.update_book(book.id, archived, at(31), None).await.unwrap();
    assert_eq!(
        cx.lock(&mine[1].0.code, "alice", at(32)).await.unwrap_err(),
        CouponError::BookInactive
    );
}

pub async fn lapsed_claims_return_to_the_pool(cx: Ctx) {
    let book = cx
        .book(json!({"claim_ttl_seconds": 60, "claims_per_user_per_day": 2}))
        .await;
    cx.store
        .add_codes(book.id, vec!["TTL1".into()], at(0), None)
        .await
        .unwrap();
    let first = cx.claim(&book, "alice", at(0)).await.unwrap();
    assert_eq!(
        cx.claim(&book, "bob", at(59)).await.unwrap_err(),
        CouponError::OutOfStock
    );
    let stats = cx.stats(book.id, at(60)).await;
    assert_eq!(
        (stats.total_assigned, stats.available),
        (0, 1),
        "lapsed at exactly the TTL"
    );
    assert_eq!(
        cx.lock("TTL1", "alice", at(60)).await.unwrap_err(),
        CouponError::NotAssignedToUser
    );

    let taken = cx.claim(&book, "bob", at(61)).await.unwrap();
    assert_eq!(
        (taken.code.id, taken.code.owner.as_deref()),
        (first.code.id, Some("bob"))
    );
    assert!(cx.store.user_codes("alice").await.unwrap().is_empty());

    // Alice's lapsed claim no longer counts toward max_codes_per_user but still counts today.
    cx.store
        .add_codes(book.id, vec!["TTL2".into(), "TTL3".into()], at(0), None)
        .await
        .unwrap();
    cx.claim(&book, "alice", at(62)).await.unwrap();
    assert_eq!(
        cx.claim(&book, "alice", at(200)).await.unwrap_err(),
        CouponError::DailyLimitReached
    );
}

pub async fn a_live_lock_keeps_a_claim_from_lapsing(cx: Ctx) {
    let book = cx.book(json!({"claim_ttl_seconds": 60, "lock_ttl_seconds": 120})).await;
    cx.store
        .add_codes(book.id, vec!["HOLD".into()], at(0), None)
        .await
        .unwrap();
    cx.claim(&book, "alice", at(0)).await.unwrap();
    let lock = cx.lock("HOLD", "alice", at(50)).await.unwrap();
    assert_eq!(lock.locked_until, at(170));
    assert_eq!(
        cx.claim(&book, "bob", at(100)).await.unwrap_err(),
        CouponError::OutOfStock
    );
    let r = cx
        .redeem(
            crate::redeem_req("HOLD", "alice", Some("o1"), Some(2000), Some(lock.lock_id)),
            at(169),
        )
        .await
        .unwrap();
    assert_eq!(r.final_price, Some(1800));
    // Redeemed codes never lapse.
    assert_eq!(
        cx.claim(&book, "bob", at(10_000)).await.unwrap_err(),
        CouponError::OutOfStock
    );
}

pub async fn a_batch_answers_each_request(cx: Ctx) {
    let book = cx.book(json!({})).await;
    cx.store
        .add_codes(book.id, vec!["B1".into(), "B2".into()], at(0), None)
        .await
        .unwrap();
    let req = |user: &str| ClaimRequest {
        target: ClaimTarget::Book(book.id),
        user_id: crate::user_id(user),
        metadata: Default::default(),
        key: None,
    };
    let answers = cx
        .backend
        .claim(vec![req("a"), req("a"), req("b"), req("c")], at(1))
        .await
        .unwrap();
    let codes: Vec<&str> = answers
        .iter()
        .map(|a| a.as_ref().map_or_else(|e| e.code(), |_| "ok"))
        .collect();
    assert_eq!(codes, vec!["ok", "user_limit_reached", "ok", "out_of_stock"]);
    assert_eq!(cx.stats(book.id, at(1)).await.total_assigned, 2);
}

pub async fn codes_claimed_by_name_leave_the_returned_queue(cx: Ctx) {
    let book = cx
        .book(json!({"claim_ttl_seconds": 60, "max_codes_per_user": null}))
        .await;
    cx.store
        .add_codes(book.id, vec!["Q1".into(), "Q2".into()], at(0), None)
        .await
        .unwrap();
    cx.claim(&book, "alice", at(0)).await.unwrap();
    cx.claim(&book, "alice", at(0)).await.unwrap();
    // Both claims lapsed: claiming Q1 by name returns them to the pool, queued to be dealt first,
    // and takes Q1 off the queue with it.
    cx.claim_code("Q1", "bob", at(60)).await.unwrap();
    let next = cx.claim(&book, "carol", at(61)).await.unwrap();
    assert_eq!(
        next.code.code, "Q2",
        "the free code is dealt, not the one taken by name"
    );
    assert_eq!(
        cx.claim(&book, "dave", at(62)).await.unwrap_err(),
        CouponError::OutOfStock
    );
}
