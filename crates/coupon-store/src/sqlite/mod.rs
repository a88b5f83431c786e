//! The embedded backend: one SQLite file in WAL mode. SQLite runs one writer at a time, so every
//! write goes through a single connection in an `IMMEDIATE` transaction (no busy-retry storms);
//! reads use a small pool of their own connections and never wait for writers. rusqlite is
//! blocking, so all of it runs on tokio's blocking threads.

mod books;
mod claims;
mod codes;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use coupon_core::book::BookDraft;
use coupon_core::{Book, BookPatch, BookStats, CodeInstance, CodePattern, CodeText, Redemption, Timestamp};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use uuid::Uuid;

use crate::rows::Fields;
use crate::{
    settle, AddedCodes, BatchResult, ClaimRequest, Claimed, CodeView, LockRequest, Locked, RedeemRequest, SearchPage,
    SearchQuery, Stock, Store, StoreError, UnlockRequest,
};

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/0001_init.sql")),
    (2, include_str!("migrations/0002_deal_cursor.sql")),
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

#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    // A std Mutex: it is only ever held on a blocking thread, never across an await.
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    reader_permits: tokio::sync::Semaphore,
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

impl SqliteStore {
    /// Opens the file (creating it if needed) and applies the migrations.
    pub async fn open(path: PathBuf) -> Result<Self, StoreError> {
        blocking(move || {
            let mut writer = open_connection(&path)?;
            // The writer walks the code index for every insert and claim: keep it in memory.
            writer.execute_batch("PRAGMA cache_size = -65536")?;
            migrate(&mut writer)?;
            Ok(SqliteStore {
                inner: Arc::new(Inner {
                    path,
                    writer: Mutex::new(writer),
                    readers: Mutex::new(Vec::new()),
                    reader_permits: tokio::sync::Semaphore::new(READERS),
                }),
            })
        })
        .await
    }

    /// Runs `f` in one write transaction; an error rolls it back.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        blocking(move || {
            let mut conn = inner.writer.lock().unwrap_or_else(PoisonError::into_inner);
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })
        .await
    }

    /// Runs `f` on a reader connection, in one read transaction so it sees one snapshot.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        let _permit = self
            .inner
            .reader_permits
            .acquire()
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?;
        blocking(move || {
            let pooled = inner.readers.lock().unwrap_or_else(PoisonError::into_inner).pop();
            let mut conn = match pooled {
                Some(conn) => conn,
                None => open_connection(&inner.path)?,
            };
            let out = {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
                let out = f(&tx);
                tx.finish()?;
                out
            };
            inner.readers.lock().unwrap_or_else(PoisonError::into_inner).push(conn);
            out
        })
        .await
    }
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

impl Fields for rusqlite::Row<'_> {
    fn i64(&self, i: usize) -> Result<i64, StoreError> {
        Ok(self.get(i)?)
    }
    fn opt_i64(&self, i: usize) -> Result<Option<i64>, StoreError> {
        Ok(self.get(i)?)
    }
    fn string(&self, i: usize) -> Result<String, StoreError> {
        Ok(self.get(i)?)
    }
    fn opt_string(&self, i: usize) -> Result<Option<String>, StoreError> {
        Ok(self.get(i)?)
    }
    fn uuid(&self, i: usize) -> Result<Uuid, StoreError> {
        let s: String = self.get(i)?;
        Uuid::parse_str(&s).map_err(|_| StoreError::Corrupt(format!("uuid {s:?}")))
    }
    fn opt_uuid(&self, i: usize) -> Result<Option<Uuid>, StoreError> {
        match self.get::<_, Option<String>>(i)? {
            None => Ok(None),
            Some(s) => Uuid::parse_str(&s)
                .map(Some)
                .map_err(|_| StoreError::Corrupt(format!("uuid {s:?}"))),
        }
    }
}

/// Collects the rows of a query through a fallible mapping.
pub(crate) fn collect<T>(
    stmt: &mut rusqlite::Statement<'_>,
    params: impl rusqlite::Params,
    map: impl Fn(&rusqlite::Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut rows = stmt.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(map(row)?);
    }
    Ok(out)
}

/// The first row of a query, if any.
pub(crate) fn first<T>(
    stmt: &mut rusqlite::Statement<'_>,
    params: impl rusqlite::Params,
    map: impl Fn(&rusqlite::Row<'_>) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    let mut rows = stmt.query(params)?;
    rows.next()?.map(map).transpose()
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_book(&self, draft: BookDraft) -> Result<Book, StoreError> {
        self.write(move |tx| books::create(tx, draft)).await
    }

    async fn book(&self, id: Uuid) -> Result<Book, StoreError> {
        self.read(move |c| books::load(c, id)?.ok_or(StoreError::not_found("coupon book")))
            .await
    }

    async fn update_book(&self, id: Uuid, patch: BookPatch, now: Timestamp) -> Result<Book, StoreError> {
        self.write(move |tx| books::update(tx, id, patch, now)).await
    }

    async fn book_with_stats(&self, id: Uuid, now: Timestamp) -> Result<(Book, BookStats), StoreError> {
        self.read(move |c| books::with_stats(c, id, now)).await
    }

    async fn add_codes(&self, book_id: Uuid, codes: Vec<String>) -> Result<AddedCodes, StoreError> {
        self.write(move |tx| books::add_codes(tx, book_id, codes)).await
    }

    async fn generate_codes(&self, book_id: Uuid, pattern: Option<CodePattern>, count: u64) -> Result<u64, StoreError> {
        self.write(move |tx| books::generate_codes(tx, book_id, pattern, count))
            .await
    }

    async fn search_books(&self, query: SearchQuery, now: Timestamp) -> Result<SearchPage, StoreError> {
        self.read(move |c| books::search(c, query, now)).await
    }

    async fn claim(&self, batch: Vec<ClaimRequest>, now: Timestamp) -> BatchResult<Claimed> {
        self.write(move |tx| claims::claim(tx, &batch, now)).await
    }

    async fn stock(&self, book_id: Uuid, now: Timestamp) -> Result<(Book, Stock), StoreError> {
        self.read(move |c| claims::stock(c, book_id, now)).await
    }

    async fn lock(&self, batch: Vec<LockRequest>, now: Timestamp) -> BatchResult<Locked> {
        self.write(move |tx| batch.iter().map(|r| settle(codes::lock(tx, r, now))).collect())
            .await
    }

    async fn unlock(&self, batch: Vec<UnlockRequest>, now: Timestamp) -> BatchResult<()> {
        self.write(move |tx| batch.iter().map(|r| settle(codes::unlock(tx, r, now))).collect())
            .await
    }

    async fn redeem(&self, batch: Vec<RedeemRequest>, now: Timestamp) -> BatchResult<Redemption> {
        self.write(move |tx| batch.iter().map(|r| settle(codes::redeem(tx, r, now))).collect())
            .await
    }

    async fn code_view(&self, code: &CodeText, user_id: &str, lock_id: Option<Uuid>) -> Result<CodeView, StoreError> {
        let (code, user_id) = (code.clone(), user_id.to_owned());
        self.read(move |c| codes::view(c, &code, &user_id, lock_id)).await
    }

    async fn user_codes(&self, user_id: &str) -> Result<Vec<(CodeInstance, Book)>, StoreError> {
        let user_id = user_id.to_owned();
        self.read(move |c| codes::of_user(c, &user_id)).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?))
            .await
            .map(|_| ())
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
