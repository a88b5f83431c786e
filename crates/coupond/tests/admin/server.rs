//! The server the admin tests drive: `coupond serve` on a fresh database, tokens signed with its
//! secret, the CLI pointed at it, and the HTTP calls that set a scene up.

use std::io::Write;
use std::process::{Child, Command, Output, Stdio};

use coupon_store::testing::{Backend, TestDb};
use serde_json::{json, Value};

use crate::common::{coupond, serve_with, stdout_of};

/// A server on a fresh database, and tokens signed with its secret.
pub struct Server {
    child: Child,
    url: String,
    admin: String,
    service: String,
    pub dir: tempfile::TempDir,
    /// Dropped after the server stopped (see `Drop`), which removes the database.
    _db: Option<TestDb>,
}

impl Server {
    pub async fn start(backend: Backend) -> Server {
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
    pub fn cli(&self, args: &[&str]) -> Command {
        let mut cmd = coupond();
        cmd.current_dir(self.dir.path())
            .env("COUPOND_SERVER", &self.url)
            .env("COUPOND_TOKEN", &self.admin)
            .args(args);
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cli(args).output().expect("coupond runs")
    }

    pub fn run_with_stdin(&self, args: &[&str], input: &[u8]) -> Output {
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
    pub fn ok(&self, args: &[&str]) -> String {
        succeeded(self.run(args), args)
    }

    pub fn ok_json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        let out = self.ok(&args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {out}"))
    }

    /// The stderr of a command that must fail with `code`.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        failed(self.run(args), args, code)
    }

    fn http(&self, token: &str, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        reqwest::Client::new()
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(token)
    }

    /// A book created over HTTP; its id.
    pub async fn book(&self, body: Value) -> String {
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
    pub async fn upload(&self, book: &str, codes: &[&str]) {
        let r = self
            .http(&self.admin, reqwest::Method::POST, "/coupons/codes")
            .json(&json!({"coupon_book_id": book, "codes": codes}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }

    /// Claims a code of the book for the user, as the checkout service; the code.
    pub async fn claim(&self, book: &str, user: &str) -> String {
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
    pub async fn redeem(&self, code: &str, user: &str, order: &str, amount: i64) -> String {
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

pub fn succeeded(out: Output, args: &[&str]) -> String {
    assert!(
        out.status.success(),
        "{args:?} failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn failed(out: Output, args: &[&str], code: i32) -> String {
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{args:?}: stdout {} stderr {stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}
