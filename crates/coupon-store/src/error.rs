use coupon_core::CouponError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The request was refused by a rule of the domain (not found, out of stock, ...).
    #[error(transparent)]
    Rejected(#[from] CouponError),
    #[error("configuration: {0}")]
    Config(String),
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("postgres pool: {0}")]
    Pool(deadpool_postgres::PoolError),
    /// No connection (or SQLite reader) came free within the acquire timeout: the database is
    /// saturated, and the request is refused rather than queued for longer.
    #[error("database busy: {0}")]
    Unavailable(String),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A guarded write matched no row although the rules allowed it: state moved under us.
    #[error("conflicting concurrent change: {0}")]
    Conflict(&'static str),
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    #[error("background task failed: {0}")]
    Task(String),
    /// The request's idempotency key was answered before: this is that answer, to give again.
    #[error("answered before under this idempotency key")]
    Replayed(crate::idempotency::Reply),
    /// The idempotency key was first sent with another request.
    #[error("the idempotency key was used for another request")]
    KeyReused,
    /// A request with this idempotency key is still running on this instance.
    #[error("a request with this idempotency key is in flight")]
    KeyInFlight,
    /// Another transaction recorded the key first; its record is the answer (`crate::Coupons`
    /// looks it up).
    #[error("the idempotency key was recorded meanwhile")]
    KeyTaken,
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            // Waiting for a free connection, or for a new one to open, took too long.
            deadpool_postgres::PoolError::Timeout(_) => StoreError::Unavailable(e.to_string()),
            other => StoreError::Pool(other),
        }
    }
}

impl StoreError {
    pub fn not_found(what: &'static str) -> Self {
        StoreError::Rejected(CouponError::NotFound(what))
    }

    /// Whether the database could not be reached or could not take the write, rather than refused
    /// it: saturated, refusing connections, restarting, failing over, its connection lost
    /// mid-query, or (SQLite) its disk full or its file read-only. The client may retry; a write
    /// whose commit was cut off may or may not have taken effect, which its idempotency key tells.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable(_) | StoreError::Pool(_) => true,
            StoreError::Postgres(e) => postgres_unavailable(e),
            StoreError::Sqlite(e) => matches!(
                e.sqlite_error_code(),
                Some(
                    rusqlite::ErrorCode::DiskFull
                        | rusqlite::ErrorCode::ReadOnly
                        | rusqlite::ErrorCode::SystemIoFailure
                        | rusqlite::ErrorCode::CannotOpen
                        | rusqlite::ErrorCode::DatabaseBusy
                        | rusqlite::ErrorCode::DatabaseLocked
                )
            ),
            _ => false,
        }
    }
}

/// A PostgreSQL failure of the connection or the server's availability, not of the statement: the
/// connection closed or broke, or the server is shutting down, starting, in recovery or read-only
/// (a standby not yet promoted).
fn postgres_unavailable(e: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    let io = std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>());
    if e.is_closed() || io {
        return true;
    }
    e.code().is_some_and(|code| {
        code.code().starts_with("08")
            || code.code().starts_with("57P")
            || *code == SqlState::READ_ONLY_SQL_TRANSACTION
            || *code == SqlState::TOO_MANY_CONNECTIONS
    })
}
