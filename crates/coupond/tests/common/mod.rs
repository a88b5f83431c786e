//! Helpers shared by the binary's test files: run `coupond` with a clean environment, and start
//! `coupond serve` on a free port.

// Each test file uses its own subset.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::{json, Value};

/// `coupond`, with none of the settings of the environment the tests run in.
pub fn coupond() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_coupond"));
    for var in [
        "COUPOND_LISTEN",
        "COUPOND_DATABASE_URL",
        "COUPOND_JWT_SECRET",
        "COUPOND_JWT_ALGORITHM",
        "COUPOND_JWT_JWKS_FILE",
        "COUPOND_JWT_PUBLIC_KEY",
        "COUPOND_JWT_ISSUER",
        "COUPOND_JWT_AUDIENCE",
        "COUPOND_DATA_DIR",
        "COUPOND_JWT_LEEWAY",
        "COUPOND_JWT_ROLE_CLAIM",
        "COUPOND_JWT_ADMIN_ROLES",
        "COUPOND_JWT_SERVICE_ROLES",
        "COUPOND_JWT_USER_ROLES",
        "COUPOND_THROTTLE",
        "COUPOND_RATE_LIMITS",
        "COUPOND_TRUSTED_PROXIES",
        "COUPOND_REDIS_URL",
        "COUPOND_REQUEST_TIMEOUT",
        "COUPOND_HEADER_READ_TIMEOUT",
        "COUPOND_MAX_CONCURRENT_REQUESTS",
        "COUPOND_DB_ACQUIRE_TIMEOUT",
        "COUPOND_NATS_URL",
        "COUPOND_WEBHOOK_TIMEOUT",
        "COUPOND_WEBHOOK_MAX_ATTEMPTS",
        "COUPOND_EVENT_RETENTION",
        "COUPOND_METRICS_LISTEN",
        "COUPOND_METRICS_TOKEN",
        "COUPOND_LOG",
        "COUPOND_SERVER",
        "COUPOND_TOKEN",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// `coupond serve` in `dir` on a free port, and the address it logged.
pub fn serve(dir: &std::path::Path) -> (std::process::Child, String) {
    serve_with(dir, &[])
}

/// `coupond serve` in `dir` on a free port with more arguments (e.g. `--database-url`), and the
/// address it logged.
pub fn serve_with(dir: &std::path::Path, args: &[&str]) -> (std::process::Child, String) {
    let mut server = coupond()
        .current_dir(dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let listen = loop {
        let line = lines.next().expect("the server logs its address").unwrap();
        let entry: Value = serde_json::from_str(&line).unwrap();
        if entry["fields"]["message"] == json!("coupond serving") {
            break entry["fields"]["listen"].as_str().unwrap().to_owned();
        }
    };
    // Keep reading, so the server's logging never meets a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (server, listen)
}

pub fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().expect("coupond runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}
