//! A refused request leaves nothing behind: the scripts decide before they write, and a refusal is
//! an answer, not a failure, so its batch commits whatever it wrote.

use coupon_core::CouponError;
use serde_json::json;

use crate::{at, redeem_req, Ctx};

/// Asserts that `$request` is refused with `$error` and that no row of any table changed.
macro_rules! refused {
    ($cx:expr, $request:expr, $error:expr) => {{
        let before = $cx.db.snapshot().await;
        assert_eq!($request.await.unwrap_err(), $error, "{}", stringify!($request));
        assert_eq!(
            $cx.db.snapshot().await,
            before,
            "{} wrote something",
            stringify!($request)
        );
    }};
}

pub async fn refused_requests_change_no_row(cx: Ctx) {
    let book = cx
        .book(json!({
            "discount": {"type": "fixed_amount", "value": 500, "min_order_amount": 2000},
            "max_redemptions_per_user": 1,
        }))
        .await;
    cx.store
        .add_codes(book.id, vec!["MINE".into(), "SPENT".into()], at(0), None)
        .await
        .unwrap();
    cx.claim(&book, "alice", at(0)).await.unwrap();
    cx.claim(&book, "bob", at(0)).await.unwrap();
    let alice = cx.store.user_codes("alice").await.unwrap()[0].0.code.clone();
    let bob = cx.store.user_codes("bob").await.unwrap()[0].0.code.clone();
    let shared = cx
        .book(json!({"code_mode": "shared", "code": "ALL", "total_codes": 1}))
        .await;
    cx.claim(&shared, "carol", at(0)).await.unwrap();

    // Claims: sold out, at the user's limit, a code held by another, a paused book.
    refused!(cx, cx.claim(&book, "dave", at(1)), CouponError::OutOfStock);
    refused!(cx, cx.claim(&shared, "carol", at(1)), CouponError::UserLimitReached);
    refused!(cx, cx.claim_code(&alice, "dave", at(1)), CouponError::CodeTaken);
    refused!(
        cx,
        cx.claim_code("NOSUCH", "dave", at(1)),
        CouponError::NotFound("code")
    );

    // Locks and unlocks: not theirs, not locked, already locked.
    refused!(cx, cx.lock(&alice, "dave", at(2)), CouponError::NotAssignedToUser);
    refused!(cx, cx.unlock(&alice, "alice", None, at(2)), CouponError::NotLocked);
    cx.lock(&alice, "alice", at(2)).await.unwrap();
    refused!(cx, cx.lock(&alice, "alice", at(3)), CouponError::Locked);

    // Redemptions: by a user with no counter row yet, without the live lock's id, below the
    // minimum, and of a code used up.
    let by_stranger = redeem_req(&bob, "dave", Some("o1"), Some(5000), None);
    refused!(cx, cx.redeem(by_stranger, at(4)), CouponError::NotAssignedToUser);
    let unlocked = redeem_req(&alice, "alice", Some("o1"), Some(5000), None);
    refused!(cx, cx.redeem(unlocked, at(4)), CouponError::Locked);
    let small = redeem_req(&bob, "bob", Some("o1"), Some(100), None);
    refused!(cx, cx.redeem(small, at(4)), CouponError::MinOrderNotMet);
    cx.redeem(redeem_req(&bob, "bob", Some("o1"), Some(5000), None), at(5))
        .await
        .unwrap();
    let again = redeem_req(&bob, "bob", Some("o2"), Some(5000), None);
    refused!(cx, cx.redeem(again, at(6)), CouponError::AlreadyRedeemed);

    // Rollbacks: of a redemption that does not exist.
    refused!(
        cx,
        cx.rollback(uuid::Uuid::now_v7(), at(7)),
        CouponError::NotFound("redemption")
    );
}
