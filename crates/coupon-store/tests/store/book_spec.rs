//! A book's JSON description, as the cases write it, read into the domain's `NewBook`. The HTTP
//! API's own reading of that JSON lives in the server crate, which the store does not depend on.

use coupon_core::{BookStatus, CodeMode, Discount, DiscountKind, NewBook, Timestamp};
use serde_json::Value;

/// Reads the fields a book spec may have; a `null` limit is unlimited, as over HTTP.
pub fn new_book(spec: &Value) -> NewBook {
    let text = |v: &Value| v.as_str().expect("a string").to_owned();
    let time = |v: &Value| Timestamp::parse_rfc3339(v.as_str().expect("a timestamp")).expect("RFC 3339");
    let mut book = NewBook::new(text(&spec["name"]), discount(&spec["discount"]));
    for (field, v) in spec.as_object().expect("a book spec is an object") {
        let policies = &mut book.policies;
        match field.as_str() {
            "name" | "discount" => {}
            "description" => book.description = text(v),
            "category" => book.category = Some(text(v)),
            "tags" => book.tags = v.as_array().expect("tags").iter().map(text).collect(),
            "starts_at" => book.starts_at = Some(time(v)),
            "expires_at" => book.expires_at = Some(time(v)),
            "status" => book.status = BookStatus::parse(v.as_str().unwrap()).expect("a status"),
            "code_mode" => book.code_mode = CodeMode::parse(v.as_str().unwrap()).expect("a code mode"),
            "code" => book.code = Some(text(v)),
            "code_pattern" => book.code_pattern = Some(text(v)),
            "total_codes" => book.total_codes = v.as_i64(),
            "low_stock_threshold" => book.low_stock_threshold = v.as_i64(),
            "max_codes_per_user" => policies.max_codes_per_user = v.as_i64(),
            "max_redemptions_per_user" => policies.max_redemptions_per_user = v.as_i64(),
            "max_redemptions_per_code" => policies.max_redemptions_per_code = v.as_i64().expect("a limit"),
            "claims_per_user_per_day" => policies.claims_per_user_per_day = v.as_i64(),
            "claim_ttl_seconds" => policies.claim_ttl_seconds = v.as_i64(),
            "lock_ttl_seconds" => policies.lock_ttl_seconds = v.as_i64().expect("a TTL"),
            other => panic!("a book spec has no field {other}"),
        }
    }
    book
}

fn discount(spec: &Value) -> Discount {
    let kind = match spec["type"].as_str() {
        Some("percentage") => DiscountKind::percentage(spec["value"].as_f64().expect("a percentage")).unwrap(),
        Some("fixed_amount") => DiscountKind::FixedAmount {
            amount: spec["value"].as_i64().expect("an amount"),
        },
        other => panic!("no discount type {other:?}"),
    };
    let currency = spec.get("currency").and_then(Value::as_str).unwrap_or("USD");
    Discount::new(
        kind,
        currency.into(),
        spec["max_discount"].as_i64(),
        spec["min_order_amount"].as_i64(),
    )
    .expect("a valid discount")
}
