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
}
