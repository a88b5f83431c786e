//! A book's supply over HTTP: importing files of codes, and removing codes nobody held.

use reqwest::StatusCode;
use serde_json::json;

use crate::pool::{codes_of, list, pool_of_every_state};
use crate::{App, Reply};

/// Posts `body` to the import route with that content type.
async fn import(app: &App, book: &str, content_type: Option<&str>, body: &str) -> Reply {
    let mut req = app
        .http
        .post(format!("{}/coupons/{book}/codes/import", app.base))
        .bearer_auth(app.admin())
        .body(body.to_owned());
    if let Some(kind) = content_type {
        req = req.header("content-type", kind);
    }
    Reply::read(req.send().await.unwrap()).await
}

pub async fn import_reads_csv_and_plain_text(app: App) {
    let book = app.book(json!({})).await;
    app.upload(&book, &["OLD-1"]).await;
    let other = app.book(json!({})).await;
    app.upload(&other, &["ELSEWHERE"]).await;
    let file =
        "Code,Note\r\nnew-1,first\r\n\r\n\"NEW-2\",\"with, a comma\"\r\nNew-1,again\r\nold-1\r\n  \r\nelsewhere\r\n";
    let r = import(&app, &book, Some("text/csv; charset=utf-8"), file).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(
        r.body,
        json!({"uploaded_codes_count": 2, "duplicates_count": 3, "duplicates": ["NEW-1", "OLD-1", "ELSEWHERE"]})
    );
    let plain = import(&app, &book, Some("text/plain"), "plain-1\nPLAIN-2\nnew-2").await;
    assert_eq!(
        plain.body,
        json!({"uploaded_codes_count": 2, "duplicates_count": 1, "duplicates": ["NEW-2"]})
    );
    assert_eq!(
        codes_of(&list(&app, &book, "").await),
        ["OLD-1", "NEW-1", "NEW-2", "PLAIN-1", "PLAIN-2"]
    );
    let stats = app.stats(&book).await;
    assert_eq!(
        (stats["total_generated"].clone(), stats["available"].clone()),
        (json!(5), json!(5))
    );
    assert_eq!(app.claim(&book, "alice").await, "OLD-1");
}

pub async fn a_bad_import_writes_nothing(app: App) {
    let book = app.book(json!({"total_codes": 4})).await;
    app.upload(&book, &["HAVE-1"]).await;
    let before = app.stats(&book).await;

    let bad = import(
        &app,
        &book,
        Some("text/csv"),
        "code\nGOOD-1\n\nGOOD-2\nnot good\nGOOD-3\n",
    )
    .await;
    assert_eq!(
        (bad.status, bad.code()),
        (StatusCode::BAD_REQUEST, "invalid_request"),
        "{}",
        bad.body
    );
    assert_eq!(
        bad.body["detail"],
        json!("codes: line 5: a code may contain only letters, digits, '-' and '_'")
    );
    let too_long = import(&app, &book, Some("text/plain"), &format!("A\n{}\n", "L".repeat(65))).await;
    assert_eq!(
        too_long.body["detail"],
        json!("codes: line 2: a code has 1 to 64 characters")
    );
    let empty = import(&app, &book, Some("text/csv"), "code\n\n").await;
    assert_eq!(
        (empty.status, empty.body["detail"].clone()),
        (StatusCode::BAD_REQUEST, json!("codes: the file holds no codes"))
    );

    // More codes than the book has room for: the book as stored refuses a well-formed file.
    let over = import(&app, &book, Some("text/csv"), "A-1\nA-2\nA-3\nA-4\n").await;
    assert_eq!(
        (over.status, over.code()),
        (StatusCode::CONFLICT, "total_codes_exceeded")
    );
    assert!(
        over.body["detail"].as_str().unwrap().contains("total_codes"),
        "{}",
        over.body
    );

    for kind in [Some("application/json"), Some("text/html"), None] {
        let r = import(&app, &book, kind, "A-1\n").await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            "{kind:?}"
        );
        assert_eq!(r.content_type, "application/problem+json");
    }
    assert_eq!(app.stats(&book).await, before, "nothing was written");
    assert_eq!(codes_of(&list(&app, &book, "").await), ["HAVE-1"]);

    let fits = import(&app, &book, Some("text/csv"), "A-1\nA-2\nA-3\n").await;
    assert_eq!(fits.body["uploaded_codes_count"], json!(3), "{}", fits.body);

    let shared = app
        .book(json!({"code_mode": "shared", "code": "SHARED", "total_codes": 5}))
        .await;
    let r = import(&app, &shared, Some("text/csv"), "X-1\n").await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "shared_book"));
    let missing = import(&app, "018f0000-0000-7000-8000-000000000000", Some("text/csv"), "X-1\n").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let user = app
        .http
        .post(format!("{}/coupons/{book}/codes/import", app.base))
        .bearer_auth(app.user("alice"))
        .header("content-type", "application/json")
        .body("X-1")
        .send()
        .await
        .unwrap();
    assert_eq!(
        user.status(),
        StatusCode::FORBIDDEN,
        "the role comes before the media type"
    );
}

pub async fn removing_codes_takes_only_never_held_ones(app: App) {
    let book = pool_of_every_state(&app).await;
    app.upload(&book, &["P-SPARE"]).await;
    let admin = app.admin();
    let path = format!("/coupons/{book}/codes/remove");
    let removed = app
        .post(
            &path,
            &admin,
            json!({"codes": ["p-avail", "P-SPARE", "P-ACTIVE", "P-LOCKED", "P-REDEEMED", "NOPE", "P-AVAIL"]}),
        )
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    assert_eq!(
        removed.body,
        json!({"removed_count": 2, "not_removed": [
            {"code": "P-ACTIVE", "reason": "held"},
            {"code": "P-LOCKED", "reason": "held"},
            {"code": "P-REDEEMED", "reason": "redeemed"},
            {"code": "NOPE", "reason": "unknown"},
        ]})
    );
    let stats = app.stats(&book).await;
    assert_eq!(
        (stats["total_generated"].clone(), stats["available"].clone()),
        (json!(4), json!(1))
    );
    assert_eq!(
        codes_of(&list(&app, &book, "").await),
        ["P-LAPSED", "P-ACTIVE", "P-LOCKED", "P-REDEEMED"]
    );
    let gone = app.post("/coupons/assign/P-AVAIL", &app.user("erin"), json!({})).await;
    assert_eq!((gone.status, gone.code()), (StatusCode::NOT_FOUND, "not_found"));
    assert_eq!(
        app.claim(&book, "erin").await,
        "P-LAPSED",
        "the removed codes are not dealt"
    );

    app.upload(&book, &["P-AVAIL"]).await;
    assert_eq!(app.stats(&book).await["total_generated"], json!(5));

    for (body, field) in [
        (json!({"codes": []}), "codes"),
        (json!({"codes": ["OK", "not ok"]}), "codes"),
        (json!({}), "body"),
        (json!({"codes": ["A"], "extra": 1}), "body"),
    ] {
        let r = app.post(&path, &admin, body.clone()).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{body}"
        );
        assert!(r.body["detail"].as_str().unwrap().starts_with(field), "{}", r.body);
    }
    let bad = app.post(&path, &admin, json!({"codes": ["OK", "not ok"]})).await;
    assert!(
        bad.body["detail"].as_str().unwrap().contains("codes[1]"),
        "{}",
        bad.body
    );
    let shared = app
        .book(json!({"code_mode": "shared", "code": "SHARED", "total_codes": 5}))
        .await;
    let r = app
        .post(
            &format!("/coupons/{shared}/codes/remove"),
            &admin,
            json!({"codes": ["SHARED"]}),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "shared_book"));
    let user = app
        .post(&path, &app.user("alice"), json!({"codes": ["P-LAPSED"]}))
        .await;
    assert_eq!(user.status, StatusCode::FORBIDDEN);
}
