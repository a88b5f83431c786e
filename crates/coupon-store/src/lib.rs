//! Storage for coupond: two real backends (embedded SQLite, PostgreSQL) picked from the database
//! URL, the per-request service the HTTP layer calls ([`Coupons`]), and the claim engine behind it.
//!
//! Every invariant that money depends on is enforced by the database, not by the caller: a code has
//! one owner column and moves out of `available` only through a conditional update; a book's supply
//! is a counter with a CHECK against `total_codes`; per-user limits are conditional updates of a
//! per-user row; redemptions are unique per (code, user, order). The pure rules in
//! `coupon_core::rules` decide *which* error a refused request gets, on state read under a row lock
//! (PostgreSQL) or in a serialized write transaction (SQLite).
//!
//! Each operation's decision flow is one script (`script/`, a file per operation) written once for
//! both backends; a backend (`postgres/`, `sqlite/`) supplies connections, transactions with their
//! retry rules, and the SQL text of the named statements (`statements.rs`) in its dialect. The
//! store is reached through narrow interfaces, one per consumer: [`Coupons`] for the HTTP layer,
//! [`ClaimBatches`] and [`CheckoutBatches`] for the claim engine's batches, [`Outbox`] for the
//! event relay.

mod backend;
mod background;
mod batches;
mod engine;
mod error;
pub mod idempotency;
mod open;
pub mod outbox;
pub mod postgres;
mod queries;
mod relay;
mod requests;
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

pub use background::Background;
pub use batches::{CheckoutBatches, ClaimBatches};
pub use error::StoreError;
pub use idempotency::{Key, Keyed, Reply};
pub use open::{connect, connect_with, migrate, open, PoolConfig};
pub use outbox::{Event, EventCursor, EventPage, EventQuery, EventType};
pub use queries::{
    CodePage, CodeQuery, CodeView, Page, RedemptionPage, RedemptionQuery, RedemptionsOf, Scope, SearchPage, SearchQuery,
};
pub use relay::Outbox;
pub use requests::{
    AddedCodes, BatchResult, ClaimRequest, ClaimTarget, Claimed, LockRequest, Locked, NotRemoved, RedeemRequest,
    RemovedCodes, RollbackRequest, Stock, UnlockRequest,
};
pub use service::{Coupons, Strategy};
pub use store::Store;
pub use telemetry::Connections;
