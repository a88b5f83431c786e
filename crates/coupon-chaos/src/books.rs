//! The books a run sells: each with a policy that a fault could break (supply, codes per user,
//! redemptions per code), created before the first fault.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{bail, Context};
use rand::rngs::StdRng;
use serde::Serialize;
use serde_json::{json, Value};

use crate::attempt::{Policy, Sender, Tokens};
use crate::history::Outcome;
use crate::http::Client;
use crate::operation::{Actor, Answer, Kind, Op, Request};

/// The open book's codes, drawn at setup and by `generate` operations during the run.
pub const OPEN_PATTERN: &str = "OPEN-**********";
/// Codes the open book starts with; `generate` adds to them up to its supply.
const OPEN_START: i64 = 1000;

/// A book as the workload and the checker know it.
#[derive(Debug, Clone, Serialize)]
pub struct Book {
    pub label: &'static str,
    pub id: String,
    /// A shared book's one code.
    pub shared_code: Option<String>,
    /// Grows by `generate` during the run.
    pub grows: bool,
    /// Codes it had when the run began.
    pub initial: i64,
}

struct Spec {
    label: &'static str,
    body: Value,
}

impl Spec {
    /// Codes at creation: all of its supply, but for the open book, which starts small.
    fn initial(&self) -> i64 {
        if self.label == "open" {
            OPEN_START
        } else {
            self.body["total_codes"].as_i64().unwrap_or(0)
        }
    }
}

fn specs() -> Vec<Spec> {
    // A lock outlives any run, so the stats' `total_locked` never changes while they are compared.
    let base = |name: &str| {
        json!({
            "name": name,
            "description": "coupond chaos",
            "discount": {"type": "percentage", "value": 15, "max_discount": 3000},
            "lock_ttl_seconds": 86_400,
        })
    };
    let with = |mut body: Value, extra: Value| {
        for (k, v) in extra.as_object().expect("an object") {
            body[k] = v.clone();
        }
        body
    };
    vec![
        Spec {
            label: "open",
            // No limit per user; supply grows from OPEN_START towards its cap during the run.
            body: with(
                base("Open"),
                json!({"total_codes": 50_000, "max_codes_per_user": null, "max_redemptions_per_code": 1}),
            ),
        },
        Spec {
            label: "limited",
            body: with(
                base("Limited"),
                json!({"code_pattern": "LIM-*********", "total_codes": 600, "max_codes_per_user": 2,
                       "max_redemptions_per_code": 3,
                       "discount": {"type": "fixed_amount", "value": 500, "min_order_amount": 1000}}),
            ),
        },
        Spec {
            label: "scarce",
            // Sold out early: from then on its claims are answered from the engine's memory.
            body: with(
                base("Scarce"),
                json!({"code_pattern": "SCARCE-*********", "total_codes": 200, "max_codes_per_user": 1,
                       "max_redemptions_per_code": 1}),
            ),
        },
        Spec {
            label: "shared",
            body: with(
                base("Shared"),
                json!({"code_mode": "shared", "code": "CHAOSSHARED", "total_codes": 2000,
                       "max_codes_per_user": 1, "max_redemptions_per_code": 2}),
            ),
        },
    ]
}

/// Creates the books through instance 0 (retried with their keys, like any write), and the open
/// book's first codes.
pub async fn create(client: &mut Client, tokens: &Tokens, rng: &mut StdRng) -> anyhow::Result<Vec<Book>> {
    let stop = AtomicBool::new(false);
    let sender = Sender {
        tokens,
        policy: Policy {
            attempts: 20,
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
        },
        stop: &stop,
    };
    let mut books = Vec::new();
    for (i, spec) in specs().into_iter().enumerate() {
        let op = Op {
            key: Some(format!("setup-book-{i}")),
            ..Op::new(0, Kind::Generate, Actor::Admin, "")
        };
        let request = Request {
            post: true,
            target: "/coupons".into(),
            body: serde_json::to_vec(&spec.body)?,
        };
        let answer = answered(sender.perform(client, &op, &request, 0, rng).await.outcome, spec.label)?;
        books.push(Book {
            label: spec.label,
            id: answer.book_id.context("the created book has an id")?,
            shared_code: spec.body.get("code").and_then(Value::as_str).map(str::to_owned),
            grows: spec.label == "open",
            initial: spec.initial(),
        });
    }
    let open = &books[0];
    let op = Op {
        key: Some("setup-open-codes".into()),
        book: Some(open.id.clone()),
        count: Some(OPEN_START),
        ..Op::new(0, Kind::Generate, Actor::Admin, "")
    };
    answered(
        sender.perform(client, &op, &op.request(), 0, rng).await.outcome,
        "open codes",
    )?;
    Ok(books)
}

fn answered(outcome: Outcome, what: &str) -> anyhow::Result<Answer> {
    match outcome {
        Outcome::Ok(answer) => Ok(answer),
        Outcome::Fail(answer) => bail!("creating the {what} book answered {}", answer.label()),
        Outcome::Unknown => bail!("creating the {what} book got no answer"),
    }
}
