//! `Idempotency-Key`: a retried request acts once and gets the first answer again.

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::{App, Reply};

/// POSTs `body` with the key.
async fn keyed(app: &App, path: &str, token: &str, key: &str, body: Value) -> Reply {
    let req = app
        .http
        .post(format!("{}{}", app.base, path))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(&body);
    Reply::read(req.send().await.expect("the server answers")).await
}

fn replayed(r: &Reply) -> bool {
    r.headers.get("idempotent-replayed").and_then(|v| v.to_str().ok()) == Some("true")
}

pub async fn a_retried_request_acts_once(app: App) {
    let book = app.book(json!({"code_pattern": "IDEM-*****", "total_codes": 20})).await;
    let user = app.user("shopper");
    let claim = json!({"coupon_book_id": book});

    let first = keyed(&app, "/coupons/assign", &user, "claim-1", claim.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert!(!replayed(&first));
    let again = keyed(&app, "/coupons/assign", &user, "claim-1", claim.clone()).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    assert!(replayed(&again));
    assert_eq!(again.body, first.body);
    assert_eq!(app.stats(&book).await["total_assigned"], 1);

    // The same key with another request is refused; another caller's key is its own.
    let other = json!({"coupon_book_id": book, "metadata": {"channel": "app"}});
    let reused = keyed(&app, "/coupons/assign", &user, "claim-1", other).await;
    assert_eq!(
        (reused.status, reused.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused")
    );
    let theirs = keyed(
        &app,
        "/coupons/assign",
        &app.user("neighbour"),
        "claim-1",
        claim.clone(),
    )
    .await;
    assert_eq!(theirs.status, StatusCode::CREATED, "{}", theirs.body);
    assert!(!replayed(&theirs));
    assert_ne!(theirs.body["assigned_code"], first.body["assigned_code"]);
    assert_eq!(app.stats(&book).await["total_assigned"], 2);

    // A redemption retried after a lost answer counts once.
    let code = first.body["assigned_code"].as_str().unwrap();
    let redeem = json!({"order_id": "order-1", "order_amount": 5000});
    let path = format!("/coupons/redeem/{code}");
    let redeemed = keyed(&app, &path, &user, "redeem-1", redeem.clone()).await;
    assert_eq!(redeemed.status, StatusCode::OK, "{}", redeemed.body);
    let retried = keyed(&app, &path, &user, "redeem-1", redeem).await;
    assert!(replayed(&retried));
    assert_eq!((retried.status, &retried.body), (StatusCode::OK, &redeemed.body));
    assert_eq!(app.stats(&book).await["total_redemptions"], 1);

    // A book created twice under one key is one book.
    let admin = app.admin();
    let new = json!({"name": "Once", "discount": {"type": "percentage", "value": 5}});
    let created = keyed(&app, "/coupons", &admin, "book-1", new.clone()).await;
    let recreated = keyed(&app, "/coupons", &admin, "book-1", new).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert!(replayed(&recreated));
    assert_eq!(recreated.body["coupon_book_id"], created.body["coupon_book_id"]);
}

pub async fn a_refusal_is_answered_again(app: App) {
    let book = app
        .book(json!({"code_pattern": "ONCE-*****", "total_codes": 10, "max_codes_per_user": 1}))
        .await;
    app.claim(&book, "limited").await;
    let user = app.user("limited");
    let claim = json!({"coupon_book_id": book});
    let refused = keyed(&app, "/coupons/assign", &user, "again", claim.clone()).await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::CONFLICT, "user_limit_reached")
    );
    assert!(!replayed(&refused));
    let again = keyed(&app, "/coupons/assign", &user, "again", claim).await;
    assert!(replayed(&again));
    assert_eq!((again.status, &again.body), (refused.status, &refused.body));
    assert_eq!(again.content_type, "application/problem+json");

    // A refused admin write is recorded too, and wrote nothing else.
    let admin = app.admin();
    let shared = app
        .book(json!({"code_mode": "shared", "code": "allofus", "total_codes": 5}))
        .await;
    let upload = json!({"coupon_book_id": shared, "codes": ["EXTRA1"]});
    let first = keyed(&app, "/coupons/codes", &admin, "upload-1", upload.clone()).await;
    assert!(first.status.is_client_error(), "{}", first.body);
    let second = keyed(&app, "/coupons/codes", &admin, "upload-1", upload).await;
    assert!(replayed(&second));
    assert_eq!((second.status, &second.body), (first.status, &first.body));
}

pub async fn bad_keys_are_400s_and_write_nothing(app: App) {
    let book = app.book(json!({"code_pattern": "BADK-*****", "total_codes": 10})).await;
    let before = app.snapshot().await;
    let user = app.user("shopper");
    let claim = json!({"coupon_book_id": book});
    for key in ["k".repeat(256), String::new(), "\"\"".into()] {
        keyed(&app, "/coupons/assign", &user, &key, claim.clone())
            .await
            .assert_invalid("Idempotency-Key");
    }
    assert_eq!(app.snapshot().await, before);
    // The longest key is taken.
    let longest = keyed(&app, "/coupons/assign", &user, &"k".repeat(255), claim).await;
    assert_eq!(longest.status, StatusCode::CREATED, "{}", longest.body);
}

pub async fn concurrent_retries_act_once(app: App) {
    let book = app.book(json!({"code_pattern": "RACE-*****", "total_codes": 50})).await;
    let user = app.user("racer");
    let claim = json!({"coupon_book_id": book});
    let answers =
        futures::future::join_all((0..8).map(|_| keyed(&app, "/coupons/assign", &user, "race-1", claim.clone()))).await;
    let mut bodies = Vec::new();
    for a in &answers {
        match a.status {
            StatusCode::CREATED => bodies.push(a.body.clone()),
            StatusCode::CONFLICT => assert_eq!(a.code(), "idempotency_in_flight", "{}", a.body),
            // The caller's request bucket may refuse some before they reach the key.
            StatusCode::TOO_MANY_REQUESTS => assert_eq!(a.code(), "rate_limited", "{}", a.body),
            other => panic!("{other}: {}", a.body),
        }
    }
    assert!(!bodies.is_empty());
    assert!(bodies.iter().all(|b| *b == bodies[0]), "every answer is the one claim");
    assert_eq!(app.stats(&book).await["total_assigned"], 1);
    let after = keyed(
        &app,
        "/coupons/assign",
        &user,
        "race-1",
        json!({"coupon_book_id": book}),
    )
    .await;
    assert!(replayed(&after));
    assert_eq!(after.body, bodies[0]);
}

/// The database refusing connections and ending the open ones (a restart, a failover): every
/// request answers 503 `unavailable` with `Retry-After`, readiness says so, and the service
/// carries on by itself once the database is back. A claim retried with its key then acts once.
pub async fn a_database_outage_is_a_503_until_it_passes(app: App) {
    let book = app.book(json!({"code_pattern": "DOWN-*****", "total_codes": 10})).await;
    app.claim(&book, "before").await;
    let user = app.user("during");
    let claim = json!({"coupon_book_id": book});

    app.db.cut_off(true).await;
    let refused = keyed(&app, "/coupons/assign", &user, "outage-1", claim.clone()).await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        "{}",
        refused.body
    );
    assert_eq!(
        refused.headers.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let read = app.get(&format!("/coupons/{book}"), &app.admin()).await;
    assert_eq!(
        (read.status, read.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        "{}",
        read.body
    );
    let ready = app.call(reqwest::Method::GET, "/readyz", None, None).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);

    app.db.cut_off(false).await;
    let mut answer = keyed(&app, "/coupons/assign", &user, "outage-1", claim.clone()).await;
    for _ in 0..100 {
        if answer.status != StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        answer = keyed(&app, "/coupons/assign", &user, "outage-1", claim.clone()).await;
    }
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    let again = keyed(&app, "/coupons/assign", &user, "outage-1", claim).await;
    assert!(replayed(&again));
    assert_eq!(app.stats(&book).await["total_assigned"], 2);
    let ready = app.call(reqwest::Method::GET, "/readyz", None, None).await;
    assert_eq!(ready.status, StatusCode::OK);
}

/// An import, several transactions, answers a retry from its record without adding anything.
pub async fn a_retried_import_is_answered(app: App) {
    let book = app.book(json!({"total_codes": 10})).await;
    let import = |key: &'static str, file: &'static str| {
        let req = app
            .http
            .post(format!("{}/coupons/{book}/codes/import", app.base))
            .bearer_auth(app.admin())
            .header("content-type", "text/csv")
            .header("Idempotency-Key", key)
            .body(file);
        async move { Reply::read(req.send().await.expect("the server answers")).await }
    };
    let first = import("import-1", "IMP-1\nIMP-2\nIMP-1\n").await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(first.body["uploaded_codes_count"], 2);
    let again = import("import-1", "IMP-1\nIMP-2\nIMP-1\n").await;
    assert!(replayed(&again));
    assert_eq!((again.status, &again.body), (first.status, &first.body));
    let other = import("import-1", "IMP-3\n").await;
    assert_eq!(
        (other.status, other.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused")
    );
    assert_eq!(app.stats(&book).await["total_generated"], 2);
}

/// Well-formed requests that the book as stored refuses are 409s with their own codes.
pub async fn stored_state_refusals_are_409s(app: App) {
    let admin = app.admin();
    let book = app.book(json!({"starts_at": "2026-07-01T00:00:00Z"})).await;
    let patch = app
        .call(
            reqwest::Method::PATCH,
            &format!("/coupons/{book}"),
            Some(&admin),
            Some(json!({"expires_at": "2026-06-15T00:00:00Z"})),
        )
        .await;
    assert_eq!(
        (patch.status, patch.code()),
        (StatusCode::CONFLICT, "window_conflict"),
        "{}",
        patch.body
    );
    let full = app.book(json!({"code_pattern": "FULL-*****", "total_codes": 3})).await;
    let generate = app
        .post(&format!("/coupons/{full}/codes/generate"), &admin, json!({"count": 1}))
        .await;
    assert_eq!(
        (generate.status, generate.code()),
        (StatusCode::CONFLICT, "total_codes_exceeded"),
        "{}",
        generate.body
    );
    let open = app.book(json!({})).await;
    // A pattern the request names is the request's own: too small, it is a 400.
    let named = app
        .post(
            &format!("/coupons/{open}/codes/generate"),
            &admin,
            json!({"count": 5, "pattern": "X-#"}),
        )
        .await;
    named.assert_invalid("code_pattern");
}
