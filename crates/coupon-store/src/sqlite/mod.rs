//! The embedded backend: one SQLite file in WAL mode. SQLite runs one writer at a time, so every
//! write goes through a single connection in an `IMMEDIATE` transaction (no busy-retry storms), on
//! a thread of its own that runs write transactions back to back; reads use a small pool of their
//! own connections on tokio's blocking threads and never wait for writers. A script runs whole on
//! the thread that holds its connection.

mod bind;
pub(crate) mod sql;
mod tx;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use tokio::sync::{oneshot, Semaphore};

use crate::backend::{Backend, Script};
use crate::{Connections, StoreError};
use tx::SqliteTx;

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/0001_init.sql")),
    (2, include_str!("migrations/0002_deal_cursor.sql")),
    (3, include_str!("migrations/0003_operations.sql")),
    (4, include_str!("migrations/0004_events.sql")),
    (5, include_str!("migrations/0005_webhooks.sql")),
    (6, include_str!("migrations/0006_idempotency.sql")),
];
/// Reader connections: reads beyond this many wait for one to come back rather than open more.
const READERS: usize = 8;

/// `sqlite://coupond.db` → `coupond.db`; `sqlite:///var/lib/coupond.db` → `/var/lib/coupond.db`.
/// An in-memory database is refused: its reader connections would each see a database of their own.
pub fn path_from_url(url: &str) -> Option<PathBuf> {
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .filter(|p| !p.is_empty() && !p.starts_with(":memory:") && !p.contains("mode=memory"))
        .map(PathBuf::from)
}

pub struct SqliteBackend {
    writer: Writer,
    readers: Arc<Readers>,
}

impl SqliteBackend {
    /// Opens the file (creating it if needed) and applies the migrations. A read waits at most
    /// `acquire_timeout` for a reader connection.
    pub(crate) async fn open(path: PathBuf, acquire_timeout: Duration) -> Result<Self, StoreError> {
        blocking(move || {
            let mut writer = open_writer(&path)?;
            migrate(&mut writer)?;
            Ok(SqliteBackend {
                writer: Writer::start(writer)?,
                readers: Arc::new(Readers::new(path, acquire_timeout)),
            })
        })
        .await
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Writer,
    Reader,
}

type WriteJob = Box<dyn FnOnce(&SqliteTx) + Send>;

/// The writer connection on its thread. Write transactions queue here and run back to back: the
/// next starts the moment the last one commits, with no hand-over between threads in between.
struct Writer {
    jobs: mpsc::Sender<WriteJob>,
}

impl Writer {
    fn start(conn: Connection) -> Result<Writer, StoreError> {
        let (jobs, queue) = mpsc::channel::<WriteJob>();
        std::thread::Builder::new()
            .name("coupond-sqlite-writer".into())
            .spawn(move || {
                let tx = SqliteTx { conn: Mutex::new(conn) };
                // Ends when the backend, and with it every sender, is gone.
                for job in queue {
                    // A panic in one transaction must not take the writer down with it.
                    if std::panic::catch_unwind(AssertUnwindSafe(|| job(&tx))).is_err() {
                        let _ = tx.batch("ROLLBACK");
                    }
                }
            })
            .map_err(|e| StoreError::Task(e.to_string()))?;
        Ok(Writer { jobs })
    }

    async fn run<S: Script>(&self, script: S) -> Result<S::Out, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job: WriteJob = Box::new(move |tx| {
            let _ = reply.send(tx.transaction(Role::Writer, &script));
        });
        self.jobs
            .send(job)
            .map_err(|_| StoreError::Task("the SQLite writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Task("a SQLite write transaction failed to finish".into()))?
    }
}

/// Idle reader connections, and permits for as many as may be in use. A read waits for a permit
/// before it takes a blocking thread, so waiting never ties up threads.
struct Readers {
    path: PathBuf,
    // A std Mutex: it is only held to push or pop, never across an await.
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
    /// Reads waiting for a permit, for the connection gauges (tokio's semaphore does not say).
    waiting: AtomicUsize,
    acquire_timeout: Duration,
}

impl Readers {
    fn new(path: PathBuf, acquire_timeout: Duration) -> Self {
        Readers {
            path,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(READERS),
            waiting: AtomicUsize::new(0),
            acquire_timeout,
        }
    }

    /// Runs the script on a reader connection, in one read transaction so it sees one snapshot.
    async fn run<S: Script>(self: &Arc<Self>, script: S) -> Result<S::Out, StoreError> {
        let waiting = Waiting::new(&self.waiting);
        let permit = tokio::time::timeout(self.acquire_timeout, self.permits.acquire()).await;
        drop(waiting);
        let _permit = permit
            .map_err(|_| StoreError::Unavailable("every SQLite reader is busy".into()))?
            .map_err(|e| StoreError::Task(e.to_string()))?;
        let pool = self.clone();
        blocking(move || {
            let pooled = pool.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
            let conn = match pooled {
                Some(conn) => conn,
                None => open_connection(&pool.path)?,
            };
            let tx = SqliteTx { conn: Mutex::new(conn) };
            let out = tx.transaction(Role::Reader, &script);
            let conn = tx.conn.into_inner().unwrap_or_else(PoisonError::into_inner);
            pool.idle.lock().unwrap_or_else(PoisonError::into_inner).push(conn);
            out
        })
        .await
    }

    /// Readers in use (permits taken), connections open and idle, and reads waiting for a permit.
    fn connections(&self) -> Connections {
        Connections {
            in_use: READERS - self.permits.available_permits(),
            idle: self.idle.lock().unwrap_or_else(PoisonError::into_inner).len(),
            waiting: self.waiting.load(Ordering::Relaxed),
        }
    }
}

/// Counts one read waiting for a permit while it lives: a read whose request goes away mid-wait
/// is uncounted too.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    // FULL: a claim acknowledged to a client survives a power cut, not only a crash.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
         PRAGMA busy_timeout = 5000;",
    )?;
    Ok(conn)
}

fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    let conn = open_connection(path)?;
    // The writer walks the code index for every insert and claim: keep it in memory.
    conn.execute_batch("PRAGMA cache_size = -65536")?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS coupond_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )?;
    for (version, sql) in MIGRATIONS {
        let applied: Option<i64> = tx
            .query_row(
                "SELECT version FROM coupond_migrations WHERE version = ?1",
                [version],
                |r| r.get(0),
            )
            .optional()?;
        if applied.is_none() {
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO coupond_migrations (version, applied_at) VALUES (?1, unixepoch())",
                [version],
            )?;
        }
    }
    tx.commit()?;
    Ok(())
}

async fn blocking<T, F>(f: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
}

impl Backend for SqliteBackend {
    fn write<S: Script>(&self, script: S) -> impl Future<Output = Result<S::Out, StoreError>> + Send {
        self.writer.run(script)
    }

    fn read<S: Script>(&self, script: S) -> impl Future<Output = Result<S::Out, StoreError>> + Send {
        self.readers.run(script)
    }

    /// SQLite's planner picks the indexes without statistics: nothing to refresh.
    fn analyze_codes(&self) -> impl Future<Output = Result<(), StoreError>> + Send {
        std::future::ready(Ok(()))
    }

    /// The reader connections: the one writer is a queue, not a pool.
    fn connections(&self) -> Connections {
        self.readers.connections()
    }
}

#[cfg(test)]
mod tests {
    use super::path_from_url;
    use std::path::PathBuf;

    #[test]
    fn reads_file_paths_from_urls() {
        assert_eq!(path_from_url("sqlite://coupond.db"), Some(PathBuf::from("coupond.db")));
        assert_eq!(
            path_from_url("sqlite:///var/lib/c.db"),
            Some(PathBuf::from("/var/lib/c.db"))
        );
        assert_eq!(path_from_url("sqlite::memory:"), None);
        assert_eq!(path_from_url("sqlite://"), None);
        assert_eq!(path_from_url("postgres://x"), None);
    }
}
