//! The database after the run, read with the harness's own SQL (never the server's code), straight
//! from the database (never through the proxy): the rows the checker judges the history against.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// When it was read (ms since the epoch): the instant live locks are counted at.
    pub now: i64,
    pub books: Vec<BookRow>,
    pub codes: Vec<CodeRow>,
    pub redemptions: Vec<RedemptionRow>,
    pub events: Vec<EventRow>,
    pub keys: HashMap<(String, String), KeyRow>,
    pub counters: Vec<CounterRow>,
    /// Each book's `stats` as `GET /coupons/{id}` answered them just before.
    pub stats: HashMap<String, Stats>,
}

#[derive(Debug, Clone, Default)]
pub struct BookRow {
    pub id: String,
    pub shared: bool,
    pub total_codes: Option<i64>,
    pub generated: i64,
    pub pool: i64,
    pub max_codes_per_user: Option<i64>,
    pub max_redemptions_per_code: i64,
}

#[derive(Debug, Clone, Default)]
pub struct CodeRow {
    pub id: i64,
    pub book: String,
    pub code: String,
    pub instance: i64,
    pub status: String,
    pub owner: Option<String>,
    pub locked_until: Option<i64>,
    pub redemptions: i64,
}

#[derive(Debug, Clone, Default)]
pub struct RedemptionRow {
    pub id: String,
    pub code_id: i64,
    pub book: String,
    pub code: String,
    pub user: String,
    pub order_id: Option<String>,
    pub discount: Option<i64>,
    pub rolled_back: bool,
}

#[derive(Debug, Clone, Default)]
pub struct EventRow {
    pub kind: String,
    pub book: Option<String>,
    pub code: Option<String>,
    pub user: Option<String>,
    pub data: Value,
}

#[derive(Debug, Clone, Default)]
pub struct KeyRow {
    pub status: i64,
    pub body: String,
}

/// A user's counters within a book (`user_books`).
#[derive(Debug, Clone, Default)]
pub struct CounterRow {
    pub book: String,
    pub user: String,
    pub held: i64,
    pub redeemed: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Stats {
    pub total_generated: i64,
    pub total_assigned: i64,
    pub total_locked: i64,
    pub total_redeemed: i64,
    pub total_redemptions: i64,
    pub total_discount_applied: i64,
    pub available: i64,
}

/// Where the database is, for reading.
pub enum Source {
    Postgres(String),
    Sqlite(PathBuf),
}

/// One row, whichever database it came from.
enum Row<'a, 'b> {
    Pg(&'a tokio_postgres::Row),
    Lite(&'a rusqlite::Row<'b>),
}

impl Row<'_, '_> {
    fn text(&self, i: usize) -> anyhow::Result<Option<String>> {
        Ok(match self {
            Row::Pg(r) => r.try_get(i)?,
            Row::Lite(r) => r.get(i)?,
        })
    }

    fn int(&self, i: usize) -> anyhow::Result<Option<i64>> {
        Ok(match self {
            Row::Pg(r) => r.try_get(i)?,
            Row::Lite(r) => r.get(i)?,
        })
    }

    fn must_text(&self, i: usize) -> anyhow::Result<String> {
        self.text(i)?.with_context(|| format!("column {i} is null"))
    }

    fn must_int(&self, i: usize) -> anyhow::Result<i64> {
        self.int(i)?.with_context(|| format!("column {i} is null"))
    }
}

enum Conn {
    Pg(tokio_postgres::Client),
    Lite(rusqlite::Connection),
}

impl Conn {
    /// Runs `sql` (uuids cast `::text`, which SQLite, keeping them as text, drops) and maps its rows.
    async fn rows<T>(&self, sql: &str, map: impl Fn(&Row) -> anyhow::Result<T>) -> anyhow::Result<Vec<T>> {
        match self {
            Conn::Pg(client) => {
                let rows = client.query(sql, &[]).await.with_context(|| sql.to_owned())?;
                rows.iter().map(|r| map(&Row::Pg(r))).collect()
            }
            Conn::Lite(conn) => {
                let sql = sql.replace("::text", "");
                let mut stmt = conn.prepare(&sql).with_context(|| sql.clone())?;
                let mut rows = stmt.query([])?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    out.push(map(&Row::Lite(r))?);
                }
                Ok(out)
            }
        }
    }
}

/// Reads every table the checks are stated on.
pub async fn read(source: &Source, stats: HashMap<String, Stats>) -> anyhow::Result<Snapshot> {
    let conn = match source {
        Source::Postgres(url) => {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .with_context(|| format!("connecting to {url} to check it"))?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            Conn::Pg(client)
        }
        Source::Sqlite(path) => Conn::Lite(
            rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .with_context(|| format!("opening {} to check it", path.display()))?,
        ),
    };
    let now = crate::http::now_ms();
    let books = conn
        .rows(
            "SELECT id::text, code_mode, total_codes, generated, pool, max_codes_per_user, \
             max_redemptions_per_code FROM books",
            |r| {
                Ok(BookRow {
                    id: r.must_text(0)?,
                    shared: r.must_text(1)? == "shared",
                    total_codes: r.int(2)?,
                    generated: r.must_int(3)?,
                    pool: r.must_int(4)?,
                    max_codes_per_user: r.int(5)?,
                    max_redemptions_per_code: r.must_int(6)?,
                })
            },
        )
        .await?;
    let codes = conn
        .rows(
            "SELECT id, book_id::text, code, instance, status, owner, locked_until, redemptions FROM codes",
            |r| {
                Ok(CodeRow {
                    id: r.must_int(0)?,
                    book: r.must_text(1)?,
                    code: r.must_text(2)?,
                    instance: r.must_int(3)?,
                    status: r.must_text(4)?,
                    owner: r.text(5)?,
                    locked_until: r.int(6)?,
                    redemptions: r.must_int(7)?,
                })
            },
        )
        .await?;
    let redemptions = conn
        .rows(
            "SELECT id::text, code_id, book_id::text, code, user_id, order_id, discount_applied, \
             rolled_back_at FROM redemptions",
            |r| {
                Ok(RedemptionRow {
                    id: r.must_text(0)?,
                    code_id: r.must_int(1)?,
                    book: r.must_text(2)?,
                    code: r.must_text(3)?,
                    user: r.must_text(4)?,
                    order_id: r.text(5)?,
                    discount: r.int(6)?,
                    rolled_back: r.int(7)?.is_some(),
                })
            },
        )
        .await?;
    let events = conn
        .rows("SELECT type, book_id::text, code, user_id, data FROM events", |r| {
            Ok(EventRow {
                kind: r.must_text(0)?,
                book: r.text(1)?,
                code: r.text(2)?,
                user: r.text(3)?,
                data: serde_json::from_str(&r.must_text(4)?).unwrap_or(Value::Null),
            })
        })
        .await?;
    let keys = conn
        .rows("SELECT scope, key, status, body FROM idempotency_keys", |r| {
            Ok((
                (r.must_text(0)?, r.must_text(1)?),
                KeyRow {
                    status: r.must_int(2)?,
                    body: r.must_text(3)?,
                },
            ))
        })
        .await?
        .into_iter()
        .collect();
    let counters = conn
        .rows("SELECT book_id::text, user_id, held, redeemed FROM user_books", |r| {
            Ok(CounterRow {
                book: r.must_text(0)?,
                user: r.must_text(1)?,
                held: r.must_int(2)?,
                redeemed: r.must_int(3)?,
            })
        })
        .await?;
    Ok(Snapshot {
        now,
        books,
        codes,
        redemptions,
        events,
        keys,
        counters,
        stats,
    })
}
