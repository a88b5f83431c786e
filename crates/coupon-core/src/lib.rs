//! The domain of coupond: coupon books, their codes, discounts, and the rules that decide whether a
//! claim, lock or redemption may happen. Everything here is pure: no I/O, no clock reads (time is
//! passed in), so the rules can be unit- and property-tested and shared by every storage backend.

pub mod amount;
pub mod book;
pub mod clock;
pub mod code;
pub mod discount;
pub mod draft;
pub mod error;
pub mod instance;
pub mod metadata;
pub mod order;
pub mod pattern;
pub mod redemption;
pub mod rules;
pub mod stock;
#[cfg(test)]
mod testing;
pub mod time;
pub mod user;

pub use amount::Amount;
pub use book::{Book, BookStats, BookStatus, CodeMode, Policies};
pub use clock::{Clock, ManualClock, SystemClock};
pub use code::CodeText;
pub use discount::{Applied, Discount, DiscountKind};
pub use draft::{BookDraft, BookPatch, NewBook};
pub use error::{CouponError, InvalidInput};
pub use instance::{CodeInstance, CodeState, Locked, StoredStatus};
pub use metadata::Metadata;
pub use order::OrderId;
pub use pattern::{CodePattern, DEFAULT_CODE_PATTERN};
pub use redemption::{Redemption, Rollback};
pub use stock::{StockAlert, StockLevel};
pub use time::Timestamp;
pub use user::UserId;
