//! The admin CLI (`coupond books`, `codes`, `redemptions`) against the real `coupond serve`, on
//! SQLite and on PostgreSQL: its tables and `--json`, its exit codes, and a round trip of a million
//! codes through `codes import` and `codes export`.

mod common;

use std::collections::HashSet;
use std::io::Write;
use std::process::{Child, Command, Output, Stdio};
use std::time::Instant;

use common::{coupond, serve_with, stdout_of};
use coupon_store::testing::{Backend, TestDb};
use serde_json::{json, Value};

/// A server on a fresh database, and tokens signed with its secret.
struct Server {
    child: Child,
    url: String,
    admin: String,
    service: String,
    dir: tempfile::TempDir,
    /// Dropped after the server stopped (see `Drop`), which removes the database.
    _db: Option<TestDb>,
}

impl Server {
    async fn start(backend: Backend) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let db = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(TestDb::new(Backend::Postgres).await),
        };
        let token = |role: &str| {
            stdout_of(
                coupond()
                    .current_dir(dir.path())
                    .args(["token", "--sub", "ops", "--role", role]),
            )
            .trim()
            .to_owned()
        };
        let (admin, service) = (token("admin"), token("service"));
        let args: Vec<&str> = match &db {
            Some(db) => vec!["--database-url", &db.url],
            None => vec![],
        };
        let (child, listen) = serve_with(dir.path(), &args);
        Server {
            child,
            url: format!("http://{listen}"),
            admin,
            service,
            dir,
            _db: db,
        }
    }

    /// `coupond ARGS` against this server with the admin token, from the environment.
    fn cli(&self, args: &[&str]) -> Command {
        let mut cmd = coupond();
        cmd.current_dir(self.dir.path())
            .env("COUPOND_SERVER", &self.url)
            .env("COUPOND_TOKEN", &self.admin)
            .args(args);
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cli(args).output().expect("coupond runs")
    }

    fn run_with_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        let mut child = self
            .cli(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    }

    /// The stdout of a command that must succeed.
    fn ok(&self, args: &[&str]) -> String {
        succeeded(self.run(args), args)
    }

    fn ok_json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        let out = self.ok(&args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {out}"))
    }

    /// The stderr of a command that must fail with `code`.
    fn fails(&self, args: &[&str], code: i32) -> String {
        failed(self.run(args), args, code)
    }

    fn http(&self, token: &str, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        reqwest::Client::new()
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(token)
    }

    /// A book created over HTTP; its id.
    async fn book(&self, body: Value) -> String {
        let created: Value = self
            .http(&self.admin, reqwest::Method::POST, "/coupons")
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        created["coupon_book_id"].as_str().expect("a book").to_owned()
    }

    /// Codes uploaded into a book over HTTP.
    async fn upload(&self, book: &str, codes: &[&str]) {
        let r = self
            .http(&self.admin, reqwest::Method::POST, "/coupons/codes")
            .json(&json!({"coupon_book_id": book, "codes": codes}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }

    /// Claims a code of the book for the user, as the checkout service; the code.
    async fn claim(&self, book: &str, user: &str) -> String {
        let r: Value = self
            .http(&self.service, reqwest::Method::POST, "/coupons/assign")
            .json(&json!({"coupon_book_id": book, "user_id": user}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["assigned_code"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned()
    }

    /// Redeems the user's code against an order; the redemption id.
    async fn redeem(&self, code: &str, user: &str, order: &str, amount: i64) -> String {
        let r: Value = self
            .http(&self.service, reqwest::Method::POST, &format!("/coupons/redeem/{code}"))
            .json(&json!({"user_id": user, "order_id": order, "order_amount": amount}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["redemption_id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn succeeded(out: Output, args: &[&str]) -> String {
    assert!(
        out.status.success(),
        "{args:?} failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn failed(out: Output, args: &[&str], code: i32) -> String {
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{args:?}: stdout {} stderr {stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

/// Each test body, once per backend: `NAME::sqlite` and `NAME::postgres`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use coupon_store::testing::Backend;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(Backend::Postgres).await
            }
        }
    )*};
}

on_both_backends!(
    books_are_created_shown_paused_resumed_and_archived,
    books_list_follows_every_page,
    exit_codes_say_what_failed,
    codes_are_generated_and_removed,
    codes_import_reports_duplicates,
    redemptions_are_listed_and_rolled_back,
    a_million_codes_round_trip,
);

const SUMMER: &str = r#"{"name": "Summer sale", "description": "Sandals", "category": "shoes",
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

async fn exit_codes_say_what_failed(backend: Backend) {
    let server = Server::start(backend).await;
    let id = server.book(serde_json::from_str(SUMMER).unwrap()).await;

    // 401: a token the server did not sign; it is not echoed.
    let out = server.run(&["books", "show", &id, "--token", "not-a-real-token-xyz"]);
    let stderr = failed(out, &["books", "show"], 3);
    assert!(stderr.contains("unauthorized (401)"), "{stderr}");
    assert!(!stderr.contains("not-a-real-token-xyz"), "{stderr}");
    // 403: a user may not manage books.
    let user = stdout_of(
        coupond()
            .current_dir(server.dir.path())
            .args(["token", "--sub", "alice", "--role", "user"]),
    );
    let out = server
        .cli(&["books", "show", &id])
        .env("COUPOND_TOKEN", user.trim())
        .output()
        .unwrap();
    assert!(failed(out, &["books", "show"], 3).contains("forbidden (403)"));

    let unknown = "0190b7c2-0000-7000-8000-000000000000";
    let stderr = server.fails(&["books", "show", unknown], 4);
    assert!(stderr.starts_with("error: not_found (404): "), "{stderr}");
    // An upload into no book is refused as such, however large the file.
    let big = server.dir.path().join("big.csv");
    std::fs::write(&big, "CODE-0000000\n".repeat(500_000)).unwrap();
    server.fails(&["codes", "import", unknown, big.to_str().unwrap()], 4);

    server.ok(&["books", "archive", &id]);
    let stderr = server.fails(&["books", "pause", &id], 5);
    assert!(stderr.contains("book_inactive (409)"), "{stderr}");

    let out = server.run_with_stdin(&["books", "create", "-"], br#"{"name": "", "discount": {}}"#);
    let stderr = failed(out, &["books", "create", "-"], 6);
    assert!(stderr.contains("invalid_request (400)"), "{stderr}");
    let out = server.run_with_stdin(&["books", "create", "-"], b"not json");
    failed(out, &["books", "create", "-"], 6);

    // Nothing listens on a port just freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gone = format!("http://127.0.0.1:{port}");
    let stderr = server.fails(&["books", "show", &id, "--server", &gone], 8);
    assert!(stderr.contains("cannot reach the server"), "{stderr}");

    // Usage: no token, a missing argument, an unreadable file (1).
    let out = server
        .cli(&["books", "show", &id])
        .env_remove("COUPOND_TOKEN")
        .output()
        .unwrap();
    assert!(failed(out, &["books", "show"], 2).contains("no token"));
    server.fails(&["codes", "generate", &id], 2);
    server.fails(&["redemptions", "list"], 2);
    server.fails(&["books", "create", "/nonexistent/book.json"], 1);
    let stderr = server.fails(&["books", "show", &id, "--server", "https://example.com"], 2);
    assert!(stderr.contains("plain HTTP"), "{stderr}");
}

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
