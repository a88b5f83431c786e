//! The event feed over HTTP: each event's `data` is exactly what the request that caused it was
//! answered, the feed pages with `after`, and bad parameters are 400s naming them.

use coupon_server::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::App;

/// Every event after `after` (all of them from the start), `limit` at a time.
async fn feed(app: &App, query: &str) -> (Vec<Value>, Value) {
    let (mut all, mut after) = (Vec::new(), None::<String>);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let url = match &after {
            None => format!("/events?limit=2{query}"),
            Some(a) => format!("/events?limit=2&after={a}{query}"),
        };
        let r = app.get(&url, &app.admin()).await;
        assert_eq!(r.status, StatusCode::OK, "{url}: {}", r.body);
        let page = r.body["events"].as_array().unwrap().clone();
        if page.is_empty() {
            return (all, r.body["next_cursor"].clone());
        }
        assert!(page.len() <= 2 && std::time::Instant::now() < deadline);
        all.extend(page);
        after = r.body["next_cursor"].as_str().map(str::to_owned);
    }
}

/// Waits until the feed holds `n` events (PostgreSQL shows a transaction once every older one on
/// the server has ended, which may take a moment while other tests write).
async fn feed_of(app: &App, n: usize, query: &str) -> Vec<Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (events, _) = feed(app, query).await;
        if events.len() >= n || std::time::Instant::now() > deadline {
            assert_eq!(events.len(), n, "{events:#?}");
            return events;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

pub async fn events_show_what_the_answers_showed(app: App) {
    let admin = app.admin();
    let service = app.token("checkout", Role::Service);
    let created = app
        .post(
            "/coupons",
            &admin,
            json!({"name": "Flash", "discount": {"type": "fixed_amount", "value": 500, "currency": "EUR"},
                   "total_codes": 3, "low_stock_threshold": 1, "metadata": {"campaign": "c-9"}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["low_stock_threshold"], 1);
    let book = created.body["coupon_book_id"].as_str().unwrap().to_owned();
    app.upload(&book, &["EV-A", "EV-B", "EV-C"]).await;
    let claimed = app
        .post(
            "/coupons/assign",
            &service,
            json!({"coupon_book_id": book, "user_id": "ada", "metadata": {"src": "app"}}),
        )
        .await;
    assert_eq!(claimed.status, StatusCode::CREATED, "{}", claimed.body);
    let code = claimed.body["assigned_code"].as_str().unwrap().to_owned();
    let locked = app
        .post(&format!("/coupons/lock/{code}"), &service, json!({"user_id": "ada"}))
        .await;
    let redeemed = app
        .post(
            &format!("/coupons/redeem/{code}"),
            &service,
            json!({"user_id": "ada", "order_id": "o-1", "order_amount": 2000, "lock_id": locked.body["lock_id"]}),
        )
        .await;
    assert_eq!(redeemed.status, StatusCode::OK, "{}", redeemed.body);
    let id = redeemed.body["redemption_id"].as_str().unwrap();
    let rolled_back = app
        .post(
            &format!("/coupons/redemptions/{id}/rollback"),
            &service,
            json!({"reason": "refund"}),
        )
        .await;
    assert_eq!(rolled_back.status, StatusCode::OK, "{}", rolled_back.body);
    let patched = app
        .call(
            reqwest::Method::PATCH,
            &format!("/coupons/{book}"),
            Some(&admin),
            Some(json!({"low_stock_threshold": 2})),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(patched.body["low_stock_threshold"], 2);

    let events = feed_of(&app, 8, "").await;
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "book.created",
            "codes.added",
            "code.claimed",
            "code.locked",
            "code.redeemed",
            "redemption.rolled_back",
            "book.updated",
            "book.low_stock",
        ]
    );
    assert_eq!(events[0]["data"], created.body, "a book as its creation answered");
    let mut claim = claimed.body.clone();
    claim.as_object_mut().unwrap().remove("coupon");
    assert_eq!(
        events[2]["data"], claim,
        "a claim as its answer showed it, less the book"
    );
    assert_eq!(events[3]["data"], locked.body);
    assert_eq!(events[4]["data"], redeemed.body);
    assert_eq!(events[5]["data"], rolled_back.body);
    // The patch moved `updated_at`; the event was written with it.
    assert_eq!(events[6]["data"], patched.body);
    assert_eq!(
        events[7]["data"],
        json!({"coupon_book_id": book, "available": 2, "low_stock_threshold": 2})
    );
    for e in &events[2..6] {
        assert_eq!(
            (e["code"].as_str(), e["user_id"].as_str()),
            (Some(code.as_str()), Some("ada"))
        );
        assert_eq!(e["book_id"], json!(book));
    }
    assert!(events
        .iter()
        .all(|e| e["occurred_at"].is_string() && e["id"].is_string()));

    // Filtered by type, and continued from where a consumer stands.
    let (only, _) = feed(&app, "&type=code.locked,book.low_stock").await;
    let kinds: Vec<&str> = only.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["code.locked", "book.low_stock"]);
    let (_, end) = feed(&app, "").await;
    let r = app
        .get(&format!("/events?after={}", end.as_str().unwrap()), &admin)
        .await;
    assert_eq!(
        (r.body["events"].clone(), r.body["next_cursor"].clone()),
        (json!([]), end)
    );
}

pub async fn bad_feed_parameters_are_400s(app: App) {
    let admin = app.admin();
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("after=12", "after"),
        ("after=1-x", "after"),
        ("type=code.claimed,code.bogus", "type"),
        ("type=", "type"),
    ] {
        let r = app.get(&format!("/events?{query}"), &admin).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}: {}", r.body);
        r.assert_invalid(field);
    }
    let r = app.get("/events", &app.user("ada")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}
