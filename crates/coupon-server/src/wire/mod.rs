//! The JSON forms of domain values that several routes share, with their OpenAPI schemas and the
//! conversions from and to `coupon_core`. Each type is named as its schema, which is the domain's
//! name; bodies that belong to one route live next to it in `routes/`.

mod book;
mod code;
mod discount;
mod draft;
mod event;
mod metadata;
pub mod text;
mod time;
pub mod webhook_url;

pub use book::{Book, BookStats, BookStatus, CodeMode, Policies};
pub use code::{ClaimedCode, CodeState, LockAnswer, Redemption, RedemptionStatus};
pub use discount::{Discount, DiscountType};
pub use draft::{BookPatch, NewBook};
pub use event::{ApiForm, Event};
pub use metadata::Metadata;
pub use time::Timestamp;
pub use webhook_url::WebhookUrls;
