//! The operations clients perform: what each one asks the API, and what its answer says.
//!
//! An operation is built once and sent as the same bytes on every attempt, so a retry with its
//! `Idempotency-Key` is the request the server recorded, never "the same key with another request".

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// The subject of the service token: checkouts acting for users. Its keys are scoped to it.
pub const SERVICE: &str = "chaos-checkout";
/// The subject of the admin token.
pub const ADMIN: &str = "chaos-admin";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `POST /coupons/assign`: any code of a book.
    Claim,
    /// `POST /coupons/assign/{code}`: that code.
    ClaimCode,
    Lock,
    Unlock,
    Redeem,
    Rollback,
    /// `POST /coupons/{id}/codes/generate`: more supply for the open book.
    Generate,
    Validate,
    /// `GET /users/{id}/coupons`.
    List,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Claim,
        Kind::ClaimCode,
        Kind::Lock,
        Kind::Unlock,
        Kind::Redeem,
        Kind::Rollback,
        Kind::Generate,
        Kind::Validate,
        Kind::List,
    ];

    /// Writes carry an idempotency key and are retried until answered; reads are sent once.
    pub fn writes(self) -> bool {
        !matches!(self, Kind::Validate | Kind::List)
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Claim => "claim",
            Kind::ClaimCode => "claim_code",
            Kind::Lock => "lock",
            Kind::Unlock => "unlock",
            Kind::Redeem => "redeem",
            Kind::Rollback => "rollback",
            Kind::Generate => "generate",
            Kind::Validate => "validate",
            Kind::List => "list",
        }
    }
}

/// Whose token a request is sent with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    /// The user itself.
    User,
    /// A checkout acting for the user (`user_id` in the request).
    Service,
    Admin,
}

/// One logical operation, as the history records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    pub id: u64,
    pub kind: Kind,
    pub actor: Actor,
    /// The user it acts for (for a rollback, the redemption's user).
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub book: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redemption: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<i64>,
}

/// What goes over the wire for an operation.
#[derive(Debug, Clone)]
pub struct Request {
    pub post: bool,
    /// Path and query.
    pub target: String,
    pub body: Vec<u8>,
}

impl Op {
    /// An operation with nothing named yet.
    pub fn new(id: u64, kind: Kind, actor: Actor, user: &str) -> Op {
        Op {
            id,
            kind,
            actor,
            user: user.to_owned(),
            key: None,
            book: None,
            code: None,
            redemption: None,
            lock_id: None,
            order_id: None,
            amount: None,
            count: None,
        }
    }

    /// The token subject the key belongs to: the server scopes keys to it.
    pub fn scope(&self) -> &str {
        match self.actor {
            Actor::User => &self.user,
            Actor::Service => SERVICE,
            Actor::Admin => ADMIN,
        }
    }

    fn field(&self, name: &str) -> &str {
        let value = match name {
            "book" => &self.book,
            "code" => &self.code,
            "redemption" => &self.redemption,
            _ => &None,
        };
        value
            .as_deref()
            .unwrap_or_else(|| panic!("a {:?} needs a {name}", self.kind))
    }

    pub fn request(&self) -> Request {
        let mut body = Map::new();
        // A user acts for itself; a service or admin names the user.
        if self.actor != Actor::User {
            body.insert("user_id".into(), json!(self.user));
        }
        let post = |target: String, body: Value| Request {
            post: true,
            target,
            body: serde_json::to_vec(&body).expect("JSON"),
        };
        match self.kind {
            Kind::Claim => {
                body.insert("coupon_book_id".into(), json!(self.field("book")));
                post("/coupons/assign".into(), Value::Object(body))
            }
            Kind::ClaimCode => post(format!("/coupons/assign/{}", self.field("code")), Value::Object(body)),
            Kind::Lock => post(format!("/coupons/lock/{}", self.field("code")), Value::Object(body)),
            Kind::Unlock => {
                if let Some(lock) = &self.lock_id {
                    body.insert("lock_id".into(), json!(lock));
                }
                post(format!("/coupons/unlock/{}", self.field("code")), Value::Object(body))
            }
            Kind::Redeem => {
                body.insert("order_id".into(), json!(self.order_id));
                body.insert("order_amount".into(), json!(self.amount));
                if let Some(lock) = &self.lock_id {
                    body.insert("lock_id".into(), json!(lock));
                }
                post(format!("/coupons/redeem/{}", self.field("code")), Value::Object(body))
            }
            Kind::Rollback => post(
                format!("/coupons/redemptions/{}/rollback", self.field("redemption")),
                json!({"reason": "payment declined"}),
            ),
            Kind::Generate => post(
                format!("/coupons/{}/codes/generate", self.field("book")),
                json!({"count": self.count, "pattern": crate::books::OPEN_PATTERN}),
            ),
            Kind::Validate => {
                let mut target = format!(
                    "/coupons/validate/{}?order_amount={}",
                    self.field("code"),
                    self.amount.unwrap_or(0)
                );
                if self.actor != Actor::User {
                    target.push_str(&format!("&user_id={}", self.user));
                }
                Request {
                    post: false,
                    target,
                    body: Vec::new(),
                }
            }
            Kind::List => Request {
                post: false,
                target: match self.actor {
                    Actor::User => "/users/me/coupons".into(),
                    _ => format!("/users/{}/coupons", self.user),
                },
                body: Vec::new(),
            },
        }
    }
}

/// An answer as the history keeps it: its status, what it names, and a digest of its JSON body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub status: u16,
    /// The problem's `code`, for a refusal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The code claimed, locked, unlocked or redeemed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub book_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redemption_id: Option<String>,
    /// A redemption's `status`: `redeemed` or `rolled_back`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redemption_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generated: Option<i64>,
    /// FNV-1a of the body's JSON in canonical form: equal bodies, equal digests.
    pub digest: String,
    /// Sent with `Idempotent-Replayed: true`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replayed: bool,
    pub instance: usize,
    /// Milliseconds since the Unix epoch.
    pub at: i64,
}

impl Answer {
    pub fn read(status: u16, body: &[u8], replayed: bool, instance: usize, at: i64) -> Answer {
        let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let text = |name: &str| json.get(name).and_then(Value::as_str).map(str::to_owned);
        Answer {
            status,
            error: if status >= 400 { text("code") } else { None },
            code: text("assigned_code").or_else(|| text("code")).filter(|_| status < 400),
            lock_id: text("lock_id"),
            book_id: text("coupon_book_id"),
            redemption_id: text("redemption_id"),
            redemption_status: text("redemption_id").and(text("status")),
            generated: json.get("generated_codes_count").and_then(Value::as_i64),
            digest: digest_of(&json, body),
            replayed,
            instance,
            at,
        }
    }

    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The same answer: status and body.
    pub fn agrees(&self, other: &Answer) -> bool {
        self.status == other.status && self.digest == other.digest
    }

    /// How it reads in a report: `201`, `409 out_of_stock`.
    pub fn label(&self) -> String {
        match &self.error {
            Some(code) => format!("{} {code}", self.status),
            None => self.status.to_string(),
        }
    }
}

/// Whether an answer ends an operation or calls for another attempt with its key.
pub fn definite(status: u16, error: Option<&str>) -> bool {
    match status {
        200..=299 => true,
        // The body did not arrive in time, or a throttle: nothing happened, try again.
        408 | 429 => false,
        // The first attempt is still running on that instance.
        409 if error == Some("idempotency_in_flight") => false,
        400..=499 => true,
        _ => false,
    }
}

/// The digest of a JSON body (or of its bytes, when it is not JSON).
pub fn digest_of(json: &Value, raw: &[u8]) -> String {
    let canonical = if json.is_null() {
        raw.to_vec()
    } else {
        // serde_json's maps are ordered by key: this is one text per value.
        json.to_string().into_bytes()
    };
    format!("{:016x}", fnv1a(&canonical))
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_name_what_they_did() {
        let claim = Answer::read(
            201,
            br#"{"assigned_code":"OPEN-1","user_id":"u1","coupon":{"code":"x"}}"#,
            false,
            0,
            1,
        );
        assert_eq!(claim.code.as_deref(), Some("OPEN-1"));
        let refusal = Answer::read(409, br#"{"code":"out_of_stock","status":409}"#, true, 1, 2);
        assert_eq!(refusal.label(), "409 out_of_stock");
        assert_eq!(refusal.code, None);
        let redeemed = Answer::read(
            200,
            br#"{"status":"redeemed","redemption_id":"r1","code":"C"}"#,
            false,
            0,
            3,
        );
        assert_eq!(redeemed.redemption_status.as_deref(), Some("redeemed"));
        assert_eq!(redeemed.code.as_deref(), Some("C"));
    }

    #[test]
    fn digests_ignore_key_order_but_not_values() {
        let a = Answer::read(200, br#"{"a":1,"b":2}"#, false, 0, 0);
        let b = Answer::read(200, br#"{"b":2,"a":1}"#, true, 1, 5);
        let c = Answer::read(200, br#"{"a":1,"b":3}"#, false, 0, 0);
        assert!(a.agrees(&b));
        assert!(!a.agrees(&c));
    }

    #[test]
    fn retries_only_what_may_not_have_happened() {
        assert!(definite(201, None));
        assert!(definite(409, Some("out_of_stock")));
        assert!(!definite(409, Some("idempotency_in_flight")));
        assert!(!definite(503, Some("unavailable")));
        assert!(!definite(500, None));
        assert!(!definite(429, Some("rate_limited")));
    }

    #[test]
    fn service_requests_name_the_user_and_keys_are_the_callers() {
        let op = Op {
            code: Some("C-1".into()),
            order_id: Some("o1".into()),
            amount: Some(1200),
            ..Op::new(1, Kind::Redeem, Actor::Service, "u7")
        };
        let request = op.request();
        assert_eq!(request.target, "/coupons/redeem/C-1");
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(body["user_id"], "u7");
        assert_eq!(op.scope(), SERVICE);
    }
}
