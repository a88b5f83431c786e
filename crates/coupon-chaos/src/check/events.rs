//! The outbox: one event per change that committed. Claims, redemptions and rollbacks are compared
//! with their rows; locks and unlocks, which leave no row behind, with their acknowledgements.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::{describe, Ops, Verdict};
use crate::operation::Kind;
use crate::snapshot::{EventRow, Snapshot};

pub(super) fn check(ops: &Ops, snap: &Snapshot, verdict: &mut Verdict) {
    claimed(snap, verdict);
    redeemed(snap, verdict);
    locked(ops, snap, verdict);
    unlocked(ops, snap, verdict);
}

fn of_type<'a>(snap: &'a Snapshot, kind: &'a str) -> impl Iterator<Item = &'a EventRow> + 'a {
    snap.events.iter().filter(move |e| e.kind == kind)
}

fn data_text<'a>(e: &'a EventRow, field: &str) -> Option<&'a str> {
    e.data.get(field).and_then(Value::as_str)
}

/// One `code.claimed` per code a user holds (no claim lapses in a run, and none is undone).
fn claimed(snap: &Snapshot, verdict: &mut Verdict) {
    let mut counts: BTreeMap<(String, String, String), (i64, i64)> = BTreeMap::new();
    for c in &snap.codes {
        if let Some(owner) = &c.owner {
            counts
                .entry((c.book.clone(), c.code.clone(), owner.clone()))
                .or_default()
                .0 += 1;
        }
    }
    for e in of_type(snap, "code.claimed") {
        let key = (
            e.book.clone().unwrap_or_default(),
            e.code.clone().unwrap_or_default(),
            e.user.clone().unwrap_or_default(),
        );
        counts.entry(key).or_default().1 += 1;
    }
    for ((book, code, user), (rows, events)) in counts {
        if rows != events {
            verdict.flag(
                "claim events",
                format!("{user} holds {rows} of {code} (book {book}) with {events} code.claimed event(s)"),
            );
        }
    }
}

/// One `code.redeemed` per redemption, one `redemption.rolled_back` per rolled-back one.
fn redeemed(snap: &Snapshot, verdict: &mut Verdict) {
    for (kind, wanted) in [("code.redeemed", false), ("redemption.rolled_back", true)] {
        let mut seen: HashMap<&str, i64> = HashMap::new();
        for e in of_type(snap, kind) {
            *seen
                .entry(data_text(e, "redemption_id").unwrap_or_default())
                .or_insert(0) += 1;
        }
        for r in &snap.redemptions {
            let expected = i64::from(!wanted || r.rolled_back);
            let found = seen.remove(r.id.as_str()).unwrap_or(0);
            if found != expected {
                verdict.flag(
                    "redemption events",
                    format!(
                        "redemption {} ({} by {}) has {found} {kind} event(s), expected {expected}",
                        r.id, r.code, r.user
                    ),
                );
            }
        }
        for (id, n) in seen {
            verdict.flag(
                "redemption events",
                format!("{n} {kind} event(s) for {id}, which is not in the database"),
            );
        }
    }
}

/// One `code.locked` per acknowledged lock (by its lock id); others only from unknown locks.
fn locked(ops: &Ops, snap: &Snapshot, verdict: &mut Verdict) {
    let mut seen: HashMap<&str, Vec<&EventRow>> = HashMap::new();
    for e in of_type(snap, "code.locked") {
        seen.entry(data_text(e, "lock_id").unwrap_or_default())
            .or_default()
            .push(e);
    }
    for (f, answer) in ops.acked(&[Kind::Lock]) {
        let id = answer.lock_id.as_deref().unwrap_or_default();
        let found = seen.remove(id).map_or(0, |events| events.len());
        if found != 1 {
            verdict.flag(
                "lock events",
                format!("{}: lock {id} has {found} code.locked event(s)", describe(f)),
            );
        }
    }
    let unknown = ops.unknown_by(&[Kind::Lock], |f| {
        (f.op.code.clone().unwrap_or_default(), f.op.user.clone())
    });
    let mut extra: HashMap<(String, String), i64> = HashMap::new();
    for e in seen.values().flatten() {
        *extra
            .entry((e.code.clone().unwrap_or_default(), e.user.clone().unwrap_or_default()))
            .or_insert(0) += 1;
    }
    for ((code, user), n) in extra {
        let excused = unknown.get(&(code.clone(), user.clone())).copied().unwrap_or(0);
        if n > excused {
            verdict.flag(
                "unacknowledged lock",
                format!("{n} code.locked event(s) for {code} by {user} that no answer acknowledged ({excused} unknown locks)"),
            );
        }
    }
}

/// As many `code.unlocked` per code and user as acknowledged unlocks, and at most as many more as
/// unknown ones.
fn unlocked(ops: &Ops, snap: &Snapshot, verdict: &mut Verdict) {
    let mut counts: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
    for (f, _) in ops.acked(&[Kind::Unlock]) {
        counts
            .entry((f.op.code.clone().unwrap_or_default(), f.op.user.clone()))
            .or_default()
            .0 += 1;
    }
    for e in of_type(snap, "code.unlocked") {
        counts
            .entry((e.code.clone().unwrap_or_default(), e.user.clone().unwrap_or_default()))
            .or_default()
            .1 += 1;
    }
    let unknown = ops.unknown_by(&[Kind::Unlock], |f| {
        (f.op.code.clone().unwrap_or_default(), f.op.user.clone())
    });
    for ((code, user), (acked, events)) in counts {
        let excused = unknown.get(&(code.clone(), user.clone())).copied().unwrap_or(0);
        if events < acked || events > acked + excused {
            verdict.flag(
                "unlock events",
                format!("{code} by {user}: {acked} unlock(s) acknowledged, {excused} unknown, {events} code.unlocked event(s)"),
            );
        }
    }
}
