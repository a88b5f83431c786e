//! A book's pool of codes over HTTP: the JSON listing, the CSV export, the file import and removal.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::{App, Reply};

/// A user id a CSV writer has to quote.
const AWKWARD: &str = "O'Brien, \"Jr\"";

/// A book holding one code in each state, as of the app's clock after this returns (T0 + 600 s):
/// P-AVAIL never claimed, P-LAPSED claimed at T0 with its 600 s claim TTL passed, P-ACTIVE held,
/// P-LOCKED held under a lock until 12:11, P-REDEEMED redeemed. Claims made at 12:05 lapse at 12:15.
pub async fn pool_of_every_state(app: &App) -> String {
    let book = app
        .book(json!({"claim_ttl_seconds": 600, "lock_ttl_seconds": 60, "max_codes_per_user": null}))
        .await;
    app.upload(&book, &["P-AVAIL", "P-LAPSED", "P-ACTIVE", "P-LOCKED", "P-REDEEMED"])
        .await;
    let claim = |code: &'static str, user: &'static str| async move {
        let r = app
            .post(&format!("/coupons/assign/{code}"), &app.user(user), json!({}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    };
    claim("P-LAPSED", "dave").await;
    app.clock.advance_seconds(300);
    claim("P-ACTIVE", "alice").await;
    claim("P-LOCKED", AWKWARD).await;
    claim("P-REDEEMED", "carol").await;
    let redeemed = app
        .post("/coupons/redeem/P-REDEEMED", &app.user("carol"), json!({}))
        .await;
    assert_eq!(redeemed.status, StatusCode::OK, "{}", redeemed.body);
    app.clock.advance_seconds(300);
    let locked = app.post("/coupons/lock/P-LOCKED", &app.user(AWKWARD), json!({})).await;
    assert_eq!(locked.status, StatusCode::OK, "{}", locked.body);
    book
}

pub async fn list(app: &App, book: &str, query: &str) -> Reply {
    app.get(&format!("/coupons/{book}/codes{query}"), &app.admin()).await
}

/// `(code, status, owner)` of each listed code.
fn summary(r: &Reply) -> Vec<(String, String, Value)> {
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["code"].as_str().unwrap().to_owned(),
                c["status"].as_str().unwrap().to_owned(),
                c["owner"].clone(),
            )
        })
        .collect()
}

pub fn codes_of(r: &Reply) -> Vec<String> {
    summary(r).into_iter().map(|(code, _, _)| code).collect()
}

pub async fn the_listing_shows_each_code_as_it_is_now(app: App) {
    let book = pool_of_every_state(&app).await;
    let all = list(&app, &book, "").await;
    assert_eq!(
        summary(&all),
        vec![
            ("P-AVAIL".into(), "available".into(), json!(null)),
            ("P-LAPSED".into(), "available".into(), json!(null)),
            ("P-ACTIVE".into(), "active".into(), json!("alice")),
            ("P-LOCKED".into(), "locked".into(), json!(AWKWARD)),
            ("P-REDEEMED".into(), "redeemed".into(), json!("carol")),
        ]
    );
    assert_eq!(all.body["next_cursor"], json!(null));
    let codes = all.body["codes"].as_array().unwrap();
    assert_eq!(
        codes[1],
        json!({"code": "P-LAPSED", "instance": 0, "status": "available", "owner": null, "claimed_at": null,
            "claim_expires_at": null, "locked_until": null, "redemptions": 0, "metadata": {}}),
        "a lapsed claim leaves no trace"
    );
    assert_eq!(
        codes[2],
        json!({"code": "P-ACTIVE", "instance": 0, "status": "active", "owner": "alice",
            "claimed_at": "2026-06-01T12:05:00.000Z", "claim_expires_at": "2026-06-01T12:15:00.000Z",
            "locked_until": null, "redemptions": 0, "metadata": {}})
    );
    assert_eq!(codes[3]["locked_until"], json!("2026-06-01T12:11:00.000Z"));
    assert_eq!(codes[4]["redemptions"], json!(1));

    for (status, expected) in [
        ("available", vec!["P-AVAIL", "P-LAPSED"]),
        ("active", vec!["P-ACTIVE"]),
        ("locked", vec!["P-LOCKED"]),
        ("redeemed", vec!["P-REDEEMED"]),
        ("expired", vec![]),
    ] {
        let r = list(&app, &book, &format!("?status={status}")).await;
        assert_eq!(codes_of(&r), expected, "{status}");
    }

    // The lock lapses: the code is its holder's again, active.
    app.clock.advance_seconds(60);
    let active = list(&app, &book, "?status=active").await;
    assert_eq!(codes_of(&active), ["P-ACTIVE", "P-LOCKED"]);
}

pub async fn the_listing_pages_and_checks_its_input(app: App) {
    let book = pool_of_every_state(&app).await;
    let (mut seen, mut cursor, mut pages) = (Vec::new(), None::<String>, 0);
    loop {
        let query = match &cursor {
            Some(c) => format!("?limit=2&cursor={c}"),
            None => "?limit=2".to_owned(),
        };
        let page = list(&app, &book, &query).await;
        let codes = codes_of(&page);
        assert!(codes.len() <= 2);
        seen.extend(codes);
        pages += 1;
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ["P-AVAIL", "P-LAPSED", "P-ACTIVE", "P-LOCKED", "P-REDEEMED"]);
    let available = list(&app, &book, "?status=available&limit=1").await;
    let next = available.body["next_cursor"].as_str().unwrap().to_owned();
    let rest = list(&app, &book, &format!("?status=available&limit=1&cursor={next}")).await;
    assert_eq!(codes_of(&rest), ["P-LAPSED"], "the filter holds across pages");

    for query in [
        "?status=lapsed",
        "?status=",
        "?cursor=abc",
        "?cursor=-1",
        "?cursor=0",
        "?cursor=99999999999999999999",
        "?limit=0",
        "?limit=1001",
        "?limit=many",
    ] {
        let r = list(&app, &book, query).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{query}"
        );
    }
    assert!(list(&app, &book, "?cursor=abc").await.body["detail"]
        .as_str()
        .unwrap()
        .starts_with("cursor:"));
    assert_eq!(list(&app, &book, "?limit=1000").await.status, StatusCode::OK);
    let missing = list(&app, "018f0000-0000-7000-8000-000000000000", "").await;
    assert_eq!((missing.status, missing.code()), (StatusCode::NOT_FOUND, "not_found"));
    let user = app.get(&format!("/coupons/{book}/codes"), &app.user("alice")).await;
    assert_eq!((user.status, user.code()), (StatusCode::FORBIDDEN, "forbidden"));
}

pub async fn an_expired_books_codes_are_expired(app: App) {
    let book = app.book(json!({"expires_at": "2026-06-01T13:00:00Z"})).await;
    app.upload(&book, &["E-1", "E-2", "E-3"]).await;
    let claimed = app.post("/coupons/assign/E-1", &app.user("alice"), json!({})).await;
    assert_eq!(claimed.status, StatusCode::CREATED);
    let redeemed = app.post("/coupons/redeem/E-1", &app.user("alice"), json!({})).await;
    assert_eq!(redeemed.status, StatusCode::OK);
    app.clock.advance_seconds(2 * 3600);
    let all = list(&app, &book, "").await;
    let statuses: Vec<_> = summary(&all).into_iter().map(|(_, s, _)| s).collect();
    assert_eq!(statuses, ["redeemed", "expired", "expired"]);
    assert_eq!(codes_of(&list(&app, &book, "?status=expired").await), ["E-2", "E-3"]);
    assert_eq!(codes_of(&list(&app, &book, "?status=redeemed").await), ["E-1"]);
    for status in ["available", "active", "locked"] {
        assert_eq!(
            codes_of(&list(&app, &book, &format!("?status={status}")).await),
            Vec::<String>::new()
        );
    }
}

/// The CSV export: status, content type, disposition and the parsed records.
async fn export(app: &App, book: &str, query: &str) -> (StatusCode, String, String, Vec<Vec<String>>) {
    let res = app
        .http
        .get(format!("{}/coupons/{book}/codes{query}", app.base))
        .bearer_auth(app.admin())
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    let header = |name: &str| {
        res.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (status, kind, disposition) = (res.status(), header("content-type"), header("content-disposition"));
    let body = res.bytes().await.unwrap();
    let records = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(&body[..])
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (status, kind, disposition, records)
}

pub async fn the_pool_exports_as_csv(app: App) {
    let book = pool_of_every_state(&app).await;
    let (status, kind, disposition, rows) = export(&app, &book, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(kind, "text/csv; charset=utf-8");
    assert_eq!(disposition, format!("attachment; filename=\"{book}-codes.csv\""));
    assert_eq!(
        rows[0],
        [
            "code",
            "instance",
            "status",
            "owner",
            "claimed_at",
            "claim_expires_at",
            "locked_until",
            "redemptions"
        ]
    );
    assert_eq!(rows.len(), 6, "one row per code");
    assert_eq!(rows[1], ["P-AVAIL", "0", "available", "", "", "", "", "0"]);
    assert_eq!(rows[2], ["P-LAPSED", "0", "available", "", "", "", "", "0"]);
    assert_eq!(
        rows[4],
        [
            "P-LOCKED",
            "0",
            "locked",
            AWKWARD,
            "2026-06-01T12:05:00.000Z",
            "2026-06-01T12:15:00.000Z",
            "2026-06-01T12:11:00.000Z",
            "0"
        ],
        "the owner's comma and quotes survive"
    );
    let json = list(&app, &book, "").await;
    let from_json: Vec<_> = summary(&json).into_iter().map(|(c, s, _)| (c, s)).collect();
    let from_csv: Vec<_> = rows[1..].iter().map(|r| (r[0].clone(), r[2].clone())).collect();
    assert_eq!(from_csv, from_json, "the same states as the JSON");

    let (_, _, _, available) = export(&app, &book, "?status=available").await;
    let codes: Vec<_> = available.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(codes, ["code", "P-AVAIL", "P-LAPSED"]);
    let (_, _, _, none) = export(&app, &book, "?status=expired").await;
    assert_eq!(none.len(), 1, "only the header row");

    // Errors come before the body starts, as problems.
    let (status, kind, _, _) = export(&app, "018f0000-0000-7000-8000-000000000000", "").await;
    assert_eq!(
        (status, kind.as_str()),
        (StatusCode::NOT_FOUND, "application/problem+json")
    );
    let (status, _, _, _) = export(&app, &book, "?status=bogus").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

pub async fn the_export_streams_a_large_book_in_pages(app: App) {
    let book = app.book(json!({})).await;
    let codes: Vec<String> = (0..12_000).map(|i| format!("BULK-{i:05}")).collect();
    for chunk in codes.chunks(6_000) {
        let r = app
            .post(
                "/coupons/codes",
                &app.admin(),
                json!({"coupon_book_id": book, "codes": chunk}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let (status, _, _, rows) = export(&app, &book, "").await;
    assert_eq!(status, StatusCode::OK);
    let exported: Vec<_> = rows[1..].iter().map(|r| r[0].clone()).collect();
    assert_eq!(exported, codes, "every code once, in order, across export pages");
}
