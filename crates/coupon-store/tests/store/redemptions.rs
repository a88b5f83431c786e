use coupon_core::{CodeState, CouponError};
use serde_json::json;
use uuid::Uuid;

use crate::{at, redeem_req, Ctx};

pub async fn locks_guard_redemptions(cx: Ctx) {
    let book = cx.book(json!({"lock_ttl_seconds": 300})).await;
    cx.store
        .add_codes(book.id, vec!["LOCKME".into()], at(0), None)
        .await
        .unwrap();
    cx.claim(&book, "alice", at(0)).await.unwrap();
    assert_eq!(
        cx.lock("LOCKME", "bob", at(1)).await.unwrap_err(),
        CouponError::NotAssignedToUser
    );
    assert_eq!(
        cx.lock("NOSUCH", "alice", at(1)).await.unwrap_err(),
        CouponError::NotFound("code")
    );
    let lock = cx.lock("lockme", "alice", at(1)).await.unwrap();
    assert_eq!(lock.locked_until, at(301));
    assert_eq!(
        cx.lock("LOCKME", "alice", at(2)).await.unwrap_err(),
        CouponError::Locked
    );
    let mine = cx.store.user_codes("alice").await.unwrap();
    assert_eq!(mine[0].0.state(&book, at(2)), CodeState::Locked);

    let without = redeem_req("LOCKME", "alice", Some("o1"), Some(1000), None);
    assert_eq!(cx.redeem(without, at(3)).await.unwrap_err(), CouponError::Locked);
    let wrong = redeem_req("LOCKME", "alice", Some("o1"), Some(1000), Some(Uuid::now_v7()));
    assert_eq!(cx.redeem(wrong, at(3)).await.unwrap_err(), CouponError::Locked);
    // After the hold runs out the code may be locked again; the old lock id is worthless.
    let relock = cx.lock("LOCKME", "alice", at(301)).await.unwrap();
    assert_ne!(relock.lock_id, lock.lock_id);
    let stale = redeem_req("LOCKME", "alice", Some("o1"), Some(1000), Some(lock.lock_id));
    assert_eq!(cx.redeem(stale, at(302)).await.unwrap_err(), CouponError::Locked);
    let ok = cx
        .redeem(
            redeem_req("LOCKME", "alice", Some("o1"), Some(1000), Some(relock.lock_id)),
            at(303),
        )
        .await
        .unwrap();
    assert_eq!((ok.discount_applied, ok.final_price), (Some(100), Some(900)));
    assert_eq!(
        cx.lock("LOCKME", "alice", at(304)).await.unwrap_err(),
        CouponError::AlreadyRedeemed
    );
}

pub async fn unlock_needs_a_live_lock(cx: Ctx) {
    let book = cx.book(json!({})).await;
    cx.store
        .add_codes(book.id, vec!["FREE".into()], at(0), None)
        .await
        .unwrap();
    cx.claim(&book, "alice", at(0)).await.unwrap();
    assert_eq!(
        cx.unlock("FREE", "alice", None, at(1)).await.unwrap_err(),
        CouponError::NotLocked
    );
    let lock = cx.lock("FREE", "alice", at(1)).await.unwrap();
    assert_eq!(
        cx.unlock("FREE", "bob", None, at(2)).await.unwrap_err(),
        CouponError::NotAssignedToUser
    );
    assert_eq!(
        cx.unlock("FREE", "alice", Some(Uuid::now_v7()), at(2))
            .await
            .unwrap_err(),
        CouponError::Locked
    );
    cx.unlock("FREE", "alice", Some(lock.lock_id), at(2)).await.unwrap();
    assert_eq!(
        cx.unlock("FREE", "alice", None, at(3)).await.unwrap_err(),
        CouponError::NotLocked
    );
    // Unlocked, the code redeems without any lock id.
    cx.redeem(redeem_req("FREE", "alice", None, None, None), at(4))
        .await
        .unwrap();
}

pub async fn repeated_redemptions_count_once(cx: Ctx) {
    let book = cx.book(json!({"max_redemptions_per_code": 3})).await;
    cx.store
        .add_codes(book.id, vec!["AGAIN".into()], at(0), None)
        .await
        .unwrap();
    cx.claim(&book, "alice", at(0)).await.unwrap();
    let first = cx
        .redeem(redeem_req("AGAIN", "alice", Some("order-1"), Some(5000), None), at(1))
        .await
        .unwrap();
    let repeat = cx
        .redeem(redeem_req("again", "alice", Some("order-1"), Some(5000), None), at(2))
        .await
        .unwrap();
    assert_eq!(first, repeat);
    let stats = cx.stats(book.id, at(3)).await;
    assert_eq!((stats.total_redemptions, stats.total_redeemed), (1, 0));
    let second = cx
        .redeem(redeem_req("AGAIN", "alice", Some("order-2"), Some(5000), None), at(4))
        .await
        .unwrap();
    assert_ne!(second.redemption_id, first.redemption_id);
}

pub async fn redemption_limits_hold(cx: Ctx) {
    let book = cx
        .book(json!({"max_codes_per_user": 3, "max_redemptions_per_user": 1,
                     "discount": {"type": "fixed_amount", "value": 700, "min_order_amount": 1000}}))
        .await;
    cx.store
        .add_codes(book.id, vec!["L1".into(), "L2".into()], at(0), None)
        .await
        .unwrap();
    cx.claim(&book, "alice", at(0)).await.unwrap();
    cx.claim(&book, "alice", at(0)).await.unwrap();
    assert_eq!(
        cx.redeem(redeem_req("L1", "alice", None, Some(999), None), at(1))
            .await
            .unwrap_err(),
        CouponError::MinOrderNotMet
    );
    let no_amount = cx
        .redeem(redeem_req("L1", "alice", None, None, None), at(1))
        .await
        .unwrap_err();
    assert_eq!(no_amount, CouponError::OrderAmountRequired);
    let r = cx
        .redeem(redeem_req("L1", "alice", Some("o"), Some(50_000), None), at(2))
        .await
        .unwrap();
    assert_eq!(
        (r.discount_applied, r.final_price, r.order_amount),
        (Some(700), Some(49_300), Some(50_000))
    );
    assert_eq!(
        cx.redeem(redeem_req("L1", "alice", Some("p"), Some(2000), None), at(3))
            .await
            .unwrap_err(),
        CouponError::AlreadyRedeemed
    );
    assert_eq!(
        cx.redeem(redeem_req("L2", "alice", Some("p"), Some(2000), None), at(3))
            .await
            .unwrap_err(),
        CouponError::UserLimitReached
    );
    assert_eq!(
        cx.redeem(redeem_req("L2", "bob", Some("p"), Some(2000), None), at(3))
            .await
            .unwrap_err(),
        CouponError::NotAssignedToUser
    );

    let expiring = cx.book(json!({"expires_at": "2026-06-01T12:00:10Z"})).await;
    cx.store
        .add_codes(expiring.id, vec!["EXP".into()], at(0), None)
        .await
        .unwrap();
    cx.claim(&expiring, "alice", at(0)).await.unwrap();
    assert_eq!(
        cx.redeem(redeem_req("EXP", "alice", None, None, None), at(11))
            .await
            .unwrap_err(),
        CouponError::Expired
    );
    let mine = cx.store.user_codes("alice").await.unwrap();
    let exp = mine.iter().find(|(c, _)| c.code == "EXP").unwrap();
    assert_eq!(exp.0.state(&exp.1, at(11)), CodeState::Expired);
}

pub async fn codes_usable_several_times(cx: Ctx) {
    let book = cx.book(json!({"max_redemptions_per_code": 2})).await;
    cx.store
        .add_codes(book.id, vec!["TWICE".into()], at(0), None)
        .await
        .unwrap();
    cx.claim(&book, "alice", at(0)).await.unwrap();
    cx.redeem(redeem_req("TWICE", "alice", Some("a"), None, None), at(1))
        .await
        .unwrap();
    let mine = cx.store.user_codes("alice").await.unwrap();
    assert_eq!(mine[0].0.state(&book, at(1)), CodeState::Active);
    cx.redeem(redeem_req("TWICE", "alice", Some("b"), None, None), at(2))
        .await
        .unwrap();
    assert_eq!(
        cx.redeem(redeem_req("TWICE", "alice", Some("c"), None, None), at(3))
            .await
            .unwrap_err(),
        CouponError::AlreadyRedeemed
    );
    let stats = cx.stats(book.id, at(4)).await;
    assert_eq!((stats.total_redeemed, stats.total_redemptions), (1, 2));
}

pub async fn stats_follow_the_lifecycle(cx: Ctx) {
    let book = cx
        .book(json!({"code_pattern": "S-*****", "total_codes": 5, "max_codes_per_user": null}))
        .await;
    let a = cx.claim(&book, "alice", at(0)).await.unwrap().code.code;
    let b = cx.claim(&book, "alice", at(0)).await.unwrap().code.code;
    cx.claim(&book, "bob", at(0)).await.unwrap();
    cx.lock(&a, "alice", at(1)).await.unwrap();
    cx.redeem(redeem_req(&b, "alice", None, None, None), at(2))
        .await
        .unwrap();
    let s = cx.stats(book.id, at(3)).await;
    assert_eq!(
        (
            s.total_generated,
            s.total_assigned,
            s.total_locked,
            s.total_redeemed,
            s.available
        ),
        (5, 3, 1, 1, 2)
    );
    let s = cx.stats(book.id, at(301)).await;
    assert_eq!(s.total_locked, 0, "locks run out with the clock");
}
