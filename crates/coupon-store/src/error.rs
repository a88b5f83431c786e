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
    Pool(#[from] deadpool_postgres::PoolError),
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

impl StoreError {
    pub fn not_found(what: &'static str) -> Self {
        StoreError::Rejected(CouponError::NotFound(what))
    }
}
