use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::App;

pub async fn health_and_readiness(app: App) {
    let live = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(
        (live.status, live.body.clone()),
        (StatusCode::OK, json!({"status": "ok"}))
    );
    let ready = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(
        (ready.status, ready.body.clone()),
        (StatusCode::OK, json!({"status": "ok"}))
    );
}

pub async fn openapi_and_docs_are_served(app: App) {
    let doc = app.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(doc.status, StatusCode::OK);
    assert!(doc.body["openapi"].as_str().unwrap().starts_with("3.1"));
    // The webhook URL pattern is this server's: public addresses only, as it allowed no network.
    let pattern = doc.body["components"]["schemas"]["NewEndpoint"]["properties"]["url"]["pattern"]
        .as_str()
        .unwrap();
    let url = regex::Regex::new(pattern).unwrap();
    for (candidate, admitted) in [
        ("https://crm.example/hooks", true),
        ("http://93.184.216.34:8080/in", true),
        ("http://127.0.0.1:8080/in", false),
        ("http://10.20.30.40/in", false),
        ("http://169.254.169.254/", false),
    ] {
        assert_eq!(url.is_match(candidate), admitted, "{candidate}");
    }
    let paths = doc.body["paths"].as_object().unwrap();
    for route in [
        "/coupons",
        "/coupons/{book_id}",
        "/coupons/codes",
        "/coupons/{book_id}/codes/generate",
        "/coupons/{book_id}/codes",
        "/coupons/{book_id}/codes/import",
        "/coupons/{book_id}/codes/remove",
        "/coupons/search",
        "/coupons/assign",
        "/coupons/assign/{code}",
        "/coupons/lock/{code}",
        "/coupons/unlock/{code}",
        "/coupons/redeem/{code}",
        "/coupons/validate/{code}",
        "/users/{user_id}/coupons",
        "/users/{user_id}/redemptions",
        "/coupons/{book_id}/redemptions",
        "/coupons/redemptions/{redemption_id}/rollback",
        "/healthz",
        "/readyz",
    ] {
        assert!(paths.contains_key(route), "{route} is documented");
    }
    assert!(doc.body["components"]["securitySchemes"]["bearer"].is_object());

    let page = app.http.get(format!("{}/docs", app.base)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("/docs/swagger-ui-bundle.js"));
    let bundle = app
        .http
        .get(format!("{}/docs/swagger-ui-bundle.js", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(bundle.status(), StatusCode::OK);
    assert!(
        bundle.bytes().await.unwrap().len() > 100_000,
        "the vendored bundle is served"
    );
}

pub async fn search_over_http(app: App) {
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            app.book(json!({"name": format!("Weekend deal {i}"), "tags": ["weekend"]}))
                .await,
        );
        app.clock.advance_seconds(1);
    }
    app.book(json!({"name": "Weekday deal"})).await;
    let alice = app.user("alice");
    let first = app.get("/coupons/search?q=weekend&limit=2", &alice).await;
    let names: Vec<_> = first.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["coupon_book_id"].clone())
        .collect();
    assert_eq!(names, vec![json!(ids[2]), json!(ids[1])]);
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let second = app
        .get(&format!("/coupons/search?q=weekend&limit=2&cursor={cursor}"), &alice)
        .await;
    assert_eq!(second.body["results"][0]["coupon_book_id"], json!(ids[0]));
    assert_eq!(second.body["next_cursor"], json!(null));
    let all = app.get("/coupons/search", &alice).await;
    assert_eq!(all.body["results"].as_array().unwrap().len(), 4);
}
