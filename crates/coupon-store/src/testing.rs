//! Throwaway databases for tests: a fresh SQLite file in a temporary directory, or a fresh
//! PostgreSQL database that is dropped when the test ends.
//!
//! PostgreSQL is found at `TEST_DATABASE_URL`, else `postgres://postgres@127.0.0.1:5432/postgres`.
//! If nothing answers there, a private cluster is started from Debian's PostgreSQL binaries (as the
//! `postgres` user when run as root, on a random port, sockets in a temporary directory) and stopped
//! when the test process exits. If that is impossible too, tests fail with a message saying how to
//! fix it: they never skip silently.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use tokio_postgres::NoTls;

use crate::{Store, StoreError};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database that exists for one test. Dropping it removes it.
pub struct TestDb {
    pub url: String,
    /// The SQLite file's directory, removed when dropped.
    _dir: Option<tempfile::TempDir>,
    /// The PostgreSQL server and database to drop.
    database: Option<(String, String)>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let url = format!("sqlite://{}", dir.path().join("coupond.db").display());
                TestDb {
                    url,
                    _dir: Some(dir),
                    database: None,
                }
            }
            Backend::Postgres => {
                let admin_url = admin_url().to_owned();
                let name = format!("coupond_test_{}", uuid::Uuid::now_v7().simple());
                run_admin(&admin_url, format!("CREATE DATABASE {name}"))
                    .await
                    .unwrap_or_else(|e| panic!("cannot create a test database at {admin_url}: {e}"));
                let url = with_database(&admin_url, &name);
                TestDb {
                    url,
                    _dir: None,
                    database: Some((admin_url, name)),
                }
            }
        }
    }

    /// On PostgreSQL, makes the database refuse new connections and ends the open ones, as a
    /// restart or a failover does to a service's pool (`true`), or lets connections in again.
    pub async fn cut_off(&self, cut: bool) {
        let Some((admin, name)) = &self.database else {
            return;
        };
        let allow = format!("ALTER DATABASE {name} WITH ALLOW_CONNECTIONS {}", !cut);
        run_admin(admin, allow).await.expect("database altered");
        if cut {
            let end = format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = '{name}' AND pid <> pg_backend_pid()"
            );
            run_admin(admin, end).await.expect("connections ended");
        }
    }

    /// The store on this database, migrated.
    pub async fn store(&self) -> Store {
        self.store_with(crate::PoolConfig::sized(16)).await
    }

    /// The store on this database with a pool of that shape.
    pub async fn store_with(&self, pool: crate::PoolConfig) -> Store {
        crate::connect_with(&self.url, pool).await.expect("open the test store")
    }

    /// Every row of coupond's tables as text, sorted: two snapshots are equal when nothing was
    /// written between them.
    pub async fn snapshot(&self) -> Vec<String> {
        const TABLES: [&str; 9] = [
            "books",
            "codes",
            "user_books",
            "redemptions",
            "returned_codes",
            "events",
            "webhooks",
            "deliveries",
            "relay_cursors",
        ];
        let mut rows = Vec::new();
        match crate::sqlite::path_from_url(&self.url) {
            Some(path) => {
                let conn = rusqlite::Connection::open(path).expect("open the SQLite file");
                for table in TABLES {
                    let mut stmt = conn.prepare(&format!("SELECT * FROM {table}")).expect("prepare");
                    let width = stmt.column_count();
                    let mut found = stmt.query([]).expect("query");
                    while let Some(row) = found.next().expect("row") {
                        let values: Vec<String> = (0..width)
                            .map(|i| format!("{:?}", row.get::<_, rusqlite::types::Value>(i).expect("value")))
                            .collect();
                        rows.push(format!("{table}: {}", values.join(", ")));
                    }
                }
            }
            None => {
                let (client, conn) = tokio_postgres::connect(&self.url, NoTls).await.expect("connect");
                let task = tokio::spawn(conn);
                for table in TABLES {
                    let sql = format!("SELECT t::text FROM {table} t");
                    for row in client.query(&sql, &[]).await.expect("query") {
                        rows.push(format!("{table}: {}", row.get::<_, String>(0)));
                    }
                }
                drop(client);
                let _ = task.await;
            }
        }
        rows.sort();
        rows
    }
}

impl TestDb {
    /// One integer a query of the test's own reads, on either backend (the text must read the same
    /// in both dialects).
    pub async fn scalar(&self, sql: &str) -> i64 {
        match crate::sqlite::path_from_url(&self.url) {
            Some(path) => {
                let conn = rusqlite::Connection::open(path).expect("open the SQLite file");
                conn.query_row(sql, [], |r| r.get(0)).expect("query")
            }
            None => {
                let (client, conn) = tokio_postgres::connect(&self.url, NoTls).await.expect("connect");
                let task = tokio::spawn(conn);
                let value = client.query_one(sql, &[]).await.expect("query").get::<_, i64>(0);
                drop(client);
                let _ = task.await;
                value
            }
        }
    }
}

/// A write lock on the books table held from outside the service, for tests of what a request
/// does while the database keeps it waiting: on PostgreSQL `LOCK TABLE books` (reads of books
/// wait too), on SQLite an `IMMEDIATE` transaction (writes wait, up to the busy timeout). Released
/// by [`BooksLock::release`] or when dropped.
pub struct BooksLock {
    held: Held,
}

enum Held {
    Sqlite(rusqlite::Connection),
    Postgres(tokio_postgres::Client, tokio::task::JoinHandle<()>),
}

impl TestDb {
    pub async fn lock_books(&self) -> BooksLock {
        let held = match crate::sqlite::path_from_url(&self.url) {
            Some(path) => {
                let conn = rusqlite::Connection::open(path).expect("open the SQLite file");
                conn.execute_batch("BEGIN IMMEDIATE").expect("take the write lock");
                Held::Sqlite(conn)
            }
            None => {
                let (client, conn) = tokio_postgres::connect(&self.url, NoTls).await.expect("connect");
                let task = tokio::spawn(async move {
                    let _ = conn.await;
                });
                client
                    .batch_execute("BEGIN; LOCK TABLE books IN ACCESS EXCLUSIVE MODE")
                    .await
                    .expect("lock the books table");
                Held::Postgres(client, task)
            }
        };
        BooksLock { held }
    }
}

impl BooksLock {
    /// Returns once another session waits on this lock (PostgreSQL only: SQLite's busy waits are
    /// not visible from outside).
    pub async fn until_waited_on(&self) {
        let Held::Postgres(client, _) = &self.held else {
            panic!("only PostgreSQL shows who waits on a lock");
        };
        let sql = "SELECT count(*) FROM pg_stat_activity \
                   WHERE datname = current_database() AND wait_event_type = 'Lock'";
        loop {
            let row = client.query_one(sql, &[]).await.expect("read pg_stat_activity");
            if row.get::<_, i64>(0) > 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn release(self) {
        match self.held {
            Held::Sqlite(conn) => conn.execute_batch("ROLLBACK").expect("release the write lock"),
            Held::Postgres(client, task) => {
                client.batch_execute("ROLLBACK").await.expect("release the lock");
                drop(client);
                let _ = task.await;
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = self.database.take() {
            let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            // Drop runs inside the test's runtime, which cannot be blocked on: use a thread of our own.
            let dropped = std::thread::spawn(move || block_on(run_admin(&admin_url, sql))).join();
            if let Ok(Err(e)) = dropped {
                eprintln!("could not drop test database {name}: {e}");
            }
        }
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(f)
}

async fn run_admin(admin_url: &str, sql: String) -> Result<(), StoreError> {
    let (client, conn) = tokio_postgres::connect(admin_url, NoTls).await?;
    let task = tokio::spawn(conn);
    let result = client.batch_execute(&sql).await;
    drop(client);
    let _ = task.await;
    Ok(result?)
}

/// The URL with its database name replaced.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[after_scheme..].find('/').map_or(base.len(), |i| after_scheme + i);
    let mut out = format!("{}/{}", &base[..host_end], name);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// The server tests create their databases on, found or started once per test process.
pub fn admin_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let url = std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
        if answers(&url) {
            return url;
        }
        eprintln!("no PostgreSQL answers at {url}; starting a throwaway cluster");
        match start_cluster() {
            Ok(url) => url,
            Err(e) => panic!(
                "no PostgreSQL answers at {url} and a throwaway cluster could not be started: {e}.\n\
                 Start PostgreSQL (e.g. `pg_ctlcluster 15 main start`), set TEST_DATABASE_URL to a server \
                 whose user may create databases, or install Debian's postgresql package."
            ),
        }
    })
}

fn answers(url: &str) -> bool {
    let url = url.to_owned();
    std::thread::spawn(move || {
        block_on(async {
            let mut config: tokio_postgres::Config = match url.parse() {
                Ok(c) => c,
                Err(_) => return false,
            };
            config.connect_timeout(Duration::from_secs(3));
            config.connect(NoTls).await.is_ok()
        })
    })
    .join()
    .unwrap_or(false)
}

/// Starts a private cluster with Debian's PostgreSQL server binaries and returns its URL.
fn start_cluster() -> Result<String, String> {
    let bin = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| format!("no /usr/lib/postgresql ({e})"))?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|b| b.join("initdb").exists() && b.join("pg_ctl").exists())
        .max()
        .ok_or("no initdb/pg_ctl under /usr/lib/postgresql/*/bin")?;
    let dir: PathBuf = std::env::temp_dir().join(format!("coupond-pg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false);
    // PostgreSQL refuses to run as root: hand the directory to the postgres user and run as it.
    let as_user = |program: PathBuf| {
        let mut cmd = if root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        cmd.current_dir(&dir);
        cmd
    };
    if root {
        run(Command::new("chown").args(["-R", "postgres"]).arg(&dir))?;
    }
    let data = dir.join("data");
    run(as_user(bin.join("initdb"))
        .args(["-U", "postgres", "--auth=trust", "-D"])
        .arg(&data))?;
    let options = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
        dir.display()
    );
    run(as_user(bin.join("pg_ctl"))
        .args(["-w", "-D"])
        .arg(&data)
        .args(["-o", &options, "-l"])
        .arg(dir.join("log"))
        .arg("start"))?;
    // Stop the cluster once this test process is gone, whatever way it ends.
    let stop = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {runas}{pg_ctl} -D {data} stop -m immediate; rm -rf {dir}",
        pid = std::process::id(),
        runas = if root { "runuser -u postgres -- " } else { "" },
        pg_ctl = bin.join("pg_ctl").display(),
        data = data.display(),
        dir = dir.display(),
    );
    Command::new("sh")
        .args(["-c", &stop])
        .spawn()
        .map_err(|e| e.to_string())?;
    Ok(format!("postgres://postgres@127.0.0.1:{port}/postgres"))
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr)))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            super::with_database("postgres://u@h:5432/postgres", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            super::with_database("postgres://u@h:5432", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            super::with_database("postgres://u@h/db?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
    }
}
