//! The JSON forms of domain values that several routes share: the API's contract (`coupon_wire`),
//! and which webhook URLs this server registers. Bodies that belong to one route live next to it
//! in `routes/`.

pub mod webhook_url;

pub use coupon_wire::*;
pub use webhook_url::WebhookUrls;
