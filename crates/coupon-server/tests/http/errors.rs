use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::{App, Reply};

#[track_caller]
fn expect(r: &Reply, status: StatusCode, code: &str) {
    assert_eq!((r.status, r.code()), (status, code), "{}", r.body);
    assert_eq!(r.content_type, "application/problem+json");
}

async fn assign(app: &App, book: &str, user: &str) -> Reply {
    app.post("/coupons/assign", &app.user(user), json!({"coupon_book_id": book}))
        .await
}

pub async fn every_claim_error_is_reachable(app: App) {
    let missing = assign(&app, "018f0000-0000-7000-8000-000000000000", "alice").await;
    expect(&missing, StatusCode::NOT_FOUND, "not_found");
    expect(
        &app.post("/coupons/assign/NO-SUCH-CODE", &app.user("a"), json!({}))
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    expect(
        &app.get("/no/such/route", &app.user("a")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    let later = app.book(json!({"starts_at": "2026-06-02T00:00:00Z"})).await;
    app.upload(&later, &["LATER"]).await;
    expect(
        &assign(&app, &later, "alice").await,
        StatusCode::CONFLICT,
        "not_started",
    );
    let over = app.book(json!({"expires_at": "2026-05-31T00:00:00Z"})).await;
    expect(&assign(&app, &over, "alice").await, StatusCode::CONFLICT, "expired");
    let paused = app.book(json!({"status": "paused"})).await;
    expect(
        &assign(&app, &paused, "alice").await,
        StatusCode::CONFLICT,
        "book_inactive",
    );

    let book = app.book(json!({"max_codes_per_user": 1})).await;
    app.upload(&book, &["ONE", "TWO"]).await;
    app.claim(&book, "alice").await;
    expect(
        &assign(&app, &book, "alice").await,
        StatusCode::CONFLICT,
        "user_limit_reached",
    );
    let taken = app.post("/coupons/assign/ONE", &app.user("bob"), json!({})).await;
    let taken = if taken.status == StatusCode::CREATED {
        app.post("/coupons/assign/TWO", &app.user("carol"), json!({})).await
    } else {
        taken
    };
    expect(&taken, StatusCode::CONFLICT, "code_taken");
    app.claim(&book, "dave").await;
    expect(&assign(&app, &book, "erin").await, StatusCode::CONFLICT, "out_of_stock");

    let daily = app
        .book(json!({"max_codes_per_user": null, "claims_per_user_per_day": 1}))
        .await;
    app.upload(&daily, &["D1", "D2"]).await;
    app.claim(&daily, "alice").await;
    expect(
        &assign(&app, &daily, "alice").await,
        StatusCode::CONFLICT,
        "daily_limit_reached",
    );
}

pub async fn every_code_error_is_reachable(app: App) {
    let book = app
        .book(json!({"max_codes_per_user": 5, "expires_at": "2026-06-01T13:00:00Z",
                     "discount": {"type": "fixed_amount", "value": 500, "min_order_amount": 2000}}))
        .await;
    app.upload(&book, &["E1", "E2", "E3"]).await;
    let alice = app.user("alice");
    for _ in 0..3 {
        app.claim(&book, "alice").await;
    }
    let on = |action: &str, code: &str| format!("/coupons/{action}/{code}");

    expect(
        &app.post(&on("lock", "E1"), &app.user("bob"), json!({})).await,
        StatusCode::FORBIDDEN,
        "not_assigned_to_user",
    );
    expect(
        &app.post(&on("unlock", "E1"), &alice, json!({})).await,
        StatusCode::CONFLICT,
        "not_locked",
    );
    let lock = app.post(&on("lock", "E1"), &alice, json!({})).await;
    expect(
        &app.post(&on("lock", "E1"), &alice, json!({})).await,
        StatusCode::CONFLICT,
        "locked",
    );
    expect(
        &app.post(&on("redeem", "E1"), &alice, json!({"order_amount": 3000}))
            .await,
        StatusCode::CONFLICT,
        "locked",
    );
    let with_lock = json!({"order_amount": 1999, "lock_id": lock.body["lock_id"]});
    expect(
        &app.post(&on("redeem", "E1"), &alice, with_lock).await,
        StatusCode::CONFLICT,
        "min_order_not_met",
    );
    // The book's minimum needs an amount: the book as stored refuses a well-formed redeem.
    let no_amount = app.post(&on("redeem", "E2"), &alice, json!({})).await;
    expect(&no_amount, StatusCode::CONFLICT, "order_amount_required");
    assert!(no_amount.body["detail"].as_str().unwrap().contains("order_amount"));
    assert_eq!(
        app.post(&on("redeem", "E2"), &alice, json!({"order_amount": 2000}))
            .await
            .status,
        StatusCode::OK
    );
    expect(
        &app.post(&on("redeem", "E2"), &alice, json!({"order_amount": 2000}))
            .await,
        StatusCode::CONFLICT,
        "already_redeemed",
    );
    let validated = app.get("/coupons/validate/E2?order_amount=2000", &alice).await;
    assert_eq!(validated.body["reason"], json!("already_redeemed"));
    let validated = app.get("/coupons/validate/NOPE", &alice).await;
    assert_eq!(
        (validated.status, validated.body["reason"].clone()),
        (StatusCode::OK, json!("not_found"))
    );

    app.clock.advance_seconds(3601);
    let alice = app.user("alice");
    expect(
        &app.post(&on("redeem", "E3"), &alice, json!({"order_amount": 2000}))
            .await,
        StatusCode::CONFLICT,
        "expired",
    );
    let mine = app.get("/users/me/coupons?status=expired", &alice).await;
    assert_eq!(mine.body["assigned_coupons"].as_array().unwrap().len(), 2);

    let archived = app.book(json!({})).await;
    app.upload(&archived, &["ARCH"]).await;
    app.claim(&archived, "alice").await;
    let r = app
        .call(
            Method::PATCH,
            &format!("/coupons/{archived}"),
            Some(&app.admin()),
            Some(json!({"status": "archived"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    expect(
        &app.post(&on("redeem", "ARCH"), &alice, json!({})).await,
        StatusCode::CONFLICT,
        "book_inactive",
    );
    let again = app
        .call(
            Method::PATCH,
            &format!("/coupons/{archived}"),
            Some(&app.admin()),
            Some(json!({"status": "active"})),
        )
        .await;
    expect(&again, StatusCode::CONFLICT, "book_inactive");
}

pub async fn bad_input_is_a_400_and_writes_nothing(app: App) {
    let admin = app.admin();
    let book = app.book(json!({"max_codes_per_user": null})).await;
    app.upload(&book, &["IN1"]).await;
    let before = app.stats(&book).await;
    let discount = json!({"type": "percentage", "value": 10});
    let bad_books: Vec<Value> = vec![
        json!({"name": "x", "discount": discount, "surprise": true}),
        json!({"name": "x", "discount": discount, "total_codes": "ten"}),
        json!({"name": "x", "discount": discount, "total_codes": -1}),
        json!({"name": "x".repeat(201), "discount": discount}),
        json!({"name": "x", "discount": {"type": "fixed_amount", "value": -100}}),
        json!({"name": "x", "discount": {"type": "percentage", "value": 12.345}}),
        json!({"name": "x", "discount": discount, "code_pattern": "AB-#", "total_codes": 10}),
        json!({"name": "x", "discount": discount, "starts_at": "yesterday"}),
        json!({"discount": discount}),
    ];
    for body in bad_books {
        expect(
            &app.post("/coupons", &admin, body).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        );
    }
    let raw = app
        .http
        .post(format!("{}/coupons", app.base))
        .bearer_auth(&admin)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);

    let alice = app.user("alice");
    let bad_calls = [
        app.post("/coupons/assign", &alice, json!({"coupon_book_id": "not-a-uuid"}))
            .await,
        app.post(&format!("/coupons/assign/{}", "A".repeat(65)), &alice, json!({}))
            .await,
        app.post("/coupons/assign/BAD%20CODE", &alice, json!({})).await,
        app.post("/coupons/redeem/IN1", &alice, json!({"order_amount": -5}))
            .await,
        app.post("/coupons/redeem/IN1", &alice, json!({"order_amount": 12.5}))
            .await,
        app.post("/coupons/redeem/IN1", &alice, json!({"order_id": ""})).await,
        app.post(
            "/coupons/codes",
            &admin,
            json!({"coupon_book_id": book, "codes": ["OK", "NOT OK"]}),
        )
        .await,
        app.post("/coupons/codes", &admin, json!({"coupon_book_id": book, "codes": []}))
            .await,
        app.get("/coupons/not-a-uuid", &admin).await,
        app.get("/coupons/search?limit=0", &alice).await,
        app.get("/coupons/search?cursor=garbage", &alice).await,
        app.get("/coupons/search?type=bogus", &alice).await,
        app.get("/users/me/coupons?status=sleeping", &alice).await,
        app.get("/coupons/validate/IN1?order_amount=-1", &alice).await,
        app.post(
            "/coupons/assign",
            &alice,
            json!({"coupon_book_id": book, "user_id": ""}),
        )
        .await,
    ];
    for r in &bad_calls {
        expect(r, StatusCode::BAD_REQUEST, "invalid_request");
    }
    assert_eq!(app.stats(&book).await, before, "nothing was written");
    assert_eq!(
        app.get("/coupons/search", &alice).await.body["results"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

pub async fn errors_come_in_the_promised_order(app: App) {
    // Auth before input: a user's invalid book is a 403, an anonymous one a 401.
    let r = app.post("/coupons", &app.user("alice"), json!({"name": ""})).await;
    expect(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = app
        .call(Method::POST, "/coupons", None, Some(json!({"name": ""})))
        .await;
    expect(&r, StatusCode::UNAUTHORIZED, "unauthorized");
    // Input before existence.
    expect(
        &app.post("/coupons/assign/BAD%20CODE", &app.user("a"), json!({})).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );

    // One code, claimed by alice: for her the book is at her limit and out of stock at once.
    let book = app
        .book(json!({"expires_at": "2026-06-01T13:00:00Z", "claims_per_user_per_day": 1}))
        .await;
    app.upload(&book, &["ONLY"]).await;
    app.claim(&book, "alice").await;
    expect(
        &assign(&app, &book, "alice").await,
        StatusCode::CONFLICT,
        "user_limit_reached",
    );
    expect(&assign(&app, &book, "bob").await, StatusCode::CONFLICT, "out_of_stock");

    let unlimited = app
        .book(json!({"max_codes_per_user": null, "claims_per_user_per_day": 1}))
        .await;
    app.upload(&unlimited, &["SOLO"]).await;
    app.claim(&unlimited, "alice").await;
    expect(
        &assign(&app, &unlimited, "alice").await,
        StatusCode::CONFLICT,
        "daily_limit_reached",
    );

    let r = app
        .call(
            Method::PATCH,
            &format!("/coupons/{book}"),
            Some(&app.admin()),
            Some(json!({"status": "paused"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    expect(
        &assign(&app, &book, "alice").await,
        StatusCode::CONFLICT,
        "book_inactive",
    );
    app.clock.advance_seconds(3601);
    let r = app
        .call(
            Method::PATCH,
            &format!("/coupons/{book}"),
            Some(&app.admin()),
            Some(json!({"status": "active"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    expect(&assign(&app, &book, "alice").await, StatusCode::CONFLICT, "expired");
}
