//! Storage for coupond: one [`Store`] trait, two real backends (embedded SQLite, PostgreSQL), picked
//! from the database URL.
//!
//! Every invariant that money depends on is enforced by the database, not by the caller: a code has
//! one owner column and moves out of `available` only through a conditional update; a book's supply
//! is a counter with a CHECK against `total_codes`; per-user limits are conditional updates of a
//! per-user row; redemptions are unique per (code, user, order). The pure rules in
//! `coupon_core::rules` decide *which* error a refused request gets, on state read under a row lock
//! (PostgreSQL) or in a serialized write transaction (SQLite).
//!
//! Each operation's decision flow is one script (`script/`) written once for both backends; a
//! backend (`postgres/`, `sqlite/`) supplies connections, transactions with their retry rules, and
//! the SQL text of the named statements (`statements.rs`) in its dialect. The write operations take
//! batches: a batch runs in one transaction and each request in it gets its own answer, so a caller
//! (the claim engine, `engine/`) may group many requests into one commit.

mod backend;
mod background;
mod engine;
mod error;
pub mod outbox;
pub mod postgres;
mod rows;
mod script;
mod service;
pub mod sqlite;
mod statements;
mod store;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use coupon_core::discount::DiscountType;
use coupon_core::rules::Holdings;
use coupon_core::{
    Amount, Applied, Book, BookDraft, BookPatch, BookStats, BookStatus, CodeInstance, CodePattern, CodeState, CodeText,
    CouponError, Metadata, OrderId, Redemption, Timestamp, UserId,
};
use uuid::Uuid;
use webhooks::{Attempted, Backlog, Delivery, DeliveryPage, Due, Endpoint, NewWebhook, Webhook};

pub use background::Background;
pub use error::StoreError;
pub use outbox::{Event, EventCursor, EventForm, EventPage, EventQuery, EventType};
pub use service::{Coupons, Strategy};
pub use store::SqlStore;
pub use telemetry::Connections;

/// Per-request answers of a batch: each request succeeds or is refused on its own.
pub type BatchResult<T> = Result<Vec<Result<T, CouponError>>, StoreError>;

/// What an upload or generation added.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddedCodes {
    pub inserted: u64,
    /// Codes that already existed (in any book) or came twice in the request.
    pub duplicates: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ClaimRequest {
    pub target: ClaimTarget,
    pub user_id: UserId,
    /// Kept with the claim while the user holds the code.
    pub metadata: Metadata,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimTarget {
    /// Any available code of the book.
    Book(Uuid),
    /// That code (in shared mode: an available instance of it).
    Code(CodeText),
}

#[derive(Debug, Clone)]
pub struct Claimed {
    pub code: CodeInstance,
    pub book: Book,
}

#[derive(Debug, Clone)]
pub struct LockRequest {
    pub code: CodeText,
    pub user_id: UserId,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locked {
    pub code: String,
    pub lock_id: Uuid,
    pub locked_until: Timestamp,
}

#[derive(Debug, Clone)]
pub struct UnlockRequest {
    pub code: CodeText,
    pub user_id: UserId,
    pub lock_id: Option<Uuid>,
}

#[derive(Debug, Clone)]
pub struct RedeemRequest {
    pub code: CodeText,
    pub user_id: UserId,
    pub order_id: Option<OrderId>,
    pub order_amount: Option<Amount>,
    pub lock_id: Option<Uuid>,
    pub metadata: Metadata,
}

impl RedeemRequest {
    /// The record of this redemption of `code`, as it will be stored and answered.
    pub fn record(&self, code: &CodeInstance, applied: Option<Applied>, now: Timestamp) -> Redemption {
        Redemption {
            redemption_id: Uuid::now_v7(),
            code: code.code.clone(),
            coupon_book_id: code.book_id,
            user_id: self.user_id.as_str().to_owned(),
            order_id: self.order_id.as_ref().map(|o| o.as_str().to_owned()),
            order_amount: self.order_amount.map(Amount::minor_units),
            discount_applied: applied.map(|a| a.discount_applied),
            final_price: applied.map(|a| a.final_price),
            redeemed_at: now,
            metadata: self.metadata.clone(),
            rollback: None,
        }
    }
}

/// Undoes a redemption: its use goes back to the code and to the user's count.
#[derive(Debug, Clone)]
pub struct RollbackRequest {
    pub redemption_id: Uuid,
    /// What to record: the reason and metadata, at the rollback's time.
    pub rollback: coupon_core::Rollback,
}

/// Whose redemptions to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedemptionsOf {
    Book(Uuid),
    User(UserId),
}

#[derive(Debug, Clone)]
pub struct RedemptionQuery {
    pub of: RedemptionsOf,
    pub limit: u32,
    /// Continue after this (redeemed_at, id): the list runs newest first.
    pub after: Option<(Timestamp, Uuid)>,
}

/// A book's codes, a page at a time in the order they were added.
#[derive(Debug, Clone)]
pub struct CodeQuery {
    pub book_id: Uuid,
    /// Only codes in this state at `now`.
    pub state: Option<CodeState>,
    pub limit: u32,
    /// Continue after this position.
    pub after: Option<i64>,
}

/// Why a code named for removal stayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotRemoved {
    /// No such code in the book.
    Unknown,
    /// A user holds it (claimed, locked, or lapsed but not yet returned).
    Held,
    /// Used up by its redemptions.
    Redeemed,
    /// Back in the pool, but its redemption history (rolled back) refers to it.
    HasHistory,
}

impl NotRemoved {
    pub fn as_str(self) -> &'static str {
        match self {
            NotRemoved::Unknown => "unknown",
            NotRemoved::Held => "held",
            NotRemoved::Redeemed => "redeemed",
            NotRemoved::HasHistory => "has_history",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RemovedCodes {
    pub removed: u64,
    /// In the order they were named; a code named twice is listed once.
    pub not_removed: Vec<(String, NotRemoved)>,
}

/// What a claim on a book would find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stock {
    Available,
    /// Nothing to deal until codes are added or, if `next_lapse` is set, possibly from then on (no
    /// held code lapses earlier; it is a lower bound, since a lock can hold a claim past its expiry).
    SoldOut {
        next_lapse: Option<Timestamp>,
    },
}

/// A code as one user sees it: the instance that user would lock or redeem.
#[derive(Debug, Clone)]
pub struct CodeView {
    pub book: Book,
    pub code: CodeInstance,
    pub holdings: Holdings,
}

/// Which books a search looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    /// What customers may claim: active books inside their window.
    #[default]
    Live,
    /// Every book, whatever its window, in one status or any (the admin's listing).
    All(Option<BookStatus>),
}

#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    pub scope: Scope,
    pub text: Option<String>,
    pub category: Option<String>,
    pub discount_type: Option<DiscountType>,
    pub limit: u32,
    /// Continue after this (created_at, id).
    pub after: Option<(Timestamp, Uuid)>,
}

/// One page of a list, and where the next one starts (none on the last page).
#[derive(Debug, Clone)]
pub struct Page<T, K> {
    pub items: Vec<T>,
    pub next: Option<K>,
}

impl<T, K> Page<T, K> {
    /// A page from a query that asked for `limit + 1` rows: the extra row says there is more, and
    /// the next page starts after the key of this page's last item.
    fn from_overfetch(mut items: Vec<T>, limit: u32, key: impl Fn(&T) -> K) -> Self {
        let next = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(key)
        } else {
            None
        };
        Page { items, next }
    }
}

pub type SearchPage = Page<Book, (Timestamp, Uuid)>;
pub type RedemptionPage = Page<Redemption, (Timestamp, Uuid)>;
pub type CodePage = Page<CodeInstance, i64>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates a book and its codes in one transaction: shared instances, or `total_codes` codes drawn
    /// from its pattern. Refused with `code_taken` when a shared code already exists.
    async fn create_book(&self, draft: BookDraft) -> Result<Book, StoreError>;
    async fn book(&self, id: Uuid) -> Result<Book, StoreError>;
    /// The book and how many codes (or shared instances) it holds, from its supply counter.
    async fn book_supply(&self, id: Uuid) -> Result<(Book, i64), StoreError>;
    async fn update_book(&self, id: Uuid, patch: BookPatch, now: Timestamp) -> Result<Book, StoreError>;
    /// The book and counts over its codes at `now`, read together.
    async fn book_with_stats(&self, id: Uuid, now: Timestamp) -> Result<(Book, BookStats), StoreError>;
    /// Adds codes to a unique-mode book, never past its `total_codes`.
    async fn add_codes(&self, book_id: Uuid, codes: Vec<String>, now: Timestamp) -> Result<AddedCodes, StoreError>;
    /// `add_codes` for a part of a bulk load that goes on (an import, a chunk at a time): work
    /// that follows a load, such as refreshing the planner's statistics, waits for its last part,
    /// which is added with `add_codes`.
    async fn add_codes_part(
        &self,
        book_id: Uuid,
        codes: Vec<String>,
        now: Timestamp,
    ) -> Result<AddedCodes, StoreError> {
        self.add_codes(book_id, codes, now).await
    }
    /// Draws `count` new codes from the pattern (the book's own when `None`) into a unique-mode book,
    /// never past `total_codes`.
    async fn generate_codes(
        &self,
        book_id: Uuid,
        pattern: Option<CodePattern>,
        count: u64,
        now: Timestamp,
    ) -> Result<u64, StoreError>;
    /// Books in the query's scope at `now`, newest first.
    async fn search_books(&self, query: SearchQuery, now: Timestamp) -> Result<SearchPage, StoreError>;
    /// Takes codes nobody ever held out of a unique-mode book, and says why the others stay.
    async fn remove_codes(&self, book_id: Uuid, codes: Vec<String>, now: Timestamp)
        -> Result<RemovedCodes, StoreError>;
    /// The book and a page of its codes, in the order they were added, with their states at `now`.
    async fn codes(&self, query: CodeQuery, now: Timestamp) -> Result<(Book, CodePage), StoreError>;

    /// Claims for any code of a book are decided together per book, in arrival order, as if each
    /// ran alone after the ones before it; the whole batch commits at once.
    async fn claim(&self, batch: Vec<ClaimRequest>, now: Timestamp) -> BatchResult<Claimed>;
    /// The book, and whether a claim on it could find a code now (not dealt yet, returned, or
    /// lapsed) or else from when a held code could lapse. A hint for the sold-out fast path; claims
    /// themselves decide on locked rows.
    async fn stock(&self, book_id: Uuid, now: Timestamp) -> Result<(Book, Stock), StoreError>;
    async fn lock(&self, batch: Vec<LockRequest>, now: Timestamp) -> BatchResult<Locked>;
    async fn unlock(&self, batch: Vec<UnlockRequest>, now: Timestamp) -> BatchResult<()>;
    /// Repeating a redemption (same code, user and order id) answers the first one and counts once.
    async fn redeem(&self, batch: Vec<RedeemRequest>, now: Timestamp) -> BatchResult<Redemption>;
    /// Repeating a rollback answers the rolled-back redemption and counts once.
    async fn rollback(&self, batch: Vec<RollbackRequest>, now: Timestamp) -> BatchResult<Redemption>;
    /// Redemptions of a book or of a user, newest first, rolled-back ones included.
    async fn redemptions(&self, query: RedemptionQuery) -> Result<RedemptionPage, StoreError>;

    /// The instance of `code` that `user_id` would act on (the one under `lock_id` first), for dry runs.
    async fn code_view(&self, code: &CodeText, user_id: &str, lock_id: Option<Uuid>) -> Result<CodeView, StoreError>;
    /// Every code instance the user has owned (lapsed claims included: the caller filters by time).
    async fn user_codes(&self, user_id: &str) -> Result<Vec<(CodeInstance, Book)>, StoreError>;
    /// Committed events after a place in the feed, in its order: a consumer that passes each
    /// page's `next` back never misses an event, however late its transaction commits.
    async fn events(&self, query: EventQuery) -> Result<EventPage, StoreError>;

    async fn create_webhook(&self, new: NewWebhook) -> Result<Webhook, StoreError>;
    async fn webhook(&self, id: Uuid) -> Result<Webhook, StoreError>;
    /// Every endpoint with its secret, oldest first: what the relay sends to.
    async fn endpoints(&self) -> Result<Vec<Endpoint>, StoreError>;
    /// Deletes the endpoint and its deliveries.
    async fn delete_webhook(&self, id: Uuid) -> Result<(), StoreError>;
    /// Turns the feed's next `limit` events into deliveries for the endpoints subscribed to them;
    /// each event fans out once, whatever the number of instances. Says how many events it took.
    async fn fan_out(&self, limit: u32, now: Timestamp) -> Result<usize, StoreError>;
    /// Leases up to `limit` of the endpoint's due deliveries until `until`, in feed order; rows
    /// another instance leased are skipped.
    async fn lease_deliveries(
        &self,
        webhook_id: Uuid,
        limit: u32,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<Vec<Due>, StoreError>;
    async fn settle_deliveries(&self, attempts: Vec<Attempted>) -> Result<(), StoreError>;
    /// The endpoint's deliveries, newest first.
    async fn deliveries(
        &self,
        webhook_id: Uuid,
        limit: u32,
        after: Option<(Timestamp, Uuid)>,
    ) -> Result<DeliveryPage, StoreError>;
    /// Makes a delivery due again now.
    async fn retry_delivery(&self, webhook_id: Uuid, id: Uuid, now: Timestamp) -> Result<Delivery, StoreError>;
    async fn backlog(&self) -> Result<Backlog, StoreError>;
    /// The next `limit` events after a consumer's place (NATS's), and that place.
    async fn relay_next(&self, name: &str, limit: u32) -> Result<(EventCursor, Vec<Event>), StoreError>;
    /// Moves a consumer's place; false when another instance moved it first.
    async fn relay_moved(&self, name: &str, from: EventCursor, to: EventCursor) -> Result<bool, StoreError>;
    /// Deletes finished deliveries and passed events older than `before`.
    async fn prune(&self, before: Timestamp) -> Result<u64, StoreError>;

    /// Whether the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
    /// How busy the store's connections are now, where it has a pool to tell of.
    fn connections(&self) -> Option<Connections> {
        None
    }
}

pub type DynStore = Arc<dyn Store>;

/// How many connections a backend keeps and how long a request waits for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// PostgreSQL connections per pool (SQLite keeps its own few readers and one writer).
    pub size: usize,
    /// How long a request waits for a free connection (PostgreSQL) or reader (SQLite) before it
    /// fails with [`StoreError::Unavailable`]: under saturation a quick refusal the client may
    /// retry beats a queue that grows until every request times out.
    pub acquire_timeout: Duration,
}

impl PoolConfig {
    pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

    /// `size` connections, with the default acquire timeout.
    pub fn sized(size: usize) -> Self {
        PoolConfig {
            size,
            acquire_timeout: Self::DEFAULT_ACQUIRE_TIMEOUT,
        }
    }
}

/// Opens (and migrates) the backend named by the URL: `postgres://…`/`postgresql://…`, or
/// `sqlite://path` (`sqlite://coupond.db` is a file in the working directory). This is the
/// batch-shaped store; requests go through [`Coupons`].
/// Events show their objects by their [`outbox::Facts`]: this is the store for tools and tests;
/// the server opens it with the API's form ([`open`]).
pub async fn connect(url: &str, pool_size: usize) -> Result<DynStore, StoreError> {
    connect_with(url, PoolConfig::sized(pool_size), Arc::new(outbox::Facts)).await
}

/// [`connect`] with the pool's acquire timeout too, and the form events show their objects in.
pub async fn connect_with(url: &str, pool: PoolConfig, form: Arc<dyn EventForm>) -> Result<DynStore, StoreError> {
    if is_postgres(url) {
        Ok(Arc::new(postgres::PgStore::connect(url, pool, form).await?))
    } else if let Some(path) = sqlite::path_from_url(url) {
        Ok(Arc::new(
            sqlite::SqliteStore::open(path, pool.acquire_timeout, form).await?,
        ))
    } else {
        Err(StoreError::Config(
            "the database URL must be postgres://…, postgresql://… or sqlite://<file path>".into(),
        ))
    }
}

/// Opens the service as `coupond serve` runs it: the backend named by the URL (migrated), with
/// claims, locks, unlocks and redemptions batched by the claim engine or run one per transaction.
/// On PostgreSQL the engine's batches get a pool of their own, opened on the engine's thread;
/// SQLite's one writer is shared.
pub async fn open(
    url: &str,
    pool: PoolConfig,
    strategy: Strategy,
    background: &Background,
    form: Arc<dyn EventForm>,
) -> Result<Coupons, StoreError> {
    let store = connect_with(url, pool, form.clone()).await?;
    match strategy {
        Strategy::Naive => Ok(Coupons::naive(store)),
        Strategy::Batched if is_postgres(url) => {
            // `connect` migrated the database; this pool only opens connections.
            let writes = postgres::PgStore::pool(url, pool, form)?;
            Coupons::batched(store, Arc::new(writes), background)
        }
        Strategy::Batched => Coupons::batched(store.clone(), store, background),
    }
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Applies the backend's migrations without starting anything else (`coupond migrate`).
pub async fn migrate(url: &str) -> Result<(), StoreError> {
    connect(url, 1).await.map(|_| ())
}
