//! The binary as a user runs it: `serve` on the embedded default, `token`, `migrate`, `config`.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use common::{coupond, serve, stdout_of};
use coupon_store::testing::{Backend, TestDb};
use serde_json::{json, Value};

#[tokio::test]
async fn serve_runs_on_the_embedded_default() {
    let dir = tempfile::tempdir().unwrap();
    let token = stdout_of(
        coupond()
            .current_dir(dir.path())
            .args(["token", "--sub", "ops", "--role", "admin"]),
    );
    let mode = std::fs::metadata(dir.path().join("jwt-secret"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the generated secret is private");

    let (mut server, listen) = serve(dir.path());
    assert!(
        dir.path().join("coupond.db").exists(),
        "sqlite://coupond.db is in the working directory"
    );

    let http = reqwest::Client::new();
    let health = http.get(format!("http://{listen}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let created = http
        .post(format!("http://{listen}/coupons"))
        .bearer_auth(token.trim())
        .json(&json!({"name": "Launch", "discount": {"type": "fixed_amount", "value": 500}}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        created.status(),
        201,
        "a token from `coupond token` is accepted by the server"
    );

    let term = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    assert!(server.wait().unwrap().success(), "SIGTERM shuts down cleanly");
}

/// Everything the server logs at debug level while it is given secrets and refuses tokens: none of
/// them appears (the Redis password is wrong on purpose, so its refusal is logged too).
#[tokio::test]
async fn secrets_never_reach_the_logs() {
    const SECRET: &str = "a-jwt-secret-nobody-may-read-in-logs";
    const REDIS_PASSWORD: &str = "redis-password-nobody-may-read";
    const METRICS_TOKEN: &str = "a-metrics-token-nobody-may-read";
    let dir = tempfile::tempdir().unwrap();
    let redis = format!("redis://:{REDIS_PASSWORD}@127.0.0.1:6379");
    let mut server = coupond()
        .current_dir(dir.path())
        .env("COUPOND_LOG", "debug")
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--jwt-secret",
            SECRET,
        ])
        .args(["--redis-url", &redis, "--metrics-token", METRICS_TOKEN])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let mut logged = Vec::new();
    let listen = loop {
        let line = lines.next().expect("the server logs its address").unwrap();
        let entry: Value = serde_json::from_str(&line).unwrap();
        logged.push(line);
        if entry["fields"]["message"] == json!("coupond serving") {
            break entry["fields"]["listen"].as_str().unwrap().to_owned();
        }
    };
    let token = stdout_of(coupond().args(["token", "--sub", "ops", "--role", "admin", "--jwt-secret", SECRET]));
    let http = reqwest::Client::new();
    for bearer in [token.trim(), "forged.token.value", &format!("{}x", token.trim())] {
        http.get(format!("http://{listen}/coupons/search"))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap();
    }
    for bearer in [METRICS_TOKEN, "a-metrics-token-nobody-may-reax"] {
        http.get(format!("http://{listen}/metrics"))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap();
    }
    let term = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    logged.extend(lines.map_while(Result::ok));
    server.wait().unwrap();
    assert!(logged.len() > 3, "the server logged its requests: {logged:?}");
    let signature = token.trim().rsplit('.').next().unwrap();
    for line in &logged {
        for secret in [SECRET, REDIS_PASSWORD, METRICS_TOKEN, signature, "forged.token.value"] {
            assert!(!line.contains(secret), "{line}");
        }
    }
}

/// `--metrics-listen`: /metrics on its own port (guarded by its token) and not on the API's; and a
/// request's id in every JSON log line of that request.
#[tokio::test]
async fn metrics_listen_apart_and_request_ids_in_the_logs() {
    const TOKEN: &str = "scrape-token-for-the-cli-test";
    const REQUEST_ID: &str = "cli-request-7f3a";
    let dir = tempfile::tempdir().unwrap();
    let mut server = coupond()
        .current_dir(dir.path())
        .env("COUPOND_LOG", "debug")
        .env("COUPOND_METRICS_TOKEN", TOKEN)
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .args(["--metrics-listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let (listen, metrics) = loop {
        let line = lines.next().expect("the server logs its addresses").unwrap();
        let entry: Value = serde_json::from_str(&line).unwrap();
        if entry["fields"]["message"] == json!("coupond serving") {
            let address = |field: &str| entry["fields"][field].as_str().unwrap().to_owned();
            break (address("listen"), address("metrics"));
        }
    };
    assert_ne!(listen, metrics, "/metrics has a port of its own");

    let http = reqwest::Client::new();
    let health = http
        .get(format!("http://{listen}/healthz"))
        .header("x-request-id", REQUEST_ID)
        .send()
        .await
        .unwrap();
    assert_eq!(health.headers()["x-request-id"], REQUEST_ID);
    let on_api = http
        .get(format!("http://{listen}/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(on_api.status(), 404, "the API's port does not serve /metrics");
    let refused = http.get(format!("http://{metrics}/metrics")).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let scraped = http
        .get(format!("http://{metrics}/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(scraped.status(), 200);
    let text = scraped.text().await.unwrap();
    assert!(
        text.contains(r#"coupond_http_requests_total{route="/healthz",method="GET",status="200"} 1"#),
        "{text}"
    );
    let other = http.get(format!("http://{metrics}/healthz")).send().await.unwrap();
    assert_eq!(other.status(), 404, "the metrics port serves nothing else");

    let term = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let logged: Vec<Value> = lines
        .map_while(Result::ok)
        .map(|line| serde_json::from_str(&line).unwrap())
        .collect();
    assert!(server.wait().unwrap().success(), "SIGTERM stops both listeners cleanly");
    let of_request: Vec<&Value> = logged
        .iter()
        .filter(|entry| entry["span"]["request_id"] == json!(REQUEST_ID))
        .collect();
    assert!(
        of_request
            .iter()
            .any(|entry| entry["fields"]["message"] == json!("answered") && entry["span"]["route"] == json!("/healthz")),
        "{logged:?}"
    );
    // Every line logged inside a request names its request.
    for entry in logged.iter().filter(|entry| entry["span"]["name"] == json!("request")) {
        assert!(entry["span"]["request_id"].is_string(), "{entry}");
    }
}

#[tokio::test]
async fn migrate_prepares_a_postgres_database() {
    let db = TestDb::new(Backend::Postgres).await;
    stdout_of(coupond().args(["migrate", "--database-url", &db.url]));
    // Applying again is a no-op.
    stdout_of(coupond().args(["migrate", "--database-url", &db.url]));
    db.store().await.ping().await.unwrap();
}

#[test]
fn config_redacts_secrets() {
    let shown = stdout_of(coupond().args([
        "config",
        "--database-url",
        "postgres://coupond:hunter2@db/coupond",
        "--jwt-secret",
        "a-very-secret-value-that-is-long-enough",
        "--metrics-token",
        "a-scrape-token-nobody-reads",
    ]));
    assert!(shown.contains("metrics_token = <set, redacted>"), "{shown}");
    assert!(!shown.contains("a-scrape-token"), "{shown}");
    assert!(shown.contains("postgres://coupond:<redacted>@db/coupond"), "{shown}");
    assert!(shown.contains("jwt_algorithm = Hs256\n"), "{shown}");
    assert!(shown.contains("jwt_leeway = 30s\n"), "{shown}");
    assert!(shown.contains("jwt_admin_roles = admin,coupond:admin\n"), "{shown}");
    assert!(
        !shown.contains("hunter2") && !shown.contains("a-very-secret"),
        "{shown}"
    );
    let short = coupond()
        .args(["token", "--sub", "x", "--role", "user", "--jwt-secret", "short"])
        .output()
        .unwrap();
    assert!(!short.status.success(), "a short secret is refused");
}

/// `serve` with an identity provider's RS256 key: its tokens are accepted, no secret is generated,
/// and `token` says where tokens come from.
#[tokio::test]
async fn serve_accepts_an_identity_providers_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../coupon-server/tests/fixtures");
    let key = format!("@{fixtures}/rs256-public.pem");
    let idp = [
        "--jwt-algorithm",
        "rs256",
        "--jwt-public-key",
        &key,
        "--jwt-issuer",
        "https://idp.example",
        "--jwt-audience",
        "coupond",
        "--jwt-role-claim",
        "roles",
    ];
    let token = coupond()
        .current_dir(dir.path())
        .args(["token", "--sub", "ops", "--role", "admin"])
        .args(idp)
        .output()
        .unwrap();
    assert!(!token.status.success());
    let said = String::from_utf8_lossy(&token.stderr);
    assert!(said.contains("tokens come from the identity provider"), "{said}");

    let (mut server, listen) = common::serve_with(dir.path(), &idp);
    assert!(!dir.path().join("jwt-secret").exists(), "no HS256 secret is generated");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({"sub": "ops", "iss": "https://idp.example", "aud": "coupond", "exp": now + 300,
                        "roles": ["coupond:admin"]});
    let private = std::fs::read(format!("{fixtures}/rs256-private.pem")).unwrap();
    let signed = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(&private).unwrap(),
    )
    .unwrap();
    let created = reqwest::Client::new()
        .post(format!("http://{listen}/coupons"))
        .bearer_auth(signed)
        .json(&json!({"name": "Launch", "discount": {"type": "fixed_amount", "value": 500}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    server.kill().unwrap();
    server.wait().unwrap();
}

#[test]
fn processes_starting_together_share_one_generated_secret() {
    let dir = tempfile::tempdir().unwrap();
    let runs: Vec<_> = (0..6)
        .map(|_| {
            coupond()
                .current_dir(dir.path())
                .args(["token", "--sub", "ops", "--role", "admin"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for run in runs {
        let out = run.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        files,
        vec![std::ffi::OsString::from("jwt-secret")],
        "no staged copies left behind"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("jwt-secret")).unwrap().len(),
        64
    );
}

/// SIGTERM while claims are in flight: the server stops taking connections, answers every request
/// it had taken (their batches still commit), and exits cleanly; every claim it acknowledged is in
/// the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_answers_the_claims_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let token = stdout_of(
        coupond()
            .current_dir(dir.path())
            .args(["token", "--sub", "checkout", "--role", "service"]),
    );
    let admin = stdout_of(
        coupond()
            .current_dir(dir.path())
            .args(["token", "--sub", "ops", "--role", "admin"]),
    );
    let (mut server, listen) = serve(dir.path());
    let http = reqwest::Client::new();
    let book: Value = http
        .post(format!("http://{listen}/coupons"))
        .bearer_auth(admin.trim())
        .json(
            &json!({"name": "Last call", "discount": {"type": "fixed_amount", "value": 500},
            "code_pattern": "BYE-******", "total_codes": 300}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let book_id = book["coupon_book_id"].as_str().unwrap().to_owned();

    // Open the connections first, so that the claims are on the wire together.
    let warm = (0..400).map(|_| http.get(format!("http://{listen}/healthz")).send());
    for reply in futures::future::join_all(warm).await {
        assert_eq!(reply.unwrap().status(), 200);
    }
    let (first_tx, first) = tokio::sync::oneshot::channel::<()>();
    let first_tx = std::sync::Mutex::new(Some(first_tx));
    let claims = (0..400).map(|i| {
        let (http, url, token, book_id) = (
            http.clone(),
            format!("http://{listen}/coupons/assign"),
            &token,
            &book_id,
        );
        let first_tx = &first_tx;
        async move {
            let sent = http
                .post(url)
                .bearer_auth(token.trim())
                .json(&json!({"coupon_book_id": book_id, "user_id": format!("user-{i}")}))
                .send()
                .await;
            if let Some(tx) = first_tx.lock().unwrap().take() {
                let _ = tx.send(());
            }
            match sent {
                Ok(r) => Some((r.status().as_u16(), r.json::<Value>().await.ok())),
                // Sent after the listener closed: never taken, never answered.
                Err(_) => None,
            }
        }
    });
    let pid = server.id().to_string();
    let terminate = async move {
        let _ = first.await;
        let term = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(term.success());
    };
    let (answers, ()) = tokio::join!(futures::future::join_all(claims), terminate);
    assert!(server.wait().unwrap().success(), "SIGTERM shuts down cleanly");

    let answered: Vec<_> = answers.into_iter().flatten().collect();
    assert!(!answered.is_empty());
    let codes: Vec<String> = answered
        .iter()
        .filter_map(|(status, body)| {
            assert!(
                *status == 201 || *status == 409,
                "a request taken before the shutdown got {status}: {body:?}"
            );
            body.as_ref()
                .and_then(|b| b["assigned_code"].as_str())
                .map(str::to_owned)
        })
        .collect();
    let store = coupon_store::connect(&format!("sqlite://{}", dir.path().join("coupond.db").display()), 1)
        .await
        .unwrap();
    for code in &codes {
        let user = answered_user(&store, code).await;
        assert!(user.is_some(), "acknowledged claim of {code} is in the database");
    }
}

/// The owner of a code, read from the database after the server stopped.
async fn answered_user(store: &coupon_store::Store, code: &str) -> Option<String> {
    let code = coupon_core::CodeText::parse(code).unwrap();
    let view = coupon_store::Coupons::naive(store.clone())
        .code_view(&code, "nobody", None)
        .await
        .ok()?;
    view.code.owner
}
