//! `coupond codes`: generate, remove, import and export, up to a million codes at a time.

use std::collections::HashSet;
use std::io::Write;
use std::time::Instant;

use coupon_store::testing::Backend;
use serde_json::json;

use crate::server::{succeeded, Server};

on_both_backends!(
    codes_are_generated_and_removed,
    codes_import_reports_duplicates,
    a_million_codes_round_trip,
);

async fn codes_are_generated_and_removed(backend: Backend) {
    let server = Server::start(backend).await;
    let id = server
        .book(json!({"name": "Loaded", "discount": {"type": "fixed_amount", "value": 500}, "total_codes": 100}))
        .await;
    assert_eq!(
        server.ok(&["codes", "generate", &id, "--count", "10", "--pattern", "GEN-######"]),
        "generated 10 codes\n"
    );
    let generated = server.ok_json(&["codes", "generate", &id, "--count", "5", "--pattern", "GEN-######"]);
    assert_eq!(generated["generated_codes_count"], 5);
    assert_eq!(server.ok_json(&["books", "show", &id])["stats"]["total_generated"], 15);

    let other = server
        .book(json!({"name": "Known", "discount": {"type": "fixed_amount", "value": 500}, "total_codes": 100}))
        .await;
    server.upload(&other, &["RM-1", "RM-2", "RM-3", "RM-4", "RM-5"]).await;
    let held = server.claim(&other, "alice").await;
    let free: Vec<&str> = ["RM-1", "RM-2", "RM-3", "RM-4", "RM-5"]
        .into_iter()
        .filter(|c| *c != held)
        .collect();

    let removed = server.ok(&["codes", "remove", &other, free[0], &held, "NO-SUCH-CODE"]);
    assert!(removed.starts_with("removed 1 codes\n"), "{removed}");
    let table: Vec<&str> = removed.lines().skip(2).collect();
    assert_eq!(
        table[0].split_whitespace().collect::<Vec<_>>(),
        ["NOT", "REMOVED", "REASON"]
    );
    assert!(
        table.iter().any(|l| l.starts_with(&held) && l.ends_with("held")),
        "{removed}"
    );
    assert!(table.iter().any(|l| l.starts_with("NO-SUCH-CODE")), "{removed}");

    let list = server.dir.path().join("codes.txt");
    std::fs::write(&list, format!("{}\n\n  {}  \n", free[1], free[2])).unwrap();
    let removed = server.ok_json(&["codes", "remove", &other, "--file", list.to_str().unwrap(), free[3]]);
    assert_eq!(removed["removed_count"], 3);
    assert_eq!(removed["not_removed"], json!([]));
    server.fails(&["codes", "remove", &other], 2);
}

async fn codes_import_reports_duplicates(backend: Backend) {
    let server = Server::start(backend).await;
    let id = server
        .book(json!({"name": "Imported", "discount": {"type": "fixed_amount", "value": 500}, "total_codes": 100}))
        .await;
    let csv = "code\nIMP-1\nIMP-2,ignored column\nimp-3\nIMP-1\n";
    let out = server.run_with_stdin(&["codes", "import", &id], csv.as_bytes());
    assert!(
        out.stderr.is_empty(),
        "no progress bar on a stderr that is not a terminal"
    );
    let text = succeeded(out, &["codes", "import"]);
    assert!(text.starts_with("uploaded 3 codes, 1 duplicates skipped\n"), "{text}");
    assert!(text.contains("DUPLICATE\nIMP-1\n"), "{text}");

    let file = server.dir.path().join("more.csv");
    std::fs::write(&file, "IMP-4\nIMP-2\n").unwrap();
    let answer = server.ok_json(&["codes", "import", &id, file.to_str().unwrap()]);
    assert_eq!(answer["uploaded_codes_count"], 1);
    assert_eq!(answer["duplicates_count"], 1);

    let csv = server.ok(&["codes", "export", &id]);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("code,instance,status,owner,claimed_at,claim_expires_at,locked_until,redemptions")
    );
    let mut codes: Vec<&str> = lines.map(|l| l.split(',').next().unwrap()).collect();
    codes.sort();
    assert_eq!(codes, ["IMP-1", "IMP-2", "IMP-3", "IMP-4"]);
    let available = server.ok(&["codes", "export", &id, "--status", "available"]);
    assert_eq!(available.lines().count(), 5);
    server.fails(&["codes", "export", &id, "--status", "bogus"], 6);
    server.fails(&["codes", "import", &id, "/nonexistent.csv"], 1);
}

/// One million-code round trip at a time: they time themselves, and two at once on a small
/// machine would time each other.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const MILLION: u32 = 1_000_000;

async fn a_million_codes_round_trip(backend: Backend) {
    let _one_at_a_time = HEAVY.lock().await;
    let server = Server::start(backend).await;
    let book = server
        .book(json!({"name": "A million", "discount": {"type": "fixed_amount", "value": 100}, "total_codes": MILLION}))
        .await;

    // Distinct codes in no particular order: multiplying by an odd number permutes the u32s.
    let input = server.dir.path().join("million.csv");
    let mut sent = HashSet::with_capacity(MILLION as usize);
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
        writeln!(w, "code").unwrap();
        for i in 0..MILLION {
            let code = format!("RT-{:08X}", i.wrapping_mul(2_654_435_761));
            writeln!(w, "{code}").unwrap();
            sent.insert(code);
        }
        w.flush().unwrap();
    }
    assert_eq!(sent.len(), MILLION as usize);

    let started = Instant::now();
    let imported = server.ok_json(&["codes", "import", &book, input.to_str().unwrap()]);
    let import_took = started.elapsed();
    assert_eq!(imported["uploaded_codes_count"], MILLION, "{imported}");
    assert_eq!(imported["duplicates_count"], 0);

    let output = server.dir.path().join("out.csv");
    let started = Instant::now();
    let out = server.run(&["codes", "export", &book, "--output", output.to_str().unwrap()]);
    let export_took = started.elapsed();
    assert!(
        out.stderr.is_empty(),
        "no progress bar on a stderr that is not a terminal"
    );
    let exported = succeeded(out, &["codes", "export"]);
    assert_eq!(exported, format!("exported {MILLION} codes to {}\n", output.display()));

    let text = std::fs::read_to_string(&output).unwrap();
    let mut rows = text.lines();
    assert!(rows.next().unwrap().starts_with("code,"));
    let mut count = 0;
    let mut got = HashSet::with_capacity(MILLION as usize);
    for row in rows {
        count += 1;
        got.insert(row.split(',').next().unwrap().to_owned());
    }
    assert_eq!(count, MILLION as usize, "one row per code");
    assert!(got == sent, "the exported codes are the imported codes");
    eprintln!(
        "{backend:?}: imported {MILLION} codes in {import_took:.2?}, exported them in {export_took:.2?} \
         (debug server)"
    );
}
