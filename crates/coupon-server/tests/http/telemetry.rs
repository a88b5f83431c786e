//! What operators see: `/metrics` counts requests by route and claims by outcome, times batches and
//! shows the database's connections; every answer carries a request id; a metrics token guards
//! the scrape. Every server of the test process records into one recorder and tests run at once,
//! so counters are checked to have risen by at least what a case did, never to equal it.

use coupon_store::testing::Backend;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::{open_metrics, App};

/// The sum of every series named `name` whose labels include `labels` (0 when there is none).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, series_labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.strip_suffix('}')?),
                None => (series, ""),
            };
            let has = |(k, v): &(&str, &str)| {
                series_labels
                    .split("\",")
                    .any(|pair| pair.trim_end_matches('"') == format!("{k}=\"{v}"))
            };
            (series_name == name && labels.iter().all(has)).then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

async fn scrape(app: &App) -> String {
    let res = app.http.get(format!("{}/metrics", app.base)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    res.text().await.unwrap()
}

pub async fn requests_and_outcomes_are_counted(app: App) {
    let book = app.book(json!({"max_codes_per_user": 1})).await;
    app.upload(&book, &["METRICS-ONLY-ONE"]).await;
    let before = scrape(&app).await;

    app.claim(&book, "first").await;
    let refused = app
        .post("/coupons/assign", &app.user("second"), json!({"coupon_book_id": book}))
        .await;
    assert_eq!(refused.code(), "out_of_stock", "{}", refused.body);
    let unknown = app.call(Method::GET, "/no/such/route", None, None).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let wrong_method = app.call(Method::DELETE, "/coupons/assign", None, None).await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    // A read, so that SQLite has opened a reader connection to count.
    app.stats(&book).await;
    let after = scrape(&app).await;

    let rose = |name: &str, labels: &[(&str, &str)]| sample(&after, name, labels) - sample(&before, name, labels);
    let assign = |status| [("route", "/coupons/assign"), ("method", "POST"), ("status", status)];
    for status in ["201", "409"] {
        assert!(
            rose("coupond_http_requests_total", &assign(status)) >= 1.0,
            "{status}: {after}"
        );
        let timed = rose("coupond_http_request_duration_seconds_count", &assign(status));
        assert!(timed >= 1.0, "{status} is timed");
        let ten_seconds = [&assign(status)[..], &[("le", "10")]].concat();
        assert!(rose("coupond_http_request_duration_seconds_bucket", &ten_seconds) >= 1.0);
    }
    // The route's template, never the raw path; an unknown path adds one series, not one per path.
    assert!(!after.contains("/no/such/route"));
    let unmatched = [("route", "unmatched"), ("method", "GET"), ("status", "404")];
    assert!(rose("coupond_http_requests_total", &unmatched) >= 1.0);
    let not_allowed = [("route", "/coupons/assign"), ("method", "DELETE"), ("status", "405")];
    assert!(rose("coupond_http_requests_total", &not_allowed) >= 1.0);

    assert!(rose("coupond_claims_total", &[("outcome", "ok")]) >= 1.0);
    assert!(rose("coupond_claims_total", &[("outcome", "out_of_stock")]) >= 1.0);
    // Both claims reached the database in a batch of the engine.
    assert!(rose("coupond_batch_size_count", &[("op", "claim")]) >= 1.0);
    assert!(rose("coupond_batch_commit_seconds_count", &[("op", "claim")]) >= 1.0);
    assert!(after.contains("# TYPE coupond_batch_size histogram"), "{after}");

    // Gauges sampled at the scrape: every connection is in use or idle, none negative.
    let pool = [("pool", "requests")];
    let in_use = sample(&after, "coupond_db_connections", &[pool[0], ("state", "in_use")]);
    let idle = sample(&after, "coupond_db_connections", &[pool[0], ("state", "idle")]);
    assert!(in_use >= 0.0 && idle >= 0.0 && in_use + idle >= 1.0, "{after}");
    assert!(after.contains("coupond_db_waiting{pool=\"requests\"}"), "{after}");
}

pub async fn request_ids_are_echoed_generated_or_replaced(app: App) {
    let id_of = |res: &reqwest::Response| {
        res.headers()
            .get("x-request-id")
            .expect("every answer has an id")
            .to_str()
            .unwrap()
            .to_owned()
    };
    let get = |path: &str| app.http.get(format!("{}{path}", app.base));
    let is_generated = |id: &str| uuid::Uuid::parse_str(id).is_ok_and(|u| u.get_version_num() == 7);

    let sent = "checkout-7f3a/retry 2";
    let echoed = get("/healthz").header("x-request-id", sent).send().await.unwrap();
    assert_eq!(id_of(&echoed), sent);
    let longest = "r".repeat(200);
    let echoed = get("/healthz").header("x-request-id", &longest).send().await.unwrap();
    assert_eq!(id_of(&echoed), longest);

    let fresh = get("/healthz").send().await.unwrap();
    let other = get("/healthz").send().await.unwrap();
    assert!(is_generated(&id_of(&fresh)), "{}", id_of(&fresh));
    assert_ne!(id_of(&fresh), id_of(&other));

    let too_long = "r".repeat(201);
    let latin1 = reqwest::header::HeaderValue::from_bytes(b"caf\xe9").unwrap();
    for insane in [
        reqwest::header::HeaderValue::from_str(&too_long).unwrap(),
        latin1,
        reqwest::header::HeaderValue::from_static("tab\tinside"),
    ] {
        let replaced = get("/healthz")
            .header("x-request-id", insane.clone())
            .send()
            .await
            .unwrap();
        assert!(is_generated(&id_of(&replaced)), "{insane:?} is replaced");
    }

    // Refusals and unknown routes carry one too.
    let refused = app.http.post(format!("{}/coupons", app.base)).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(is_generated(&id_of(&refused)));
    let unknown = get("/no/such/route").header("x-request-id", sent).send().await.unwrap();
    assert_eq!(
        (unknown.status(), id_of(&unknown)),
        (StatusCode::NOT_FOUND, sent.to_owned())
    );
}

pub async fn a_metrics_token_guards_the_scrape(backend: Backend) {
    const TOKEN: &str = "scrape-secret-0123456789";
    let app = App::spawn_with_metrics(backend, open_metrics().with_token(Some(TOKEN.into()))).await;
    let scrape = |token: Option<String>| {
        let mut req = app.http.get(format!("{}/metrics", app.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send()
    };
    for token in [None, Some(format!("{TOKEN}x")), Some("short".into()), Some(app.admin())] {
        let res = scrape(token.clone()).await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{token:?}");
        assert!(res.headers().contains_key("www-authenticate"));
        let body = res.text().await.unwrap();
        assert!(
            body.contains("\"code\":\"unauthorized\"") && !body.contains(TOKEN),
            "{body}"
        );
    }
    let ok = scrape(Some(TOKEN.into())).await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert!(ok.text().await.unwrap().contains("coupond_http_requests_total"));
}
