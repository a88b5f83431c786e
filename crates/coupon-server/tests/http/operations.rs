//! After the sale: rollbacks (alone, repeated, racing each other and new redemptions), the
//! redemption histories, the admin's catalog of every book, and metadata on everything.

use std::sync::Arc;

use coupon_server::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::Barrier;

use crate::{App, Reply};

const UNKNOWN: &str = "018f0000-0000-7000-8000-000000000000";

fn service(app: &App) -> String {
    app.token("checkout", Role::Service)
}

async fn redeem(app: &App, code: &str, body: Value) -> Reply {
    app.post(&format!("/coupons/redeem/{code}"), &service(app), body).await
}

async fn rollback(app: &App, id: &Value, body: Value) -> Reply {
    let id = id.as_str().unwrap();
    app.post(&format!("/coupons/redemptions/{id}/rollback"), &service(app), body)
        .await
}

/// (total_redeemed, total_redemptions, total_discount_applied).
async fn counts(app: &App, book: &str) -> (Value, Value, Value) {
    let s = app.stats(book).await;
    (
        s["total_redeemed"].clone(),
        s["total_redemptions"].clone(),
        s["total_discount_applied"].clone(),
    )
}

/// The user's held coupon of that code.
async fn held(app: &App, user: &str, code: &str) -> Value {
    let r = app.get(&format!("/users/{user}/coupons"), &app.admin()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let all = r.body["assigned_coupons"].as_array().unwrap();
    all.iter().find(|c| c["code"] == code).cloned().unwrap_or(Value::Null)
}

pub async fn a_rollback_gives_the_use_back(app: App) {
    let book = app
        .book(json!({"max_redemptions_per_user": 1, "discount": {"type": "percentage", "value": 10}}))
        .await;
    app.upload(&book, &["RB-1"]).await;
    app.claim(&book, "alice").await;
    let locked = app
        .post("/coupons/lock/RB-1", &service(&app), json!({"user_id": "alice"}))
        .await;
    let original = json!({"user_id": "alice", "order_id": "o-1", "order_amount": 10000,
        "lock_id": locked.body["lock_id"], "metadata": {"cart": "c-1"}});
    let first = redeem(&app, "RB-1", original.clone()).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(
        (
            &first.body["status"],
            &first.body["discount_applied"],
            &first.body["rolled_back_at"]
        ),
        (&json!("redeemed"), &json!(1000), &json!(null))
    );
    let id = first.body["redemption_id"].clone();
    assert_eq!(counts(&app, &book).await, (json!(1), json!(1), json!(1000)));

    // A user may not roll back, not even their own redemption; nothing changes.
    let path = format!("/coupons/redemptions/{}/rollback", id.as_str().unwrap());
    let by_user = app.post(&path, &app.user("alice"), json!({})).await;
    assert_eq!((by_user.status, by_user.code()), (StatusCode::FORBIDDEN, "forbidden"));
    assert_eq!(counts(&app, &book).await, (json!(1), json!(1), json!(1000)));
    let unknown = rollback(&app, &json!(UNKNOWN), json!({})).await;
    assert_eq!((unknown.status, unknown.code()), (StatusCode::NOT_FOUND, "not_found"));
    rollback(&app, &json!("not-a-uuid"), json!({}))
        .await
        .assert_invalid("path");
    rollback(&app, &id, json!({"reason": "x".repeat(501)}))
        .await
        .assert_invalid("reason");

    let undone = rollback(
        &app,
        &id,
        json!({"reason": " payment declined ", "metadata": {"ticket": "T-9"}}),
    )
    .await;
    assert_eq!(undone.status, StatusCode::OK, "{}", undone.body);
    let rolled_back_at = json!("2026-06-01T12:00:00.000Z");
    for (field, value) in [
        ("status", json!("rolled_back")),
        ("rolled_back_at", rolled_back_at.clone()),
        ("reason", json!("payment declined")),
        ("rollback_metadata", json!({"ticket": "T-9"})),
        ("metadata", json!({"cart": "c-1"})),
        ("redemption_id", id.clone()),
        ("order_id", json!("o-1")),
        ("discount_applied", json!(1000)),
    ] {
        assert_eq!(undone.body[field], value, "{field}");
    }
    assert_eq!(counts(&app, &book).await, (json!(0), json!(0), json!(0)));
    let mine = held(&app, "alice", "RB-1").await;
    assert_eq!((&mine["status"], &mine["redemptions"]), (&json!("active"), &json!(0)));

    // Repeating answers the first rollback, counted once.
    app.clock.advance_seconds(5);
    let again = rollback(&app, &id, json!({"reason": "something else"})).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(
        (&again.body["rolled_back_at"], &again.body["reason"]),
        (&rolled_back_at, &json!("payment declined"))
    );
    assert_eq!(counts(&app, &book).await, (json!(0), json!(0), json!(0)));

    // The original request again is a new redemption, within max_redemptions_per_user: 1.
    let anew = redeem(&app, "RB-1", original).await;
    assert_eq!(anew.status, StatusCode::OK, "{}", anew.body);
    assert_ne!(anew.body["redemption_id"], id);
    assert_eq!(counts(&app, &book).await, (json!(1), json!(1), json!(1000)));
    let undone = rollback(&app, &anew.body["redemption_id"], json!({})).await;
    assert_eq!(
        (&undone.body["reason"], &undone.body["rollback_metadata"]),
        (&json!(null), &json!({}))
    );

    // Locked and redeemed again, on a new order.
    let locked = app
        .post("/coupons/lock/RB-1", &service(&app), json!({"user_id": "alice"}))
        .await;
    assert_eq!(locked.status, StatusCode::OK, "{}", locked.body);
    let third = redeem(
        &app,
        "RB-1",
        json!({"user_id": "alice", "order_id": "o-2", "order_amount": 5000, "lock_id": locked.body["lock_id"]}),
    )
    .await;
    assert_eq!(third.status, StatusCode::OK, "{}", third.body);
    assert_eq!(counts(&app, &book).await, (json!(1), json!(1), json!(500)));
    let mine = held(&app, "alice", "RB-1").await;
    assert_eq!((&mine["status"], &mine["redemptions"]), (&json!("redeemed"), &json!(1)));
    let history = app.get(&format!("/coupons/{book}/redemptions"), &app.admin()).await;
    let statuses: Vec<_> = history.body["redemptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].clone())
        .collect();
    assert_eq!(
        statuses,
        [json!("redeemed"), json!("rolled_back"), json!("rolled_back")]
    );
}

pub async fn concurrent_rollbacks_count_once(app: App) {
    let book = app
        .book(json!({"discount": {"type": "fixed_amount", "value": 300}}))
        .await;
    app.upload(&book, &["TWENTY"]).await;
    app.claim(&book, "alice").await;
    let r = redeem(&app, "TWENTY", json!({"user_id": "alice", "order_amount": 1000})).await;
    let id = r.body["redemption_id"].clone();
    assert_eq!(counts(&app, &book).await, (json!(1), json!(1), json!(300)));

    let app = Arc::new(app);
    let start = Arc::new(Barrier::new(20));
    let tasks = (0..20).map(|i| {
        let (app, id, start) = (app.clone(), id.clone(), start.clone());
        tokio::spawn(async move {
            start.wait().await;
            let r = rollback(&app, &id, json!({"reason": format!("attempt {i}")})).await;
            (r.status, r.body)
        })
    });
    let answers: Vec<_> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let (_, first) = &answers[0];
    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], json!("rolled_back"));
        assert_eq!(
            (&body["rolled_back_at"], &body["reason"]),
            (&first["rolled_back_at"], &first["reason"])
        );
    }
    assert_eq!(counts(&app, &book).await, (json!(0), json!(0), json!(0)));
    let mine = held(&app, "alice", "TWENTY").await;
    assert_eq!((&mine["status"], &mine["redemptions"]), (&json!("active"), &json!(0)));
}

pub async fn a_rollback_racing_redeems_keeps_counts_exact(app: App) {
    let book = app
        .book(json!({"max_codes_per_user": null, "max_redemptions_per_code": 3,
            "discount": {"type": "fixed_amount", "value": 100}}))
        .await;
    let codes = ["RACE-A", "RACE-B", "RACE-C", "RACE-D"];
    app.upload(&book, &codes).await;
    let app = Arc::new(app);
    let mut live = 0;
    for code in codes {
        app.post(&format!("/coupons/assign/{code}"), &app.user("alice"), json!({}))
            .await;
        let first = redeem(
            &app,
            code,
            json!({"user_id": "alice", "order_id": "o-1", "order_amount": 500}),
        )
        .await;
        assert_eq!(first.status, StatusCode::OK, "{}", first.body);
        // The rollback of #1 against redeems #2, #3 and #4: the code allows three at a time.
        let start = Arc::new(Barrier::new(4));
        let undo = {
            let (app, id, start) = (app.clone(), first.body["redemption_id"].clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                rollback(&app, &id, json!({})).await.status
            })
        };
        let redeems: Vec<_> = (2..=4)
            .map(|n| {
                let (app, start) = (app.clone(), start.clone());
                tokio::spawn(async move {
                    start.wait().await;
                    let body = json!({"user_id": "alice", "order_id": format!("o-{n}"), "order_amount": 500});
                    let r = redeem(&app, code, body).await;
                    (r.status, r.code().to_owned())
                })
            })
            .collect();
        assert_eq!(undo.await.unwrap(), StatusCode::OK);
        let mut redeemed = 0;
        for r in futures::future::join_all(redeems).await {
            match r.unwrap() {
                (StatusCode::OK, _) => redeemed += 1,
                (StatusCode::CONFLICT, code) => assert_eq!(code, "already_redeemed"),
                other => panic!("unexpected answer {other:?}"),
            }
        }
        assert!((2..=3).contains(&redeemed), "{code}: {redeemed} redeemed");
        let history = app
            .every_page(&format!("/coupons/{book}/redemptions"), &app.admin(), "redemptions")
            .await;
        let of_code: Vec<_> = history.iter().filter(|r| r["code"] == code).collect();
        assert_eq!(of_code.len(), 1 + redeemed);
        let counted = of_code.iter().filter(|r| r["status"] == "redeemed").count();
        assert_eq!(counted, redeemed, "{code}: the rollback undid #1 only");
        assert_eq!(held(&app, "alice", code).await["redemptions"], json!(counted));
        live += counted;
        let stats = app.stats(&book).await;
        assert_eq!(stats["total_redemptions"], json!(live));
        assert_eq!(stats["total_discount_applied"], json!(live * 100));
    }
}

pub async fn histories_page_newest_first(app: App) {
    let open = json!({"max_codes_per_user": null});
    let (a, b) = (app.book(open.clone()).await, app.book(open).await);
    app.upload(&a, &["A1", "A2", "A3"]).await;
    app.upload(&b, &["B1", "B2"]).await;
    let mut ids = Vec::new();
    for (i, (code, user)) in [
        ("A1", "alice"),
        ("B1", "bob"),
        ("A2", "alice"),
        ("A3", "bob"),
        ("B2", "alice"),
    ]
    .into_iter()
    .enumerate()
    {
        app.post(&format!("/coupons/assign/{code}"), &app.user(user), json!({}))
            .await;
        let r = redeem(&app, code, json!({"user_id": user})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        ids.push((user, r.body["redemption_id"].clone()));
        // Some share an instant: the id breaks the tie.
        if i % 2 == 1 {
            app.clock.advance_seconds(1);
        }
    }
    let undone = rollback(&app, &ids[2].1, json!({})).await;
    assert_eq!(undone.status, StatusCode::OK);

    let alice = app.user("alice");
    let mine = app.every_page("/users/me/redemptions", &alice, "redemptions").await;
    let expected: Vec<_> = ids
        .iter()
        .rev()
        .filter(|(u, _)| *u == "alice")
        .map(|(_, id)| id.clone())
        .collect();
    let got: Vec<_> = mine.iter().map(|r| r["redemption_id"].clone()).collect();
    assert_eq!(got, expected, "newest first, each once");
    let statuses: Vec<_> = mine.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["redeemed", "rolled_back", "redeemed"]);
    assert_eq!(
        app.every_page("/users/alice/redemptions", &service(&app), "redemptions")
            .await,
        mine
    );

    let of_a = app
        .every_page(&format!("/coupons/{a}/redemptions"), &app.admin(), "redemptions")
        .await;
    let codes: Vec<_> = of_a.iter().map(|r| r["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["A3", "A2", "A1"]);
    let bobs = app
        .every_page("/users/bob/redemptions", &app.user("bob"), "redemptions")
        .await;
    assert_eq!(bobs.len(), 2);

    let forbidden = [
        app.get("/users/bob/redemptions", &alice).await,
        app.get(&format!("/coupons/{a}/redemptions"), &alice).await,
        app.get(&format!("/coupons/{a}/redemptions"), &service(&app)).await,
    ];
    for r in forbidden {
        assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "forbidden"), "{}", r.body);
    }
    let missing = app.get(&format!("/coupons/{UNKNOWN}/redemptions"), &app.admin()).await;
    assert_eq!((missing.status, missing.code()), (StatusCode::NOT_FOUND, "not_found"));
    app.get("/users/me/redemptions?cursor=nonsense", &alice)
        .await
        .assert_invalid("cursor");
    app.get("/users/me/redemptions?limit=0", &alice)
        .await
        .assert_invalid("limit");
    app.get("/users/me/redemptions?limit=101", &alice)
        .await
        .assert_invalid("limit");
    assert_eq!(
        app.get("/users/me/redemptions?limit=100", &alice).await.status,
        StatusCode::OK
    );
}

pub async fn the_catalog_lists_every_book(app: App) {
    let mut all = Vec::new();
    for spec in [
        json!({"name": "Live deal"}),
        json!({"name": "Paused deal", "status": "paused"}),
        json!({"name": "Archived deal"}),
        json!({"name": "Expired deal", "expires_at": "2026-05-01T00:00:00Z"}),
        json!({"name": "Future deal", "starts_at": "2026-07-01T00:00:00Z"}),
    ] {
        all.push(json!(app.book(spec).await));
        app.clock.advance_seconds(1);
    }
    let admin = app.admin();
    let archived = app
        .call(
            Method::PATCH,
            &format!("/coupons/{}", all[2].as_str().unwrap()),
            Some(&admin),
            Some(json!({"status": "archived"})),
        )
        .await;
    assert_eq!(archived.status, StatusCode::OK);

    let listed = app.every_page("/coupons", &admin, "results").await;
    let ids: Vec<_> = listed.iter().map(|b| b["coupon_book_id"].clone()).collect();
    assert_eq!(
        ids,
        all.iter().rev().cloned().collect::<Vec<_>>(),
        "newest first, each once"
    );
    let paused = app.get("/coupons?status=paused", &admin).await;
    assert_eq!(paused.body["results"].as_array().unwrap().len(), 1);
    assert_eq!(paused.body["results"][0]["coupon_book_id"], all[1]);
    let archived = app.get("/coupons?status=archived&q=deal", &admin).await;
    assert_eq!(archived.body["results"][0]["coupon_book_id"], all[2]);
    let found = app.get("/coupons?q=expired", &admin).await;
    assert_eq!(found.body["results"].as_array().unwrap().len(), 1);
    assert_eq!(found.body["results"][0]["coupon_book_id"], all[3]);
    app.get("/coupons?status=deleted", &admin)
        .await
        .assert_invalid("status");
    app.get("/coupons?cursor=1_2", &admin).await.assert_invalid("cursor");
    app.get("/coupons?limit=101", &admin).await.assert_invalid("limit");
    for token in [app.user("alice"), service(&app)] {
        let r = app.get("/coupons", &token).await;
        assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "forbidden"));
    }
    // Customers still see only what they may claim.
    let search = app.get("/coupons/search", &app.user("alice")).await;
    assert_eq!(search.body["results"].as_array().unwrap().len(), 1);
    assert_eq!(search.body["results"][0]["coupon_book_id"], all[0]);
}
