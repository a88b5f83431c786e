//! Idempotency keys: one answer per key. Once a key is acknowledged, every answer it gets (a twin's,
//! a replay) is that acknowledgement; before it, only a refusal that was never recorded may come;
//! at most one answer acted first-hand; and the key's record in the database says what the client
//! was told.

use serde_json::Value;

use super::{describe, Ops, Verdict};
use crate::history::{Finished, Outcome};
use crate::operation::{digest_of, Answer, Kind};
use crate::snapshot::Snapshot;

pub(super) fn check(ops: &Ops, snap: &Snapshot, verdict: &mut Verdict) {
    for f in ops.all.iter().filter(|f| f.op.key.is_some()) {
        answered_once(f, verdict);
        recorded(f, snap, verdict);
    }
}

fn answered_once(f: &Finished, verdict: &mut Verdict) {
    for a in &f.answers {
        if a.error.as_deref() == Some("idempotency_key_reused") {
            verdict.flag(
                "key reused",
                format!("{}: the same request was refused as another", describe(f)),
            );
        }
    }
    let mut answers: Vec<&Answer> = f.answers.iter().collect();
    answers.sort_by_key(|a| a.at);
    let Some(at) = answers.iter().position(|a| a.ok()) else {
        return;
    };
    let first = answers[at];
    let both = |other: &Answer, verdict: &mut Verdict| {
        verdict.flag(
            "answered both ways",
            format!(
                "{}: {} (instance {}) and {} (instance {})",
                describe(f),
                summary(first),
                first.instance,
                summary(other),
                other.instance
            ),
        )
    };
    // Before the acknowledgement, only a refusal that was never recorded: a claim on a book the
    // engine knew sold out, answered from memory, after which a retry runs afresh.
    for earlier in &answers[..at] {
        let from_memory = f.op.kind == Kind::Claim && earlier.error.as_deref() == Some("out_of_stock");
        if !from_memory {
            both(earlier, verdict);
        }
    }
    // After it, only the acknowledgement again.
    for later in answers[at + 1..].iter().filter(|a| !a.agrees(first)) {
        both(later, verdict);
    }
    let fresh = f.answers.iter().filter(|a| a.ok() && !a.replayed).count();
    if fresh > 1 {
        verdict.flag(
            "acted twice",
            format!(
                "{}: {fresh} answers acted first-hand (no Idempotent-Replayed)",
                describe(f)
            ),
        );
    }
}

/// The key's record against the client's answer: an acknowledgement has a record with its very
/// body; a refusal either has none (answered before the database was asked) or one saying it.
fn recorded(f: &Finished, snap: &Snapshot, verdict: &mut Verdict) {
    let key = (f.op.scope().to_owned(), f.op.key.clone().unwrap_or_default());
    let record = snap.keys.get(&key);
    match (&f.outcome, record) {
        (Outcome::Ok(_), None) => verdict.flag(
            "key record",
            format!("{}: acknowledged, but its key has no record", describe(f)),
        ),
        (Outcome::Ok(a), Some(r)) => {
            let body: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
            if r.status != i64::from(a.status) || digest_of(&body, r.body.as_bytes()) != a.digest {
                verdict.flag(
                    "key record",
                    format!("{}: its record holds {} {}", describe(f), r.status, excerpt(&r.body)),
                );
            }
        }
        (Outcome::Fail(a), Some(r)) => {
            let body: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
            let code = body.get("code").and_then(Value::as_str);
            if r.status != i64::from(a.status) || code != a.error.as_deref() {
                verdict.flag(
                    "key record",
                    format!(
                        "{}: refused, but its record holds {} {}",
                        describe(f),
                        r.status,
                        excerpt(&r.body)
                    ),
                );
            }
        }
        (Outcome::Fail(_), None) | (Outcome::Unknown, _) => {}
    }
}

fn summary(a: &Answer) -> String {
    let named = a
        .code
        .as_deref()
        .or(a.redemption_id.as_deref())
        .or(a.lock_id.as_deref())
        .map(|n| format!(" {n}"))
        .unwrap_or_default();
    format!("{}{named}", a.label())
}

fn excerpt(body: &str) -> String {
    body.chars().take(160).collect()
}
