//! `coupond bench flash-sale` at toy scale on both backends: it runs every phase, every user gets an
//! answer, and the invariants it checks in the database hold. No timing is asserted.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

const CODES: u64 = 200;
const USERS: u64 = 600;
/// Codes in each of the books sold as created, before and after ANALYZE.
const COLD_CODES: u64 = 300;

fn flash_sale(backend: &str, extra: &[&str]) -> Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_coupond"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("COUPOND_") {
            cmd.env_remove(name);
        }
    }
    cmd.args(["bench", "flash-sale", "--backend", backend])
        .args(["--codes", &CODES.to_string(), "--users", &USERS.to_string()])
        .args([
            "--connections",
            "8",
            "--noop-secs",
            "1",
            "--naive-secs",
            "1",
            "--read-secs",
            "1",
            "--generate",
            "2000",
            "--cold-codes",
            &COLD_CODES.to_string(),
        ])
        .arg("--json")
        .args(extra);
    let out = cmd.output().expect("coupond runs");
    assert!(
        out.status.success(),
        "coupond bench flash-sale --backend {backend} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).expect("--json prints one JSON document")
}

fn assert_sold_right(report: &Value) {
    let failed: Vec<&Value> = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["passed"] != Value::Bool(true))
        .collect();
    assert!(failed.is_empty(), "failed checks: {failed:#?}");
    let checked: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["book"].as_str().unwrap())
        .collect();
    for book in ["flash sale", "baseline", "cold sale", "warm sale"] {
        assert!(checked.contains(&book), "the {book} book was checked: {checked:?}");
    }
    assert_eq!(report["passed"], true);
    assert_eq!(report["claims_acknowledged"], CODES);
    assert_eq!(
        report["out_of_stock_answers"],
        USERS - CODES,
        "every user got an answer"
    );
    assert_eq!(report["redeems_acknowledged"], CODES);
    assert_eq!(
        report["naive_claims_acknowledged"],
        report["naive_redeems_acknowledged"]
    );
    assert_eq!(report["errors"], 0);
    assert_eq!(report["generation"]["codes"], 2000);
    let phases: Vec<&str> = report["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        phases,
        [
            "noop",
            "cold claim",
            "warm claim",
            "naive claim",
            "naive redeem",
            "claim",
            "out_of_stock",
            "read",
            "redeem"
        ]
    );
    for phase in &report["phases"].as_array().unwrap()[1..3] {
        assert_eq!(phase["requests"], COLD_CODES, "{} sold out", phase["name"]);
    }
    assert!(report["ratios"]["cold_claim_vs_warm_claim"].as_f64().unwrap() > 0.0);
    assert_eq!(report["cold_sale"]["codes"], COLD_CODES);
}

/// A database name no other run uses, so test binaries may run at once.
fn unique_db_name() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
    format!("coupond_bench_test_{}_{nanos}", std::process::id())
}

#[test]
fn flash_sale_on_sqlite() {
    let report = flash_sale("sqlite", &["--webhook"]);
    assert_eq!(report["backend"], "sqlite");
    assert_sold_right(&report);
    // The receiver got every claim of the sale, besides the book's other events.
    let events = &report["events"];
    assert_eq!(events["claims_received"], CODES, "{events}");
    assert!(events["received"].as_u64().unwrap() > CODES, "{events}");
    assert!(events["claim_delay_ms"]["max"].as_f64().unwrap() > 0.0, "{events}");
}

#[test]
fn flash_sale_on_postgres() {
    // The server the other PostgreSQL tests use (TEST_DATABASE_URL or the default), started as a
    // throwaway cluster if none answers; it panics saying how to fix it if that fails too.
    let pg_url = coupon_store::testing::admin_url();
    let report = flash_sale(
        "postgres",
        &[
            "--pg-url",
            pg_url,
            "--db-name",
            &unique_db_name(),
            "--idle-connections",
            "100",
        ],
    );
    assert_eq!(report["backend"], "postgres");
    assert_sold_right(&report);
    assert_eq!(report["idle_connections"]["opened"], 100);
    assert!(report["events"].is_null(), "no receiver without --webhook");
}
