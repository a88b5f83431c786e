//! Metadata on books, claims, redemptions and rollbacks: stored and shown as given, and a bad
//! entry refused with a 400 naming its key, before anything is written.

use coupon_server::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};

use crate::App;

/// Bad metadata, each with what its 400 must name.
fn bad() -> Vec<(Value, String)> {
    let many: Map<String, Value> = (0..51).map(|i| (format!("k{i}"), json!("v"))).collect();
    let long_key = "k".repeat(41);
    vec![
        (Value::Object(many), "at most 50 keys".into()),
        (json!({ long_key.clone(): "v" }), format!("\"{long_key}\"")),
        (json!({"note": "v".repeat(501)}), "\"note\"".into()),
        (json!({"ok": "1", "count": 5}), "\"count\"".into()),
        (json!({"flag": null}), "\"flag\"".into()),
        (json!(["a"]), "metadata".into()),
    ]
}

pub async fn metadata_round_trips(app: App) {
    let admin = app.admin();
    let service = app.token("checkout", Role::Service);
    let created = app
        .post(
            "/coupons",
            &admin,
            json!({"name": "Noted", "discount": {"type": "percentage", "value": 10},
                "max_codes_per_user": null, "metadata": {"owner": "growth", "channel": "email"}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["metadata"], json!({"owner": "growth", "channel": "email"}));
    let book = created.body["coupon_book_id"].as_str().unwrap().to_owned();
    let path = format!("/coupons/{book}");
    let patch = |body: Value| app.call(Method::PATCH, &path, Some(&admin), Some(body));
    let replaced = patch(json!({"metadata": {"owner": "retention"}})).await;
    assert_eq!(replaced.body["metadata"], json!({"owner": "retention"}));
    let renamed = patch(json!({"name": "Renamed"})).await;
    assert_eq!(
        renamed.body["metadata"],
        json!({"owner": "retention"}),
        "kept unless given"
    );
    let shown = app.get(&format!("/coupons/{book}"), &admin).await;
    assert_eq!(shown.body["metadata"], json!({"owner": "retention"}));
    assert_eq!(patch(json!({"metadata": null})).await.body["metadata"], json!({}));
    app.book(json!({})).await;
    let plain = app.get("/coupons?q=summer", &admin).await;
    assert_eq!(plain.body["results"][0]["metadata"], json!({}), "none is {{}}");

    app.upload(&book, &["MD-1", "MD-2"]).await;
    let assigned = app
        .post(
            "/coupons/assign",
            &app.user("alice"),
            json!({"coupon_book_id": book, "metadata": {"crm_id": "42"}}),
        )
        .await;
    assert_eq!(assigned.status, StatusCode::CREATED, "{}", assigned.body);
    assert_eq!(assigned.body["metadata"], json!({"crm_id": "42"}));
    let first = assigned.body["assigned_code"].as_str().unwrap().to_owned();
    let second = if first == "MD-1" { "MD-2" } else { "MD-1" };
    let by_code = app
        .post(
            &format!("/coupons/assign/{second}"),
            &service,
            json!({"user_id": "alice", "metadata": {"source": "app"}}),
        )
        .await;
    assert_eq!(by_code.status, StatusCode::CREATED, "{}", by_code.body);
    assert_eq!(by_code.body["metadata"], json!({"source": "app"}));
    let mine = app.get("/users/me/coupons", &app.user("alice")).await;
    let shown: Vec<_> = mine.body["assigned_coupons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["code"].as_str().unwrap().to_owned(), c["metadata"].clone()))
        .collect();
    assert!(shown.contains(&(first.clone(), json!({"crm_id": "42"}))), "{shown:?}");
    assert!(
        shown.contains(&(second.to_owned(), json!({"source": "app"}))),
        "{shown:?}"
    );

    let redeemed = app
        .post(
            &format!("/coupons/redeem/{first}"),
            &service,
            json!({"user_id": "alice", "order_id": "o-1", "metadata": {"cart": "c-1"}}),
        )
        .await;
    assert_eq!(redeemed.status, StatusCode::OK, "{}", redeemed.body);
    assert_eq!(
        (&redeemed.body["metadata"], &redeemed.body["rollback_metadata"]),
        (&json!({"cart": "c-1"}), &json!(null))
    );
    let id = redeemed.body["redemption_id"].as_str().unwrap().to_owned();
    let rollback = format!("/coupons/redemptions/{id}/rollback");
    let undone = app
        .post(&rollback, &service, json!({"metadata": {"refund": "R-7"}}))
        .await;
    assert_eq!(undone.body["rollback_metadata"], json!({"refund": "R-7"}));
    let history = app.get("/users/alice/redemptions", &service).await;
    let entry = &history.body["redemptions"][0];
    assert_eq!(
        (&entry["metadata"], &entry["rollback_metadata"]),
        (&json!({"cart": "c-1"}), &json!({"refund": "R-7"}))
    );
}

pub async fn bad_metadata_is_refused_and_writes_nothing(app: App) {
    let admin = app.admin();
    let service = app.token("checkout", Role::Service);
    let book = app
        .book(json!({"max_codes_per_user": null, "metadata": {"owner": "growth"}}))
        .await;
    app.upload(&book, &["BAD-1", "BAD-2"]).await;
    let code = app.claim(&book, "alice").await;
    let redeemed = app
        .post(
            &format!("/coupons/redeem/{code}"),
            &service,
            json!({"user_id": "alice"}),
        )
        .await;
    let rollback = format!(
        "/coupons/redemptions/{}/rollback",
        redeemed.body["redemption_id"].as_str().unwrap()
    );
    let before = app.stats(&book).await;
    for (metadata, naming) in bad() {
        let new_book = json!({"name": "Bad", "discount": {"type": "percentage", "value": 5}, "metadata": metadata});
        app.post("/coupons", &admin, new_book).await.assert_invalid(&naming);
        let patch = app
            .call(
                Method::PATCH,
                &format!("/coupons/{book}"),
                Some(&admin),
                Some(json!({"name": "Changed", "metadata": metadata})),
            )
            .await;
        patch.assert_invalid(&naming);
        let claim = json!({"coupon_book_id": book, "metadata": metadata});
        app.post("/coupons/assign", &app.user("bob"), claim)
            .await
            .assert_invalid(&naming);
        let by_code = json!({"user_id": "bob", "metadata": metadata});
        app.post("/coupons/assign/BAD-2", &service, by_code)
            .await
            .assert_invalid(&naming);
        let redeem = json!({"user_id": "alice", "order_id": "o-2", "metadata": metadata});
        app.post(&format!("/coupons/redeem/{code}"), &service, redeem)
            .await
            .assert_invalid(&naming);
        app.post(&rollback, &service, json!({"metadata": metadata}))
            .await
            .assert_invalid(&naming);
    }
    assert_eq!(
        app.stats(&book).await,
        before,
        "no claim, redemption or rollback happened"
    );
    let listed = app.get("/coupons", &admin).await;
    let books = listed.body["results"].as_array().unwrap();
    assert_eq!(books.len(), 1, "no book was created");
    assert_eq!(
        (&books[0]["name"], &books[0]["metadata"]),
        (&json!("Summer sale"), &json!({"owner": "growth"}))
    );
    let history = app.get("/users/alice/redemptions", &service).await;
    assert_eq!(history.body["redemptions"][0]["status"], json!("redeemed"));
    assert_eq!(
        app.get("/users/bob/coupons", &admin).await.body["assigned_coupons"],
        json!([])
    );
}
