//! Races as an attacker would run them: many identical requests, each on a connection of its own
//! opened beforehand, released at the same instant. Exactly one may win.

use std::sync::Arc;

use coupon_store::testing::Backend;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::sync::Barrier;

use crate::App;

/// The races run with throttling off: they are between requests that reach the database, which a
/// user's bucket would otherwise thin out to its burst.
async fn unthrottled(backend: Backend) -> App {
    App::spawn_throttled(backend, coupon_server::Throttle::disabled()).await
}

const RACERS: usize = 50;

/// Sends racer `i`'s `body(i)` to `path` from 50 clients at once, each on its own connection opened
/// beforehand; returns the statuses.
async fn race(app: &App, path: &str, token: &str, body: impl Fn(usize) -> Value) -> Vec<StatusCode> {
    let barrier = Arc::new(Barrier::new(RACERS));
    let mut tasks = Vec::new();
    for i in 0..RACERS {
        let client = reqwest::Client::new();
        let warm = client.get(format!("{}/healthz", app.base)).send().await.unwrap();
        assert_eq!(warm.status(), StatusCode::OK);
        let (barrier, url, token, body) = (
            barrier.clone(),
            format!("{}{path}", app.base),
            token.to_owned(),
            body(i),
        );
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            client
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    statuses
}

pub async fn fifty_redemptions_of_one_code_win_once(backend: Backend) {
    let app = unthrottled(backend).await;
    let book = app.book(json!({})).await;
    app.upload(&book, &["RACE-ME", "RACE-TWO"]).await;
    let (first, second) = (app.claim(&book, "alice").await, app.claim(&book, "bob").await);
    // Fifty repeats of one checkout: each is answered by the one redemption, counted once.
    let path = format!("/coupons/redeem/{first}");
    let same = race(
        &app,
        &path,
        &app.user("alice"),
        |_| json!({"order_id": "order-1", "order_amount": 1000}),
    )
    .await;
    assert!(same.iter().all(|s| *s == StatusCode::OK), "{same:?}");
    assert_eq!(app.stats(&book).await["total_redemptions"], json!(1));
    // Fifty checkouts of different orders for a single-use code: one gets it.
    let path = format!("/coupons/redeem/{second}");
    let orders = race(
        &app,
        &path,
        &app.user("bob"),
        |i| json!({"order_id": format!("order-{i}")}),
    )
    .await;
    assert_eq!(orders.iter().filter(|s| **s == StatusCode::OK).count(), 1, "{orders:?}");
    assert!(orders
        .iter()
        .all(|s| *s == StatusCode::OK || *s == StatusCode::CONFLICT));
    let stats = app.stats(&book).await;
    assert_eq!(
        (stats["total_redemptions"].clone(), stats["total_redeemed"].clone()),
        (json!(2), json!(2))
    );
}

pub async fn fifty_claims_by_one_user_win_once(backend: Backend) {
    let app = unthrottled(backend).await;
    let book = app.book(json!({"max_codes_per_user": 1})).await;
    let codes: Vec<String> = (0..RACERS).map(|i| format!("GRAB-{i}")).collect();
    let codes: Vec<&str> = codes.iter().map(String::as_str).collect();
    app.upload(&book, &codes).await;
    let statuses = race(
        &app,
        "/coupons/assign",
        &app.user("mallory"),
        |_| json!({"coupon_book_id": book}),
    )
    .await;
    let won = statuses.iter().filter(|s| **s == StatusCode::CREATED).count();
    assert_eq!(won, 1, "{statuses:?}");
    assert!(statuses
        .iter()
        .all(|s| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT));
    let stats = app.stats(&book).await;
    assert_eq!(stats["total_assigned"], json!(1));
}
