use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::json;

use crate::App;

pub async fn full_lifecycle_over_http(app: App) {
    let admin = app.admin();
    let created = app
        .post(
            "/coupons",
            &admin,
            json!({
                "name": "Summer 2026", "description": "Fifteen percent off sandals", "category": "shoes",
                "tags": ["summer"], "code_pattern": "SUMMER-####-????", "total_codes": 100,
                "discount": {"type": "percentage", "value": 15, "max_discount": 3000, "min_order_amount": 1000},
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let book = created.body["coupon_book_id"].as_str().unwrap().to_owned();
    assert_eq!(created.body["discount"]["value"], json!(15));
    assert_eq!(
        app.stats(&book).await,
        json!({"total_generated": 100, "total_assigned": 0, "total_locked": 0,
        "total_redeemed": 0, "total_redemptions": 0, "total_discount_applied": 0, "available": 100})
    );

    let alice = app.user("alice");
    let claimed = app
        .post("/coupons/assign", &alice, json!({"coupon_book_id": book}))
        .await;
    assert_eq!(claimed.status, StatusCode::CREATED);
    let code = claimed.body["assigned_code"].as_str().unwrap().to_owned();
    assert!(code.starts_with("SUMMER-"));
    assert_eq!(claimed.body["coupon"]["coupon_book_id"], json!(book));
    assert_eq!(claimed.body["status"], json!("active"));

    let mine = app.get("/users/me/coupons", &alice).await;
    assert_eq!(mine.status, StatusCode::OK);
    assert_eq!(mine.body["assigned_coupons"][0]["code"], json!(code));
    assert_eq!(mine.body["assigned_coupons"][0]["status"], json!("active"));

    let lower = code.to_lowercase();
    let locked = app.post(&format!("/coupons/lock/{lower}"), &alice, json!({})).await;
    assert_eq!(locked.status, StatusCode::OK, "{}", locked.body);
    assert_eq!(locked.body["status"], json!("locked"));
    let lock_id = locked.body["lock_id"].as_str().unwrap().to_owned();
    assert_eq!(locked.body["locked_until"], json!("2026-06-01T12:05:00.000Z"));
    let listed = app.get("/users/alice/coupons?status=locked", &alice).await;
    assert_eq!(listed.body["assigned_coupons"].as_array().unwrap().len(), 1);
    assert_eq!(
        listed.body["assigned_coupons"][0]["locked_until"],
        json!("2026-06-01T12:05:00.000Z")
    );

    let checked = app
        .get(
            &format!("/coupons/validate/{code}?order_amount=10000&lock_id={lock_id}"),
            &alice,
        )
        .await;
    assert_eq!(
        checked.body,
        json!({"valid": true, "discount_applied": 1500, "final_price": 8500})
    );
    let capped = app
        .get(
            &format!("/coupons/validate/{code}?order_amount=50000&lock_id={lock_id}"),
            &alice,
        )
        .await;
    assert_eq!(capped.body["discount_applied"], json!(3000));
    let unlocked_view = app
        .get(&format!("/coupons/validate/{code}?order_amount=10000"), &alice)
        .await;
    assert_eq!(
        unlocked_view.body,
        json!({"valid": false, "reason": "locked", "discount_applied": null, "final_price": null})
    );

    let service = app.token("checkout", coupon_server::Role::Service);
    let redeem = json!({"order_id": "order-1", "order_amount": 10000, "lock_id": lock_id, "user_id": "alice"});
    let redeemed = app
        .post(&format!("/coupons/redeem/{code}"), &service, redeem.clone())
        .await;
    assert_eq!(redeemed.status, StatusCode::OK, "{}", redeemed.body);
    assert_eq!(redeemed.body["status"], json!("redeemed"));
    assert_eq!(
        (
            redeemed.body["discount_applied"].clone(),
            redeemed.body["final_price"].clone()
        ),
        (json!(1500), json!(8500))
    );
    let again = app.post(&format!("/coupons/redeem/{code}"), &service, redeem).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["redemption_id"], redeemed.body["redemption_id"]);

    let stats = app.stats(&book).await;
    assert_eq!(
        stats,
        json!({"total_generated": 100, "total_assigned": 1, "total_locked": 0,
        "total_redeemed": 1, "total_redemptions": 1, "total_discount_applied": 1500, "available": 99})
    );
    let mine = app.get("/users/me/coupons?status=redeemed", &alice).await;
    assert_eq!(mine.body["assigned_coupons"][0]["redemptions"], json!(1));

    let found = app
        .get("/coupons/search?q=sandals&category=shoes&type=percentage", &alice)
        .await;
    assert_eq!(found.status, StatusCode::OK);
    assert_eq!(found.body["results"][0]["coupon_book_id"], json!(book));
    assert_eq!(found.body["next_cursor"], json!(null));
}

pub async fn shared_codes_over_http(app: App) {
    let book = app
        .book(json!({"code_mode": "shared", "code": "welcome10", "total_codes": 2,
        "discount": {"type": "fixed_amount", "value": 1000}}))
        .await;
    let a = app
        .post("/coupons/assign/WELCOME10", &app.user("alice"), json!({}))
        .await;
    assert_eq!(
        (a.status, a.body["assigned_code"].clone()),
        (StatusCode::CREATED, json!("WELCOME10"))
    );
    let b = app
        .post("/coupons/assign", &app.user("bob"), json!({"coupon_book_id": book}))
        .await;
    assert_eq!(b.body["assigned_code"], json!("WELCOME10"));
    let c = app
        .post("/coupons/assign/welcome10", &app.user("carol"), json!({}))
        .await;
    assert_eq!((c.status, c.code()), (StatusCode::CONFLICT, "out_of_stock"));
    let r = app
        .post(
            "/coupons/redeem/WELCOME10",
            &app.user("bob"),
            json!({"order_amount": 800}),
        )
        .await;
    assert_eq!(
        (r.body["discount_applied"].clone(), r.body["final_price"].clone()),
        (json!(800), json!(0))
    );
    let stats = app.stats(&book).await;
    assert_eq!(
        (stats["total_generated"].clone(), stats["total_redeemed"].clone()),
        (json!(2), json!(1))
    );
}

pub async fn claim_ttl_follows_the_server_clock(app: App) {
    let book = app.book(json!({"claim_ttl_seconds": 600})).await;
    app.upload(&book, &["TTL-ONE"]).await;
    let claimed = app
        .post("/coupons/assign", &app.user("alice"), json!({"coupon_book_id": book}))
        .await;
    assert_eq!(claimed.body["claim_expires_at"], json!("2026-06-01T12:10:00.000Z"));
    app.clock.advance_seconds(600);
    let mine = app.get("/users/me/coupons", &app.user("alice")).await;
    assert_eq!(mine.body["assigned_coupons"], json!([]));
    assert_eq!(app.claim(&book, "bob").await, "TTL-ONE");
}

pub async fn concurrent_assigns_never_oversell(app: App) {
    let book = app.book(json!({"code_pattern": "RACE-*****", "total_codes": 10})).await;
    let app = Arc::new(app);
    let tasks = (0..100).map(|i| {
        let (app, book) = (app.clone(), book.clone());
        tokio::spawn(async move {
            let r = app
                .post(
                    "/coupons/assign",
                    &app.user(&format!("u{i}")),
                    json!({"coupon_book_id": book}),
                )
                .await;
            (r.status, r.code().to_owned())
        })
    });
    let mut created = 0;
    for t in futures::future::join_all(tasks).await {
        match t.unwrap() {
            (StatusCode::CREATED, _) => created += 1,
            (StatusCode::CONFLICT, code) => assert_eq!(code, "out_of_stock"),
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!(created, 10);
    assert_eq!(app.stats(&book).await["total_assigned"], json!(10));
}

pub async fn admin_manages_supply(app: App) {
    let admin = app.admin();
    let book = app.book(json!({"total_codes": 5, "code_pattern": "GEN-#####"})).await;
    let generated = app
        .post(&format!("/coupons/{book}/codes/generate"), &admin, json!({"count": 5}))
        .await;
    assert_eq!(
        (generated.status, generated.code()),
        (StatusCode::CONFLICT, "total_codes_exceeded"),
        "the cap is full"
    );

    let open = app.book(json!({})).await;
    let generated = app
        .post(
            &format!("/coupons/{open}/codes/generate"),
            &admin,
            json!({"count": 3, "pattern": "X-*****"}),
        )
        .await;
    assert_eq!(
        (generated.status, generated.body.clone()),
        (StatusCode::CREATED, json!({"generated_codes_count": 3}))
    );
    let no_pattern = app
        .post(&format!("/coupons/{open}/codes/generate"), &admin, json!({"count": 3}))
        .await;
    // Neither the request nor the book names a pattern: the default's twelve letters or digits.
    assert_eq!(
        (no_pattern.status, no_pattern.body.clone()),
        (StatusCode::CREATED, json!({"generated_codes_count": 3}))
    );
    let small = app
        .post(
            &format!("/coupons/{open}/codes/generate"),
            &admin,
            json!({"count": 3, "pattern": "X-#"}),
        )
        .await;
    assert_eq!(small.code(), "invalid_request");
    let uploaded = app
        .post(
            "/coupons/codes",
            &admin,
            json!({"coupon_book_id": open, "codes": ["  up-1 ", "UP-1", "UP-2"]}),
        )
        .await;
    assert_eq!(
        uploaded.body,
        json!({"uploaded_codes_count": 2, "duplicates": ["UP-1"]})
    );
    assert_eq!(app.stats(&open).await["total_generated"], json!(8));

    let patched = app
        .call(
            reqwest::Method::PATCH,
            &format!("/coupons/{open}"),
            Some(&admin),
            Some(json!({"name": "Renamed", "expires_at": "2026-07-01T00:00:00Z", "status": "paused"})),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(
        (patched.body["name"].clone(), patched.body["status"].clone()),
        (json!("Renamed"), json!("paused"))
    );
    assert_eq!(patched.body["expires_at"], json!("2026-07-01T00:00:00.000Z"));
    let cleared = app
        .call(
            reqwest::Method::PATCH,
            &format!("/coupons/{open}"),
            Some(&admin),
            Some(json!({"expires_at": null})),
        )
        .await;
    assert_eq!(cleared.body["expires_at"], json!(null));
}
