//! Idempotency keys: a keyed request acts once; a retry gets the first answer again.

use coupon_core::{CouponError, Timestamp};
use coupon_store::{ClaimRequest, ClaimTarget, Claimed, Key, Keyed, Reply, StoreError};
use serde_json::json;

use crate::{at, Ctx};

fn key(scope: &str, key: &str, fingerprint: &str, at: Timestamp) -> Key {
    Key {
        scope: scope.into(),
        key: key.into(),
        fingerprint: fingerprint.into(),
        at,
    }
}

/// Answers a claim with the code it got, or the refusal's code.
fn claim_keyed(book: uuid::Uuid, user: &str, key: Key) -> ClaimRequest {
    let render = |answer: Result<&Claimed, &CouponError>| match answer {
        Ok(c) => Reply {
            status: 201,
            body: json!({"code": c.code.code}).to_string(),
        },
        Err(e) => Reply {
            status: 409,
            body: json!({"code": e.code()}).to_string(),
        },
    };
    ClaimRequest {
        target: ClaimTarget::Book(book),
        user_id: crate::user_id(user),
        metadata: Default::default(),
        key: Some(Keyed::new(key, render)),
    }
}

pub async fn a_keyed_claim_acts_once(cx: Ctx) {
    let book = cx
        .book(json!({"code_pattern": "KEY-*****", "total_codes": 5, "max_codes_per_user": 2}))
        .await;
    let first = cx
        .store
        .claim(claim_keyed(book.id, "u", key("u", "k1", "f1", at(1))), at(1))
        .await;
    let code = first.expect("claimed").code.code;
    let again = cx
        .store
        .claim(claim_keyed(book.id, "u", key("u", "k1", "f1", at(2))), at(2))
        .await;
    match again {
        Err(StoreError::Replayed(reply)) => {
            assert_eq!(
                reply,
                Reply {
                    status: 201,
                    body: json!({"code": code}).to_string()
                }
            )
        }
        other => panic!("expected the first answer again, got {other:?}"),
    }
    let reused = cx
        .store
        .claim(claim_keyed(book.id, "u", key("u", "k1", "f2", at(3))), at(3))
        .await;
    assert!(matches!(reused, Err(StoreError::KeyReused)), "{reused:?}");
    assert_eq!(cx.stats(book.id, at(3)).await.total_assigned, 1);

    // A refusal is recorded and answered again, whatever changed since.
    cx.store
        .claim(claim_keyed(book.id, "u", key("u", "k2", "f", at(4))), at(4))
        .await
        .expect("second");
    let refused = cx
        .store
        .claim(claim_keyed(book.id, "u", key("u", "k3", "f", at(5))), at(5))
        .await;
    assert!(
        matches!(refused, Err(StoreError::Rejected(CouponError::UserLimitReached))),
        "{refused:?}"
    );
    let replay = cx
        .store
        .claim(claim_keyed(book.id, "u", key("u", "k3", "f", at(6))), at(6))
        .await;
    match replay {
        Err(StoreError::Replayed(reply)) => assert_eq!(reply.status, 409),
        other => panic!("expected the refusal again, got {other:?}"),
    }

    // Keys past their retention are purged, and the key is free again.
    assert_eq!(cx.store.purge_keys(at(5)).await.unwrap(), 2);
    assert_eq!(cx.store.purge_keys(at(100)).await.unwrap(), 1);
}

/// A keyed claim on a sold-out book is the database's answer, recorded, never the claim engine's
/// memory: an earlier attempt under the key may still be committing a claim.
pub async fn a_keyed_claim_on_a_sold_out_book_is_recorded(cx: Ctx) {
    let book = cx.book(json!({"code_pattern": "GONE-*****", "total_codes": 1})).await;
    cx.claim(&book, "first", at(1)).await.expect("the one code");
    // Without a key, the sold-out answer may come from memory; it teaches the engine the book is gone.
    assert_eq!(
        cx.claim(&book, "second", at(1)).await.unwrap_err(),
        CouponError::OutOfStock
    );
    // The engine's stock check runs after that answer; let it land, so that memory would answer.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let keyed = cx
        .store
        .claim(claim_keyed(book.id, "third", key("third", "late", "f", at(2))), at(2))
        .await;
    assert!(
        matches!(keyed, Err(StoreError::Rejected(CouponError::OutOfStock))),
        "{keyed:?}"
    );
    let again = cx
        .store
        .claim(claim_keyed(book.id, "third", key("third", "late", "f", at(3))), at(3))
        .await;
    match again {
        Err(StoreError::Replayed(reply)) => assert_eq!(reply.body, json!({"code": "out_of_stock"}).to_string()),
        other => panic!("expected the recorded refusal, got {other:?}"),
    }
}
