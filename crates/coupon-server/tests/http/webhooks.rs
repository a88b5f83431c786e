//! Webhook endpoints over HTTP: registered with a secret shown once, listed without it, checked
//! input (400s naming the field, nothing written), deleted; their deliveries listed and retried.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::App;

pub async fn endpoints_are_registered_listed_and_deleted(app: App) {
    let admin = app.admin();
    let created = app
        .post("/webhooks", &admin, json!({"url": "https://crm.example/hooks/coupond", "events": ["code.claimed", "book.sold_out", "code.claimed"], "description": " CRM "}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let secret = created.body["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_") && secret.len() > 40, "{secret}");
    assert_eq!(created.body["events"], json!(["code.claimed", "book.sold_out"]));
    assert_eq!(created.body["description"], "CRM");
    let id = created.body["id"].as_str().unwrap().to_owned();

    let every = app
        .post(
            "/webhooks",
            &admin,
            json!({"url": "http://93.184.216.34:58080/in", "events": ["*"]}),
        )
        .await;
    assert_eq!(every.status, StatusCode::CREATED, "{}", every.body);
    assert_ne!(
        every.body["secret"], created.body["secret"],
        "each endpoint has its own secret"
    );

    let list = app.get("/webhooks", &admin).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body["webhooks"].as_array().unwrap().len(), 2);
    assert!(!list.body.to_string().contains(&secret), "the secret is shown once");
    let one = app.get(&format!("/webhooks/{id}"), &admin).await;
    assert_eq!(
        (one.status, one.body["url"].clone()),
        (StatusCode::OK, json!("https://crm.example/hooks/coupond"))
    );
    assert!(one.body.get("secret").is_none());

    let deliveries = app.get(&format!("/webhooks/{id}/deliveries"), &admin).await;
    assert_eq!(
        (deliveries.status, deliveries.body["deliveries"].clone()),
        (StatusCode::OK, json!([]))
    );

    let gone = app
        .call(Method::DELETE, &format!("/webhooks/{id}"), Some(&admin), None)
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&format!("/webhooks/{id}"), &admin).await.status,
        StatusCode::NOT_FOUND
    );
    let again = app
        .call(Method::DELETE, &format!("/webhooks/{id}"), Some(&admin), None)
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
}

pub async fn bad_endpoints_are_400s_and_write_nothing(app: App) {
    let admin = app.admin();
    let before = app.snapshot().await;
    for (body, field) in [
        (json!({"url": "ftp://crm.example/x", "events": ["*"]}), "url"),
        (json!({"url": "not a url", "events": ["*"]}), "url"),
        (json!({"url": "http://", "events": ["*"]}), "url"),
        // Hosts the URL standard takes but the document's pattern does not: the server keeps to the document.
        (json!({"url": "http://crm.example*/x", "events": ["*"]}), "url"),
        (json!({"url": "http://crm.example.0", "events": ["*"]}), "url"),
        (json!({"url": "http://[::1]:8080/in", "events": ["*"]}), "url"),
        // Internal addresses: this server's operator allowed none.
        (json!({"url": "http://127.0.0.1:8080/in", "events": ["*"]}), "url"),
        (json!({"url": "http://10.0.0.5:58080/in", "events": ["*"]}), "url"),
        (
            json!({"url": "http://169.254.169.254/latest/meta-data/", "events": ["*"]}),
            "url",
        ),
        (json!({"url": "https://192.168.1.10/hook", "events": ["*"]}), "url"),
        (json!({"url": "http://0.0.0.0:80/", "events": ["*"]}), "url"),
        (json!({"url": "HTTPS://crm.example/x", "events": ["*"]}), "url"),
        (json!({"url": "https://crm.example/é", "events": ["*"]}), "url"),
        (json!({"url": "https://crm.example:65536/x", "events": ["*"]}), "url"),
        (
            json!({"url": format!("https://crm.example/{}", "a".repeat(2000)), "events": ["*"]}),
            "url",
        ),
        (json!({"url": "https://crm.example/x", "events": []}), "events"),
        (
            json!({"url": "https://crm.example/x", "events": ["code.bogus"]}),
            "events",
        ),
        (
            json!({"url": "https://crm.example/x", "events": ["*", "code.bogus"]}),
            "events",
        ),
        (
            json!({"url": "https://crm.example/x", "events": ["*"], "description": "d".repeat(501)}),
            "description",
        ),
    ] {
        let r = app.post("/webhooks", &admin, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
        r.assert_invalid(field);
    }
    let r = app
        .post(
            "/webhooks",
            &admin,
            json!({"url": "https://crm.example/x", "events": ["*"], "secret": "mine"}),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "the server owns the secret: {}",
        r.body
    );
    assert_eq!(app.snapshot().await, before, "nothing written");
}
