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
    let stats = cx.stats(book.id, at(2)).await;
    assert_eq!((stats.total_assigned, stats.available), (10, 0));
}

pub async fn concurrent_redemptions_of_one_code_succeed_once(cx: Ctx) {
    let book = cx.book(json!({})).await;
    cx.store
        .add_codes(book.id, vec!["ONCE".into()], at(0), None)
        .await
        .unwrap();
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
    assert_eq!(cx.stats(book.id, at(2)).await.total_redemptions, 1);
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
    cx.store
        .add_codes(book.id, vec!["SAME".into()], at(0), None)
        .await
        .unwrap();
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
    assert_eq!(cx.stats(book.id, at(2)).await.total_redemptions, 1);
}

/// The codes a user holds at `now` (lapsed claims left out).
async fn held_now(cx: &Ctx, user: &str, now: coupon_core::Timestamp) -> Vec<coupon_core::CodeInstance> {
    let codes = cx.store.user_codes(user).await.unwrap().into_iter();
    codes.map(|(c, _)| c).filter(|c| c.is_held_by(user, now)).collect()
}

/// Thirty users at once claim, lock, unlock and redeem at random over a small book, then every
/// invariant is checked through the store: supply, per-user limits, one owner per code, and
/// redemption counts that match the codes used.
pub async fn random_concurrent_traffic_keeps_every_invariant(cx: Ctx) {
    use rand::{Rng, SeedableRng};

    let book = cx
        .book(
            json!({"code_pattern": "MIX-*****", "total_codes": 20, "max_codes_per_user": 2,
                     "max_redemptions_per_user": 1, "claim_ttl_seconds": 30}),
        )
        .await;
    let cx = Arc::new(cx);
    let tasks = (0..30u64).map(|u| {
        let (cx, book) = (cx.clone(), book.clone());
        tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(u);
            let user = format!("user-{u}");
            let mut locks = Vec::new();
            for step in 0..12 {
                // Time moves forward for everyone, so claims lapse and locks run out along the way.
                let now = at(step * 10);
                let mine: Vec<String> = held_now(&cx, &user, now).await.into_iter().map(|c| c.code).collect();
                match (rng.random_range(0..4), mine.first()) {
                    (0, _) | (_, None) => {
                        let _ = cx.claim(&book, &user, now).await;
                    }
                    (1, Some(code)) => {
                        if let Ok(lock) = cx.lock(code, &user, now).await {
                            locks.push(lock.lock_id);
                        }
                    }
                    (2, Some(code)) => {
                        let _ = cx.unlock(code, &user, None, now).await;
                    }
                    (_, Some(code)) => {
                        let order = format!("{user}-{step}");
                        let _ = cx
                            .redeem(
                                redeem_req(code, &user, Some(&order), Some(1000), locks.last().copied()),
                                now,
                            )
                            .await;
                    }
                }
            }
        })
    });
    for t in join_all(tasks).await {
        t.unwrap();
    }

    let now = at(120);
    let stats = cx.stats(book.id, now).await;
    assert!(stats.total_assigned <= 20 && stats.available >= 0, "{stats:?}");
    assert_eq!(stats.total_generated, 20);
    let mut owners = std::collections::HashMap::new();
    let mut redeemed = 0;
    for u in 0..30 {
        let user = format!("user-{u}");
        let held = held_now(&cx, &user, now).await;
        assert!(held.len() <= 2, "{user} holds {}", held.len());
        let used: i64 = held.iter().map(|c| c.redemptions).sum();
        assert!(used <= 1, "{user} redeemed {used} times");
        redeemed += used;
        for c in held {
            assert!(
                owners.insert(c.code.clone(), user.clone()).is_none(),
                "{} has two owners",
                c.code
            );
        }
    }
    assert_eq!(owners.len() as i64, stats.total_assigned);
    assert_eq!(redeemed, stats.total_redemptions);
    assert_eq!(
        stats.total_redeemed, stats.total_redemptions,
        "each code is used at most once"
    );
    let pool = "SELECT CAST(coalesce(sum(abs(pool - (SELECT count(*) FROM codes \
                WHERE book_id = books.id AND status = 'available'))), 0) AS BIGINT) FROM books";
    assert_eq!(cx.db.scalar(pool).await, 0, "the pool counter follows the codes");
}
