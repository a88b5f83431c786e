//! The claim engine over each backend: batches form under load, a failed batch fails nobody
//! innocent, and a sold-out book is answered from memory until stock comes back.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use coupon_core::{Book, CouponError, Timestamp};
use coupon_store::testing::{Backend, TestDb};
use coupon_store::{
    Background, BatchResult, ClaimBatches, ClaimRequest, ClaimTarget, Claimed, Coupons, LockRequest, Stock, Store,
    StoreError,
};
use serde_json::json;
use uuid::Uuid;

use crate::{answer, at, Ctx};

/// A real store that counts the claim batches and stock checks reaching it, and can refuse
/// every batch of more than one request (as a conflict with another instance would). The
/// engine's checkout batches go to the store itself.
struct Counted {
    inner: Store,
    claim_batches: AtomicUsize,
    stock_checks: AtomicUsize,
    fail_shared_batches: bool,
}

#[async_trait]
impl ClaimBatches for Counted {
    async fn claim(&self, batch: Vec<ClaimRequest>, now: Timestamp) -> BatchResult<Claimed> {
        self.claim_batches.fetch_add(1, Ordering::SeqCst);
        if self.fail_shared_batches && batch.len() > 1 {
            return Err(StoreError::Conflict("injected: batches of several fail"));
        }
        self.inner.claim(batch, now).await
    }
    async fn stock(&self, book_id: Uuid, now: Timestamp) -> Result<(Book, Stock), StoreError> {
        let stock = self.inner.stock(book_id, now).await;
        self.stock_checks.fetch_add(1, Ordering::SeqCst);
        stock
    }
}

struct Bench {
    counted: Arc<Counted>,
    cx: Ctx,
}

async fn counted(backend: Backend, fail_shared_batches: bool) -> Bench {
    let db = TestDb::new(backend).await;
    let counted = Arc::new(Counted {
        inner: db.store().await,
        claim_batches: AtomicUsize::new(0),
        stock_checks: AtomicUsize::new(0),
        fail_shared_batches,
    });
    let real = counted.inner.clone();
    let store = Coupons::batched_with(
        real.clone(),
        counted.clone(),
        Arc::new(real.clone()),
        &Background::new(),
    )
    .expect("engine starts");
    Bench {
        cx: Ctx {
            store,
            backend: real,
            db,
        },
        counted,
    }
}

/// `n` claims on the book at once, each by its own user; the answers' codes.
async fn rush(store: &Coupons, book: Uuid, n: usize, now: Timestamp) -> Vec<Result<Claimed, CouponError>> {
    let claims = (0..n).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            let req = ClaimRequest {
                target: ClaimTarget::Book(book),
                user_id: crate::user_id(&format!("user-{i}")),
                metadata: Default::default(),
                key: None,
            };
            answer(store.claim(req, now).await)
        })
    });
    let mut answers = Vec::with_capacity(n);
    for claim in futures::future::join_all(claims).await {
        answers.push(claim.expect("claim task"));
    }
    answers
}

fn count(answers: &[Result<Claimed, CouponError>]) -> (usize, usize) {
    let ok = answers.iter().filter(|a| a.is_ok()).count();
    let out = answers
        .iter()
        .filter(|a| a.as_ref().err() == Some(&CouponError::OutOfStock))
        .count();
    (ok, out)
}

/// Waits until the engine's stock checks have finished (none completed for a while).
async fn settle_checks(b: &Bench) {
    let mut seen = usize::MAX;
    while b.counted.stock_checks.load(Ordering::SeqCst) != seen {
        seen = b.counted.stock_checks.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn concurrent_claims_share_commits(backend: Backend) {
    let b = counted(backend, false).await;
    let book =
        b.cx.book(json!({"code_pattern": "RUSH-*****", "total_codes": 100}))
            .await;
    let answers = rush(&b.cx.store, book.id, 300, at(1)).await;
    assert_eq!(count(&answers), (100, 200));
    let mut codes: Vec<&str> = answers.iter().flatten().map(|c| c.code.code.as_str()).collect();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), 100, "no code went out twice");
    assert_eq!(b.cx.stats(book.id, at(1)).await.total_assigned, 100);
    let batches = b.counted.claim_batches.load(Ordering::SeqCst);
    assert!(batches < 300, "300 claims arriving together ran in {batches} batches");
}

pub async fn a_failed_batch_is_retried_request_by_request(backend: Backend) {
    let b = counted(backend, true).await;
    let book =
        b.cx.book(json!({"code_pattern": "SPLIT-*****", "total_codes": 40}))
            .await;
    let answers = rush(&b.cx.store, book.id, 60, at(1)).await;
    assert_eq!(count(&answers), (40, 20), "every request answered on its own merits");
    assert_eq!(b.cx.stats(book.id, at(1)).await.total_assigned, 40);
}

pub async fn sold_out_books_are_answered_from_memory(backend: Backend) {
    let b = counted(backend, false).await;
    let book = b.cx.book(json!({})).await;
    let codes = (1..=5).map(|i| format!("GONE{i}")).collect();
    b.cx.store.add_codes(book.id, codes, at(0), None).await.unwrap();
    assert_eq!(count(&rush(&b.cx.store, book.id, 6, at(1)).await), (5, 1));
    settle_checks(&b).await;
    let before = b.counted.claim_batches.load(Ordering::SeqCst);
    assert_eq!(count(&rush(&b.cx.store, book.id, 200, at(2)).await), (0, 200));
    assert_eq!(
        b.counted.claim_batches.load(Ordering::SeqCst),
        before,
        "no claim reached the database"
    );
    // Supply added through the engine reopens the book at once.
    b.cx.store
        .add_codes(book.id, vec!["MORE1".into()], at(0), None)
        .await
        .unwrap();
    let again = b.cx.claim(&book, "late", at(3)).await.unwrap();
    assert_eq!(again.code.code, "MORE1");
}

pub async fn lapsed_claims_reopen_a_sold_out_book(backend: Backend) {
    let b = counted(backend, false).await;
    let book =
        b.cx.book(json!({"code_pattern": "TTL-*****", "total_codes": 2, "claim_ttl_seconds": 60}))
            .await;
    assert_eq!(count(&rush(&b.cx.store, book.id, 3, at(0)).await), (2, 1));
    settle_checks(&b).await;
    assert_eq!(
        b.cx.claim(&book, "early", at(59)).await.unwrap_err(),
        CouponError::OutOfStock
    );
    // The stock check learned when the first claim can lapse: from then on claims go through.
    assert!(b.cx.claim(&book, "on-time", at(60)).await.is_ok());
}

/// A rollback gives a sold-out book's code its use back, and its claim can lapse again: the
/// engine's memory of the book must not outlive that.
pub async fn a_rollback_reopens_a_sold_out_book(backend: Backend) {
    let b = counted(backend, false).await;
    let book = b.cx.book(json!({"claim_ttl_seconds": 60})).await;
    b.cx.store
        .add_codes(book.id, vec!["BACK".into()], at(0), None)
        .await
        .unwrap();
    b.cx.claim(&book, "alice", at(0)).await.unwrap();
    let used =
        b.cx.redeem(crate::redeem_req("BACK", "alice", Some("o1"), None, None), at(1))
            .await
            .unwrap();
    assert_eq!(
        b.cx.claim(&book, "bob", at(2)).await.unwrap_err(),
        CouponError::OutOfStock
    );
    // The stock check finds nothing that could lapse: every held code is redeemed.
    settle_checks(&b).await;
    b.cx.rollback(used.redemption_id, at(3)).await.unwrap();
    // The claim starts afresh from the rollback and lapses a minute later.
    assert_eq!(
        b.cx.claim(&book, "bob", at(62)).await.unwrap_err(),
        CouponError::OutOfStock
    );
    let reclaimed = b.cx.claim(&book, "bob", at(63)).await.unwrap();
    assert_eq!(reclaimed.code.code, "BACK");
}

/// Two instances on one PostgreSQL database: supply added through one reaches the other's
/// sold-out book within a stock check.
pub async fn another_instance_restocks_a_sold_out_book() {
    let db = TestDb::new(Backend::Postgres).await;
    let background = Background::new();
    let one = db.store().await;
    let first = Coupons::batched(one.clone(), one.clone(), &background).expect("engine starts");
    let two = coupon_store::connect(&db.url, 2).await.unwrap();
    let second = Coupons::batched(two.clone(), two, &background).expect("engine starts");
    let cx = Ctx {
        store: first.clone(),
        backend: one,
        db,
    };
    let book = cx.book(json!({})).await;
    first
        .add_codes(book.id, vec!["FROM-ONE".into()], at(0), None)
        .await
        .unwrap();
    assert_eq!(count(&rush(&first, book.id, 2, at(1)).await), (1, 1));
    second
        .add_codes(book.id, vec!["FROM-TWO".into()], at(0), None)
        .await
        .unwrap();
    let mut claimed = None;
    for _ in 0..200 {
        let late = ClaimRequest {
            target: ClaimTarget::Book(book.id),
            user_id: crate::user_id("late"),
            metadata: Default::default(),
            key: None,
        };
        match answer(first.claim(late, at(2)).await) {
            Ok(c) => {
                claimed = Some(c);
                break;
            }
            Err(e) => assert_eq!(e, CouponError::OutOfStock),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        claimed.expect("the first instance saw the new code").code.code,
        "FROM-TWO"
    );
}

/// Shutdown takes no new work but answers every request already queued: the batches they joined
/// still commit, and only then has the engine stopped.
pub async fn shutdown_answers_every_queued_request(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let background = Background::new();
    let cx = Ctx {
        store: Coupons::batched(store.clone(), store.clone(), &background).expect("engine starts"),
        backend: store,
        db,
    };
    let book = cx.book(json!({"code_pattern": "BYE-*****", "total_codes": 50})).await;
    let claims = (0..200).map(|i| {
        let req = ClaimRequest {
            target: ClaimTarget::Book(book.id),
            user_id: crate::user_id(&format!("user-{i}")),
            metadata: Default::default(),
            key: None,
        };
        cx.store.claim(req, at(1))
    });
    let mut claims = std::pin::pin!(futures::future::join_all(claims));
    // One poll queues every claim; shutdown begins before any is answered.
    assert!(futures::poll!(claims.as_mut()).is_pending());
    let (answers, ()) = tokio::join!(claims, background.shutdown());
    let answers: Vec<_> = answers.into_iter().map(answer).collect();
    assert_eq!(
        count(&answers),
        (50, 150),
        "every queued claim was decided by the database"
    );
    assert_eq!(cx.stats(book.id, at(1)).await.total_assigned, 50);
    // A claim on this sold-out book may still be answered from memory; a lock needs a batch.
    let code = answers
        .iter()
        .flatten()
        .next()
        .expect("a claimed code")
        .code
        .code
        .clone();
    let late = LockRequest {
        code: coupon_core::CodeText::parse(&code).unwrap(),
        user_id: crate::user_id("user-0"),
        key: None,
    };
    assert!(
        matches!(cx.store.lock(late, at(2)).await, Err(StoreError::Task(_))),
        "after shutdown, requests are refused rather than queued forever"
    );
}
