//! The admin CLI's exit codes: each kind of failure has its own, whatever the command.

use coupon_store::testing::Backend;

use crate::books::SUMMER;
use crate::common::{coupond, stdout_of};
use crate::server::{failed, Server};

on_both_backends!(exit_codes_say_what_failed);

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
