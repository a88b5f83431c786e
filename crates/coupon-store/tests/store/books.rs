use coupon_core::{BookPatch, BookStatus, CodePattern, CouponError};
use coupon_store::{SearchQuery, StoreError};
use serde_json::json;

use crate::{at, Ctx};

fn rejected(e: StoreError) -> CouponError {
    match e {
        StoreError::Rejected(e) => e,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

pub async fn pattern_books_have_their_codes_at_creation(cx: Ctx) {
    let book = cx
        .book(json!({"code_pattern": "SUMMER-####-????", "total_codes": 50}))
        .await;
    let stats = cx.stats(book.id, at(1)).await;
    assert_eq!(
        (stats.total_generated, stats.available, stats.total_assigned),
        (50, 50, 0)
    );
    let claimed = cx.claim(&book, "alice", at(1)).await.unwrap();
    assert!(claimed.code.code.starts_with("SUMMER-"), "{}", claimed.code.code);
    assert_eq!(claimed.code.code.len(), "SUMMER-####-????".len());
    assert_eq!(cx.store.book(book.id).await.unwrap(), book);
}

pub async fn uploads_report_duplicates_and_respect_the_cap(cx: Ctx) {
    let book = cx.book(json!({"total_codes": 4})).await;
    let other = cx.book(json!({})).await;
    cx.store
        .add_codes(other.id, vec!["TAKEN".into()], at(0), None)
        .await
        .unwrap();

    let added = cx
        .store
        .add_codes(
            book.id,
            vec!["A1".into(), "A2".into(), "A1".into(), "TAKEN".into()],
            at(0),
            None,
        )
        .await
        .unwrap();
    assert_eq!(added.inserted, 2);
    assert_eq!(added.duplicates, vec!["A1".to_string(), "TAKEN".to_string()]);

    // Three new codes would pass the cap of four: refused, and none of them written.
    let err = cx
        .store
        .add_codes(book.id, vec!["B1".into(), "B2".into(), "B3".into()], at(0), None)
        .await
        .unwrap_err();
    assert_eq!(rejected(err).code(), "total_codes_exceeded");
    assert_eq!(cx.stats(book.id, at(1)).await.total_generated, 2);
    assert_eq!(
        cx.claim_code("B1", "alice", at(1)).await.unwrap_err(),
        CouponError::NotFound("code")
    );

    let added = cx
        .store
        .add_codes(book.id, vec!["B1".into(), "B2".into()], at(0), None)
        .await
        .unwrap();
    assert_eq!(added.inserted, 2);
    let missing = cx
        .store
        .add_codes(uuid::Uuid::now_v7(), vec!["C1".into()], at(0), None)
        .await
        .unwrap_err();
    assert_eq!(rejected(missing), CouponError::NotFound("coupon book"));
}

pub async fn generation_respects_the_cap_and_the_pattern(cx: Ctx) {
    let book = cx.book(json!({"total_codes": 30})).await;
    let pattern = CodePattern::parse("GEN-*****").unwrap();
    assert_eq!(
        cx.store
            .generate_codes(book.id, Some(pattern.clone()), 20, at(0), None)
            .await
            .unwrap(),
        20
    );
    let err = cx
        .store
        .generate_codes(book.id, Some(pattern.clone()), 11, at(0), None)
        .await
        .unwrap_err();
    assert_eq!(rejected(err).code(), "total_codes_exceeded");
    assert_eq!(
        cx.store
            .generate_codes(book.id, Some(pattern), 10, at(0), None)
            .await
            .unwrap(),
        10
    );
    let stats = cx.stats(book.id, at(1)).await;
    assert_eq!(stats.total_generated, 30);
    let claimed = cx.claim(&book, "alice", at(1)).await.unwrap();
    assert!(claimed.code.code.starts_with("GEN-"));
}

pub async fn shared_codes_are_unique_across_books(cx: Ctx) {
    cx.book(json!({"code_mode": "shared", "code": "WELCOME10", "total_codes": 3}))
        .await;
    let again = cx
        .try_book(json!({"code_mode": "shared", "code": "welcome10", "total_codes": 3}))
        .await;
    assert_eq!(rejected(again.unwrap_err()), CouponError::CodeTaken);
    let unique = cx.book(json!({})).await;
    let added = cx
        .store
        .add_codes(unique.id, vec!["WELCOME10".into()], at(0), None)
        .await
        .unwrap();
    assert_eq!((added.inserted, added.duplicates.len()), (0, 1));
}

pub async fn patches_change_status_and_window(cx: Ctx) {
    let book = cx.book(json!({"total_codes": 10})).await;
    cx.store
        .add_codes(book.id, vec!["P1".into(), "P2".into()], at(0), None)
        .await
        .unwrap();
    let patched = cx
        .store
        .update_book(
            book.id,
            BookPatch {
                name: Some("Autumn".into()),
                status: Some(BookStatus::Paused),
                ..Default::default()
            },
            at(5),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        (patched.name.as_str(), patched.status, patched.updated_at),
        ("Autumn", BookStatus::Paused, at(5))
    );
    assert_eq!(cx.store.book(book.id).await.unwrap(), patched);

    let bad = BookPatch {
        name: Some(String::new()),
        ..Default::default()
    };
    assert_eq!(
        rejected(cx.store.update_book(book.id, bad, at(6), None).await.unwrap_err()).code(),
        "invalid_request"
    );

    let archive = BookPatch {
        status: Some(BookStatus::Archived),
        ..Default::default()
    };
    cx.store.update_book(book.id, archive, at(7), None).await.unwrap();
    let reopen = BookPatch {
        status: Some(BookStatus::Active),
        ..Default::default()
    };
    assert_eq!(
        rejected(cx.store.update_book(book.id, reopen, at(8), None).await.unwrap_err()),
        CouponError::BookInactive
    );
    let upload = cx
        .store
        .add_codes(book.id, vec!["P3".into()], at(0), None)
        .await
        .unwrap_err();
    assert_eq!(rejected(upload), CouponError::BookInactive);
}

pub async fn search_finds_active_books_newest_first(cx: Ctx) {
    let shoes = cx
        .book(
            json!({"name": "Running shoes week", "description": "Ten percent off trail runners",
                     "category": "sports", "tags": ["shoes", "outdoor"]}),
        )
        .await;
    let fixed = cx
        .book(
            json!({"name": "Winter boots", "description": "Five dollars off", "category": "sports",
                     "tags": ["shoes"], "discount": {"type": "fixed_amount", "value": 500}}),
        )
        .await;
    let paused = cx.book(json!({"name": "Shoes clearance", "status": "paused"})).await;
    let expired = cx
        .book(json!({"name": "Old shoes", "expires_at": "2026-06-01T12:00:00.500Z"}))
        .await;
    let books_newest_first = |page: &coupon_store::SearchPage| page.items.iter().map(|b| b.id).collect::<Vec<_>>();

    let q = |text: Option<&str>, category: Option<&str>, kind: Option<&str>| SearchQuery {
        text: text.map(Into::into),
        category: category.map(Into::into),
        discount_type: kind.and_then(coupon_core::discount::DiscountType::parse),
        limit: 10,
        after: None,
        scope: Default::default(),
    };
    let page = cx
        .store
        .search_books(q(Some("shoes"), None, None), at(1))
        .await
        .unwrap();
    // Both share a creation instant; ties are broken by id, newest (largest v7 id) first.
    assert_eq!(books_newest_first(&page), vec![fixed.id, shoes.id]);
    assert!(!page.items.iter().any(|b| b.id == paused.id || b.id == expired.id));

    let page = cx
        .store
        .search_books(q(Some("RUNNERS trail"), None, None), at(1))
        .await
        .unwrap();
    assert_eq!(
        books_newest_first(&page),
        vec![shoes.id],
        "stemmed words of the description"
    );
    let page = cx
        .store
        .search_books(q(Some("outdoor"), None, None), at(1))
        .await
        .unwrap();
    assert_eq!(books_newest_first(&page), vec![shoes.id], "tags");
    let page = cx
        .store
        .search_books(q(None, Some("sports"), Some("fixed_amount")), at(1))
        .await
        .unwrap();
    assert_eq!(books_newest_first(&page), vec![fixed.id]);
    let page = cx
        .store
        .search_books(q(Some("\"quoted\" OR * -"), None, None), at(1))
        .await
        .unwrap();
    assert!(page.items.is_empty(), "operators in user text are words, not syntax");

    let mut first = q(Some("shoes"), None, None);
    first.limit = 1;
    let page1 = cx.store.search_books(first.clone(), at(1)).await.unwrap();
    assert_eq!(books_newest_first(&page1), vec![fixed.id]);
    first.after = page1.next;
    let page2 = cx.store.search_books(first, at(1)).await.unwrap();
    assert_eq!(books_newest_first(&page2), vec![shoes.id]);
    assert!(page2.next.is_none());
}
