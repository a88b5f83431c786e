//! Claims decided together: a batch answers as its requests would one at a time, deals returned
//! codes first, and tells the sold-out fast path the truth.

use coupon_core::CodeText;
use coupon_store::{CheckoutBatches, ClaimBatches, ClaimRequest, ClaimTarget, Stock};
use serde_json::json;
use uuid::Uuid;

use crate::{at, Ctx};

fn any(book: Uuid, user: &str) -> ClaimRequest {
    ClaimRequest {
        target: ClaimTarget::Book(book),
        user_id: crate::user_id(user),
        metadata: Default::default(),
        key: None,
    }
}

fn named(code: &str, user: &str) -> ClaimRequest {
    ClaimRequest {
        target: ClaimTarget::Code(CodeText::parse(code).unwrap()),
        user_id: crate::user_id(user),
        metadata: Default::default(),
        key: None,
    }
}

/// Each answer as its code (`ok:<CODE>` for a claim).
async fn answers(cx: &Ctx, batch: Vec<ClaimRequest>, at_s: i64) -> Vec<String> {
    let out = cx.backend.claim(batch, at(at_s)).await.expect("store works");
    out.into_iter()
        .map(|a| a.map_or_else(|e| e.code().to_owned(), |c| format!("ok:{}", c.code.code)))
        .collect()
}

pub async fn returned_codes_are_dealt_before_new_ones(cx: Ctx) {
    let book = cx.book(json!({"claim_ttl_seconds": 60})).await;
    let codes: Vec<String> = ["R1", "R2", "R3", "R4"].map(String::from).to_vec();
    cx.store.add_codes(book.id, codes, at(0), None).await.unwrap();
    assert_eq!(
        answers(&cx, vec![any(book.id, "a"), any(book.id, "b")], 0).await,
        ["ok:R1", "ok:R2"]
    );
    // R1 and R2 lapse; the next batch gets them back before R3 and R4.
    let got = answers(&cx, vec![any(book.id, "c"), any(book.id, "d"), any(book.id, "e")], 60).await;
    assert_eq!(got, ["ok:R1", "ok:R2", "ok:R3"]);
    let stats = cx.stats(book.id, at(60)).await;
    assert_eq!((stats.total_assigned, stats.available), (3, 1));
    // The holders who lost their codes may claim again: the lapse gave their slot back.
    assert_eq!(
        answers(&cx, vec![any(book.id, "a"), any(book.id, "b")], 61).await,
        ["ok:R4", "out_of_stock"]
    );
    assert_eq!(
        cx.backend.stock(book.id, at(61)).await.unwrap().1,
        Stock::SoldOut {
            next_lapse: Some(at(120))
        }
    );
    assert_eq!(
        cx.backend.stock(book.id, at(120)).await.unwrap().1,
        Stock::Available,
        "claims from t=60 lapse at t=120"
    );
}

pub async fn a_batch_answers_as_one_request_at_a_time(cx: Ctx) {
    let book = cx
        .book(json!({"max_codes_per_user": 2, "claims_per_user_per_day": 2}))
        .await;
    let other = cx.book(json!({"max_codes_per_user": 1})).await;
    let codes: Vec<String> = (1..=5).map(|i| format!("M{i}")).collect();
    cx.store.add_codes(book.id, codes, at(0), None).await.unwrap();
    cx.store
        .add_codes(other.id, vec!["O1".into()], at(0), None)
        .await
        .unwrap();
    let batch = vec![
        any(book.id, "a"),
        named("M5", "b"),
        any(book.id, "a"),
        any(book.id, "a"),
        any(other.id, "a"),
        any(other.id, "b"),
        named("M5", "c"),
        named("NOPE", "c"),
        any(book.id, "b"),
        any(book.id, "c"),
        any(book.id, "d"),
    ];
    let got = answers(&cx, batch, 0).await;
    assert_eq!(
        got,
        [
            "ok:M1",
            "ok:M5",
            "ok:M2",
            "user_limit_reached",
            "ok:O1",
            "out_of_stock",
            "code_taken",
            "not_found",
            "ok:M3",
            "ok:M4",
            "out_of_stock",
        ]
    );
    let mine = cx.store.user_codes("a").await.unwrap();
    assert_eq!(mine.len(), 3);
    // The counters were written: a and b are at their limit (b's failed named claim did not count).
    cx.store
        .add_codes(book.id, vec!["M6".into(), "M7".into()], at(0), None)
        .await
        .unwrap();
    assert_eq!(
        answers(&cx, vec![any(book.id, "a"), any(book.id, "b"), any(book.id, "c")], 1).await,
        ["user_limit_reached", "user_limit_reached", "ok:M6"]
    );
    assert_eq!(cx.stats(book.id, at(1)).await.total_assigned, 6);
}

pub async fn codes_taken_by_name_ahead_of_the_cursor_are_skipped(cx: Ctx) {
    let book = cx.book(json!({})).await;
    let codes: Vec<String> = ["K1", "K2", "K3"].map(String::from).to_vec();
    cx.store.add_codes(book.id, codes, at(0), None).await.unwrap();
    assert_eq!(answers(&cx, vec![named("K2", "x")], 0).await, ["ok:K2"]);
    assert_eq!(cx.backend.stock(book.id, at(0)).await.unwrap().1, Stock::Available);
    let got = answers(&cx, vec![any(book.id, "a"), any(book.id, "b"), any(book.id, "c")], 1).await;
    assert_eq!(got, ["ok:K1", "ok:K3", "out_of_stock"]);
    assert_eq!(
        cx.backend.stock(book.id, at(1)).await.unwrap().1,
        Stock::SoldOut { next_lapse: None }
    );
    // Supply added later is dealt from where the cursor stopped.
    cx.store
        .add_codes(book.id, vec!["K4".into()], at(0), None)
        .await
        .unwrap();
    assert_eq!(cx.backend.stock(book.id, at(2)).await.unwrap().1, Stock::Available);
    assert_eq!(
        answers(&cx, vec![any(book.id, "c"), any(book.id, "d")], 2).await,
        ["ok:K4", "out_of_stock"]
    );
}

pub async fn a_redemption_batch_never_uses_a_code_twice(cx: Ctx) {
    let book = cx.book(json!({})).await;
    cx.store
        .add_codes(book.id, vec!["P1".into(), "P2".into()], at(0), None)
        .await
        .unwrap();
    answers(&cx, vec![any(book.id, "a"), any(book.id, "b")], 0).await;
    let batch = vec![
        crate::redeem_req("P1", "a", Some("o1"), Some(1000), None),
        crate::redeem_req("P2", "b", Some("o2"), Some(1000), None),
        crate::redeem_req("P1", "a", Some("o3"), Some(1000), None),
    ];
    // A backend may answer the repeat as used, or fail the whole batch (nothing written) for the
    // engine to run its requests one by one; it never redeems P1 twice.
    match cx.backend.redeem(batch, at(1)).await {
        Ok(answers) => {
            assert!(answers[0].is_ok() && answers[1].is_ok());
            assert_eq!(
                answers[2].as_ref().unwrap_err(),
                &coupon_core::CouponError::AlreadyRedeemed
            );
            assert_eq!(cx.stats(book.id, at(1)).await.total_redemptions, 2);
        }
        Err(_) => assert_eq!(cx.stats(book.id, at(1)).await.total_redemptions, 0),
    }
}
