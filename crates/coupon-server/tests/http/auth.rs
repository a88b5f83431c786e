use coupon_server::{Claims, JwtSecret, Role};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::App;

pub async fn tokens_are_required_and_checked(app: App) {
    let none = app.call(Method::GET, "/coupons/search", None, None).await;
    assert_eq!((none.status, none.code()), (StatusCode::UNAUTHORIZED, "unauthorized"));
    assert_eq!(none.content_type, "application/problem+json");
    // RFC 6750: a 401 names the scheme, and says why when a token was sent.
    let challenge = |r: &crate::Reply| {
        let header = r.headers.get("www-authenticate").expect("a 401 carries a challenge");
        header.to_str().unwrap().to_owned()
    };
    assert_eq!(challenge(&none), "Bearer realm=\"coupond\"");
    let garbage = app.get("/coupons/search", "not-a-jwt").await;
    assert_eq!(garbage.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge(&garbage),
        "Bearer realm=\"coupond\", error=\"invalid_token\", error_description=\"the token is not valid\""
    );
    let unsigned = format!(
        "{}.{}.",
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0", "eyJzdWIiOiJtYWxsb3J5Iiwicm9sZSI6ImFkbWluIiwiZXhwIjo0MTAyNDQ0ODAwfQ"
    );
    let none_alg = app.get("/coupons/search", &unsigned).await;
    assert_eq!(none_alg.status, StatusCode::UNAUTHORIZED, "alg: none is refused");
    assert!(challenge(&none_alg).contains("error=\"invalid_token\""));
    let forbidden = app.post("/coupons", &app.user("alice"), json!({})).await;
    assert!(
        forbidden.headers.get("www-authenticate").is_none(),
        "a 403 is no challenge"
    );
    let forged = JwtSecret::new("some other secret of a sufficient length").sign(&Claims {
        sub: "mallory".into(),
        role: Role::Admin,
        exp: app.clock_now() / 1000 + 60,
    });
    assert_eq!(
        app.get("/coupons/search", &forged).await.status,
        StatusCode::UNAUTHORIZED
    );

    let token = app.user("alice");
    assert_eq!(app.get("/coupons/search", &token).await.status, StatusCode::OK);
    // Expiry follows the server's clock.
    app.clock.advance_seconds(3600);
    let expired = app.get("/coupons/search", &token).await;
    assert_eq!(
        (expired.status, expired.body["detail"].clone()),
        (StatusCode::UNAUTHORIZED, json!("the token has expired"))
    );
    assert!(challenge(&expired).ends_with("error_description=\"the token has expired\""));
}

pub async fn roles_limit_who_acts_for_whom(app: App) {
    let book = app.book(json!({"max_codes_per_user": null})).await;
    app.upload(&book, &["R1", "R2", "R3"]).await;
    let alice = app.user("alice");

    let create = app
        .post(
            "/coupons",
            &alice,
            json!({"name": "mine", "discount": {"type": "percentage", "value": 5}}),
        )
        .await;
    assert_eq!((create.status, create.code()), (StatusCode::FORBIDDEN, "forbidden"));
    assert_eq!(
        app.get(&format!("/coupons/{book}"), &alice).await.status,
        StatusCode::FORBIDDEN
    );
    let service = app.token("checkout", Role::Service);
    assert_eq!(
        app.get(&format!("/coupons/{book}"), &service).await.status,
        StatusCode::FORBIDDEN
    );

    let for_bob = app
        .post(
            "/coupons/assign",
            &alice,
            json!({"coupon_book_id": book, "user_id": "bob"}),
        )
        .await;
    assert_eq!((for_bob.status, for_bob.code()), (StatusCode::FORBIDDEN, "forbidden"));
    let for_self = app
        .post(
            "/coupons/assign",
            &alice,
            json!({"coupon_book_id": book, "user_id": "alice"}),
        )
        .await;
    assert_eq!(for_self.status, StatusCode::CREATED);

    let by_service = app
        .post(
            "/coupons/assign",
            &service,
            json!({"coupon_book_id": book, "user_id": "bob"}),
        )
        .await;
    assert_eq!(
        (by_service.status, by_service.body["user_id"].clone()),
        (StatusCode::CREATED, json!("bob"))
    );
    let bobs = by_service.body["assigned_code"].as_str().unwrap().to_owned();
    let by_admin = app
        .post(
            "/coupons/assign",
            &app.admin(),
            json!({"coupon_book_id": book, "user_id": "carol"}),
        )
        .await;
    assert_eq!(by_admin.status, StatusCode::CREATED);

    assert_eq!(
        app.get("/users/bob/coupons", &alice).await.status,
        StatusCode::FORBIDDEN
    );
    let listed = app.get("/users/bob/coupons", &service).await;
    assert_eq!(listed.body["assigned_coupons"][0]["code"], json!(bobs));
    // Alice cannot lock Bob's code, even naming herself.
    let lock = app.post(&format!("/coupons/lock/{bobs}"), &alice, json!({})).await;
    assert_eq!(
        (lock.status, lock.code()),
        (StatusCode::FORBIDDEN, "not_assigned_to_user")
    );
    let lock = app
        .post(&format!("/coupons/lock/{bobs}"), &service, json!({"user_id": "bob"}))
        .await;
    assert_eq!(lock.status, StatusCode::OK);
}
