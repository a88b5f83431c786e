//! Many requests at once, each in its own transaction, as concurrent HTTP requests would be.

use std::sync::Arc;

use coupon_core::CouponError;
use futures::future::join_all;
use serde_json::json;

use crate::{at, redeem_req, Ctx};

fn tally<T>(results: &[Result<T, CouponError>]) -> (usize, Vec<&'static str>) {
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let mut errors: Vec<&'static str> = results
        .iter()
        .filter_map(|r| r.as_ref().err().map(CouponError::code))
        .collect();
    errors.dedup();
    (ok, errors)
}

pub async fn concurrent_claims_never_oversell(cx: Ctx) {
    let book = cx.book(json!({"code_pattern": "RACE-*****", "total_codes": 10})).await;
    let cx = Arc::new(cx);
    let results = join_all((0..100).map(|i| {
        let (cx, book) = (cx.clone(), book.clone());
        tokio::spawn(async move { cx.claim(&book, &format!("user-{i}"), at(1)).await })
    }))
    .await;
    let results: Vec<_> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(tally(&results), (10, vec!["out_of_stock"]));
    let mut codes: Vec<_> = results.iter().flatten().map(|c| c.code.code.clone()).collect();
    codes.sort();
    codes.dedup();
    assert_eq!(codes.len(), 10, "ten distinct codes");
    let stats = cx.store.book_stats(book.id, at(2)).await.unwrap();
    assert_eq!((stats.total_assigned, stats.available), (10, 0));
}

pub async fn concurrent_redemptions_of_one_code_succeed_once(cx: Ctx) {
    let book = cx.book(json!({})).await;
    cx.store.add_codes(book.id, vec!["ONCE".into()]).await.unwrap();
    cx.claim(&book, "alice", at(0)).await.unwrap();
    let cx = Arc::new(cx);
    let results = join_all((0..50).map(|i| {
        let cx = cx.clone();
        tokio::spawn(async move {
            cx.redeem(
                redeem_req("ONCE", "alice", Some(&format!("order-{i}")), Some(1000), None),
                at(1),
            )
            .await
        })
    }))
    .await;
    let results: Vec<_> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(tally(&results), (1, vec!["already_redeemed"]));
    assert_eq!(cx.store.book_stats(book.id, at(2)).await.unwrap().total_redemptions, 1);
}

pub async fn concurrent_claims_by_one_user_respect_the_limit(cx: Ctx) {
    let book = cx
        .book(json!({"code_pattern": "ONE-*****", "total_codes": 60, "max_codes_per_user": 1}))
        .await;
    let cx = Arc::new(cx);
    let results = join_all((0..50).map(|_| {
        let (cx, book) = (cx.clone(), book.clone());
        tokio::spawn(async move { cx.claim(&book, "alice", at(1)).await })
    }))
    .await;
    let results: Vec<_> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(tally(&results), (1, vec!["user_limit_reached"]));
    assert_eq!(cx.store.user_codes("alice").await.unwrap().len(), 1);
}

pub async fn concurrent_repeats_of_one_redemption_count_once(cx: Ctx) {
    let book = cx.book(json!({"max_redemptions_per_code": 100})).await;
    cx.store.add_codes(book.id, vec!["SAME".into()]).await.unwrap();
    cx.claim(&book, "alice", at(0)).await.unwrap();
    let cx = Arc::new(cx);
    let results = join_all((0..20).map(|_| {
        let cx = cx.clone();
        tokio::spawn(async move {
            cx.redeem(redeem_req("SAME", "alice", Some("order-1"), Some(1000), None), at(1))
                .await
        })
    }))
    .await;
    let results: Vec<_> = results.into_iter().map(|r| r.unwrap().unwrap()).collect();
    assert!(
        results.iter().all(|r| r == &results[0]),
        "every repeat answers the first redemption"
    );
    assert_eq!(cx.store.book_stats(book.id, at(2)).await.unwrap().total_redemptions, 1);
}
