//! `coupond books`: create from a file or stdin, show, pause, resume, archive, and a list that
//! follows every page.

use std::collections::HashSet;

use coupon_store::testing::Backend;
use serde_json::{json, Value};

use crate::server::{succeeded, Server};

on_both_backends!(
    books_are_created_shown_paused_resumed_and_archived,
    books_list_follows_every_page,
);

pub const SUMMER: &str = r#"{"name": "Summer sale", "description": "Sandals", "category": "shoes",
    "tags": ["summer", "sun"], "code_pattern": "SUN-######", "total_codes": 25,
    "discount": {"type": "percentage", "value": 15, "max_discount": 3000}}"#;

async fn books_are_created_shown_paused_resumed_and_archived(backend: Backend) {
    let server = Server::start(backend).await;
    let file = server.dir.path().join("summer.json");
    std::fs::write(&file, SUMMER).unwrap();

    // From a file: only the id, for `BOOK=$(coupond books create book.json)`.
    let id = server.ok(&["books", "create", file.to_str().unwrap()]);
    let id = id.trim();
    assert_eq!(id.len(), 36, "{id:?} is a UUID");
    // From stdin, with the server's JSON.
    let out = server.run_with_stdin(
        &["books", "create", "-", "--json"],
        br#"{"name": "Winter", "discount": {"type": "fixed_amount", "value": 500}}"#,
    );
    let winter: Value = serde_json::from_str(&succeeded(out, &["books", "create", "-"])).unwrap();
    assert_eq!(winter["name"], "Winter");
    assert_eq!(winter["status"], "active");

    let shown = server.ok(&["books", "show", id]);
    for line in [
        format!("coupon_book_id            {id}"),
        "name                      Summer sale".into(),
        "discount                  15% (max 3000)".into(),
        "tags                      summer,sun".into(),
        "total_codes               25".into(),
    ] {
        assert!(shown.contains(&line), "{line:?} in\n{shown}");
    }
    assert!(shown.contains("\nstats\n"), "{shown}");
    assert!(shown.contains("  total_generated"), "{shown}");
    let book = server.ok_json(&["books", "show", id]);
    assert_eq!(book["coupon_book_id"], id);
    assert_eq!(book["stats"]["total_generated"], 25);

    assert_eq!(server.ok(&["books", "pause", id]), format!("{id} paused\n"));
    assert_eq!(server.ok_json(&["books", "show", id])["status"], "paused");
    // The options may come before the subcommand too.
    let resumed = server.ok_json(&["books", "--json", "resume", id]);
    assert_eq!(resumed["status"], "active");
    assert_eq!(server.ok(&["books", "archive", id]), format!("{id} archived\n"));
    assert_eq!(server.ok_json(&["books", "show", id])["status"], "archived");
}

async fn books_list_follows_every_page(backend: Backend) {
    let server = Server::start(backend).await;
    // More than one page of the server's (at most 100 a page).
    let mut ids = Vec::new();
    for i in 0..105 {
        let body = json!({"name": format!("Book {i:03}"), "description": if i % 10 == 0 { "rare tenth" } else { "plain" },
            "discount": {"type": "fixed_amount", "value": 100 + i}});
        ids.push(server.book(body).await);
    }
    server.ok(&["books", "pause", &ids[0]]);

    let table = server.ok(&["books", "list"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("ID  "), "{}", lines[0]);
    assert!(lines[0].contains("NAME") && lines[0].contains("STATUS"), "{}", lines[0]);
    assert_eq!(lines.len(), 1 + 105, "a header and every book:\n{table}");
    for id in &ids {
        assert!(table.contains(id.as_str()), "{id} listed");
    }

    let all = server.ok_json(&["books", "list"]);
    assert_eq!(all["results"].as_array().unwrap().len(), 105);
    assert_eq!(all["next_cursor"], Value::Null);
    let listed: HashSet<&str> = all["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["coupon_book_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 105, "no book twice across pages");

    let three = server.ok_json(&["books", "list", "--limit", "3"]);
    assert_eq!(three["results"].as_array().unwrap().len(), 3);
    assert!(three["next_cursor"].is_string(), "more follow: {three}");

    let paused = server.ok_json(&["books", "list", "--status", "paused"]);
    assert_eq!(paused["results"].as_array().unwrap().len(), 1);
    assert_eq!(paused["results"][0]["coupon_book_id"], ids[0].as_str());

    let rare = server.ok_json(&["books", "list", "--query", "rare"]);
    assert_eq!(rare["results"].as_array().unwrap().len(), 11);

    server.fails(&["books", "list", "--status", "gone"], 2);
}
