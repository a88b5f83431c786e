//! coupond's API contract: the JSON forms of domain values that the API answers with and accepts,
//! with their OpenAPI schemas and the conversions from and to `coupon_core`, and events as the API,
//! webhooks and NATS show them. Each type is named as its schema, which is the domain's name;
//! bodies that belong to one route live next to it in the server's `routes/`.
//!
//! It is a crate of its own so that the store, which writes an event's `data` in the transaction of
//! its change, and the server, which answers with the same forms, share one definition of each.

mod book;
mod code;
mod discount;
mod draft;
pub mod event;
mod metadata;
pub mod text;
mod time;

pub use book::{Book, BookStats, BookStatus, CodeMode, Policies};
pub use code::{ClaimedCode, CodeState, LockAnswer, Redemption, RedemptionStatus, UnlockAnswer};
pub use discount::{Discount, DiscountType};
pub use draft::{BookPatch, NewBook};
pub use event::{Event, EventType};
pub use metadata::Metadata;
pub use time::Timestamp;
