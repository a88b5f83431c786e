//! `coupond redemptions`: listed by book and by user, and rolled back.

use coupon_store::testing::Backend;
use serde_json::json;

use crate::server::Server;

on_both_backends!(redemptions_are_listed_and_rolled_back);

async fn redemptions_are_listed_and_rolled_back(backend: Backend) {
    let server = Server::start(backend).await;
    let id = server
        .book(
            json!({"name": "Checkout", "discount": {"type": "fixed_amount", "value": 500},
            "code_pattern": "PAY-######", "total_codes": 10, "max_codes_per_user": null}),
        )
        .await;
    let first = server.claim(&id, "alice").await;
    let second = server.claim(&id, "alice").await;
    let bob = server.claim(&id, "bob").await;
    let r1 = server.redeem(&first, "alice", "order-1", 12000).await;
    server.redeem(&second, "alice", "order-2", 3000).await;
    server.redeem(&bob, "bob", "order-3", 800).await;

    let table = server.ok(&["redemptions", "list", "--book", &id]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("REDEMPTION ID"), "{table}");
    assert_eq!(lines.len(), 4, "{table}");
    let row = lines.iter().find(|l| l.contains(&r1)).expect("listed");
    assert!(
        row.contains("alice") && row.contains("order-1") && row.contains("12000") && row.contains("11500"),
        "{row}"
    );

    let alice = server.ok_json(&["redemptions", "list", "--user", "alice"]);
    assert_eq!(alice["redemptions"].as_array().unwrap().len(), 2);
    let one = server.ok_json(&["redemptions", "list", "--book", &id, "--limit", "1"]);
    assert_eq!(one["redemptions"].as_array().unwrap().len(), 1);
    assert!(one["next_cursor"].is_string());

    let line = server.ok(&["redemptions", "rollback", &r1, "--reason", "payment declined"]);
    assert!(line.starts_with(&format!("redemption {r1} of {first} is ")), "{line}");
    let after = server.ok_json(&["redemptions", "list", "--user", "alice"]);
    let rolled = after["redemptions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["redemption_id"] == r1.as_str())
        .unwrap()
        .clone();
    assert_eq!(rolled["reason"], "payment declined");
    assert!(rolled["rolled_back_at"].is_string(), "{rolled}");
    assert_eq!(line, format!("redemption {r1} of {first} is rolled_back\n"));
    assert_eq!(rolled["status"], "rolled_back");
    // Repeating it answers the first rollback.
    let again = server.ok_json(&["redemptions", "rollback", &r1, "--reason", "another"]);
    assert_eq!(again["rolled_back_at"], rolled["rolled_back_at"]);
    assert_eq!(again["reason"], "payment declined");
    server.fails(&["redemptions", "rollback", "0190b7c2-0000-7000-8000-000000000000"], 4);
}
