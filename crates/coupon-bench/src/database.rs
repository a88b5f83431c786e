//! The bench's own database: a fresh PostgreSQL database or SQLite file per run, removed at the end,
//! and direct connections to it for checking invariants without the server's help, and for the
//! one piece of maintenance a run does itself (`ANALYZE`).

use std::time::Duration;

use anyhow::{bail, Context};
use tempfile::TempDir;

use crate::Backend;

/// Where the servers keep their data during a run.
pub struct BenchDatabase {
    /// Holds the SQLite file and the servers' data directory.
    dir: TempDir,
    kind: Kind,
}

enum Kind {
    Postgres {
        /// The maintenance database the bench database is created from and dropped through.
        admin_url: String,
        name: String,
    },
    Sqlite,
}

impl BenchDatabase {
    pub async fn create(backend: Backend, pg_url: &str, name: &str) -> anyhow::Result<BenchDatabase> {
        let dir = tempfile::Builder::new()
            .prefix("coupond-bench-")
            .tempdir()
            .context("creating a temporary directory")?;
        let kind = match backend {
            Backend::Sqlite => Kind::Sqlite,
            Backend::Postgres => {
                if name.is_empty()
                    || !name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                {
                    bail!("--db-name must be lowercase letters, digits and underscores, got {name:?}");
                }
                let admin = postgres(pg_url).await?;
                // Two statements: one string would run as a transaction, which DROP DATABASE refuses.
                for statement in [
                    format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
                    format!("CREATE DATABASE \"{name}\""),
                ] {
                    admin
                        .batch_execute(&statement)
                        .await
                        .with_context(|| format!("creating database {name}"))?;
                }
                Kind::Postgres {
                    admin_url: pg_url.to_owned(),
                    name: name.to_owned(),
                }
            }
        };
        Ok(BenchDatabase { dir, kind })
    }

    /// The URL the servers are given.
    pub fn url(&self) -> String {
        match &self.kind {
            Kind::Postgres { admin_url, name } => with_database(admin_url, name),
            Kind::Sqlite => format!("sqlite://{}", self.sqlite_path().display()),
        }
    }

    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    fn sqlite_path(&self) -> std::path::PathBuf {
        self.dir.path().join("coupond.db")
    }

    pub async fn connect(&self) -> anyhow::Result<Connection> {
        Ok(match &self.kind {
            Kind::Postgres { .. } => Connection::Postgres(postgres(&self.url()).await?),
            Kind::Sqlite => Connection::Sqlite(
                rusqlite::Connection::open_with_flags(self.sqlite_path(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                    .context("opening the SQLite database")?,
            ),
        })
    }

    /// `ANALYZE` over the whole database, as an operator or autovacuum would run it: the planner's
    /// statistics brought up to date while the server runs. On SQLite the first `ANALYZE` creates
    /// `sqlite_stat1`, a schema change, so the server's connections reload the statistics with their
    /// next statement; on PostgreSQL new statistics invalidate the server's cached plans.
    pub async fn analyze(&self) -> anyhow::Result<()> {
        match &self.kind {
            Kind::Postgres { .. } => postgres(&self.url())
                .await?
                .batch_execute("ANALYZE")
                .await
                .context("running ANALYZE on PostgreSQL")?,
            Kind::Sqlite => {
                let path = self.sqlite_path();
                // The verifying connection is read-only; ANALYZE writes its statistics tables.
                tokio::task::spawn_blocking(move || {
                    let conn =
                        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)?;
                    // The server is idle between phases, but may still hold the write lock a moment.
                    conn.busy_timeout(Duration::from_secs(30))?;
                    conn.execute_batch("ANALYZE")
                })
                .await?
                .context("running ANALYZE on SQLite")?
            }
        }
        Ok(())
    }

    /// Drops the PostgreSQL database; the temporary directory goes with `self`.
    pub async fn remove(self) -> anyhow::Result<()> {
        if let Kind::Postgres { admin_url, name } = &self.kind {
            postgres(admin_url)
                .await?
                .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await
                .with_context(|| format!("dropping database {name}"))?;
        }
        Ok(())
    }
}

/// A direct connection for reading the tables the invariants are stated on.
pub enum Connection {
    Postgres(tokio_postgres::Client),
    Sqlite(rusqlite::Connection),
}

impl Connection {
    /// Runs a query with one parameter, the book id, written `{book}` in `sql`, and returns the
    /// first column of its one row.
    pub async fn scalar(&self, sql: &str, book: &str) -> anyhow::Result<Option<i64>> {
        match self {
            Connection::Postgres(client) => {
                let row = client.query_one(&postgres_sql(sql), &[&book]).await?;
                Ok(row.try_get(0)?)
            }
            Connection::Sqlite(conn) => Ok(conn.query_row(&sqlite_sql(sql), [book], |r| r.get(0))?),
        }
    }

    /// Like `scalar` but for queries answering text pairs.
    pub async fn pairs(&self, sql: &str, book: &str) -> anyhow::Result<Vec<(String, String)>> {
        match self {
            Connection::Postgres(client) => client
                .query(&postgres_sql(sql), &[&book])
                .await?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect(),
            Connection::Sqlite(conn) => {
                // Blocking, but only once the load is over.
                let mut stmt = conn.prepare(&sqlite_sql(sql))?;
                let rows = stmt.query_map([book], |r| Ok((r.get(0)?, r.get(1)?)))?;
                Ok(rows.collect::<Result<_, _>>()?)
            }
        }
    }
}

/// PostgreSQL stores book ids as `uuid`; the parameter is sent as text and cast there.
fn postgres_sql(sql: &str) -> String {
    sql.replace("{book}", "$1::text::uuid")
}

fn sqlite_sql(sql: &str) -> String {
    sql.replace("{book}", "?1")
}

async fn postgres(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .with_context(|| {
            format!("PostgreSQL at {url} does not answer: start it, or point --pg-url at a running server")
        })?;
    tokio::spawn(async move {
        // Errors reach the client's next query too, where they are reported.
        let _ = connection.await;
    });
    Ok(client)
}

/// `url` with its database name replaced: `postgres://u@h:5432/postgres?x=y` → `…/name?x=y`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{name}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "b"),
            "postgres://postgres@127.0.0.1:5432/b"
        );
        assert_eq!(with_database("postgres://u:p@h", "b"), "postgres://u:p@h/b");
        assert_eq!(
            with_database("postgresql://u@h/db?sslmode=disable", "b"),
            "postgresql://u@h/b?sslmode=disable"
        );
    }
}
