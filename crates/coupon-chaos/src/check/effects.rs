//! Acknowledgements against effects: every acknowledged claim, redemption, rollback and generation
//! is in the database, and nothing is there that no operation explains.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::{describe, Ops, Verdict};
use crate::books::Book;
use crate::operation::Kind;
use crate::snapshot::Snapshot;

const CLAIMS: &[Kind] = &[Kind::Claim, Kind::ClaimCode];

/// Claims: the codes each user holds in each book are exactly those acknowledged to them, but
/// for what unknown claims may have added.
pub(super) fn claims(ops: &Ops, snap: &Snapshot, verdict: &mut Verdict) {
    // (book, code, user) -> acknowledging operations.
    let mut acked: BTreeMap<(String, String, String), Vec<String>> = BTreeMap::new();
    for (f, answer) in ops.acked(CLAIMS) {
        let (Some(book), Some(code)) = (f.op.book.clone(), answer.code.clone()) else {
            verdict.flag("claim answer", format!("{} names no code", describe(f)));
            continue;
        };
        acked
            .entry((book, code, f.op.user.clone()))
            .or_default()
            .push(describe(f));
    }
    let mut held: BTreeMap<(String, String, String), i64> = BTreeMap::new();
    for c in &snap.codes {
        if let Some(owner) = &c.owner {
            *held.entry((c.book.clone(), c.code.clone(), owner.clone())).or_insert(0) += 1;
        }
    }
    let unknown = ops.unknown_by(CLAIMS, |f| (f.op.book.clone().unwrap_or_default(), f.op.user.clone()));
    let mut extra: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for (k, by) in &acked {
        let found = held.get(k).copied().unwrap_or(0);
        let wanted = by.len() as i64;
        if found < wanted {
            verdict.flag(
                "lost claim",
                format!(
                    "{} holds {} of {} (book {}), acknowledged {wanted} times: {}",
                    k.2,
                    found,
                    k.1,
                    k.0,
                    by.join("; ")
                ),
            );
        }
    }
    for (k, n) in &held {
        let wanted = acked.get(k).map_or(0, |by| by.len() as i64);
        for _ in wanted..*n {
            extra.entry((k.0.clone(), k.2.clone())).or_default().push(k.1.clone());
        }
    }
    for ((book, user), codes) in extra {
        let excused = unknown.get(&(book.clone(), user.clone())).copied().unwrap_or(0);
        if codes.len() as i64 > excused {
            verdict.flag(
                "unacknowledged claim",
                format!(
                    "{user} holds {} code(s) of book {book} no acknowledged claim gave ({}), with {excused} unknown claim(s) to explain them",
                    codes.len(),
                    codes.join(", ")
                ),
            );
        }
    }
    // A code of a unique book acknowledged to two users.
    let shared: HashSet<&str> = snap.books.iter().filter(|b| b.shared).map(|b| b.id.as_str()).collect();
    let mut owners: HashMap<(&str, &str), HashSet<&str>> = HashMap::new();
    for (book, code, user) in acked.keys() {
        if !shared.contains(book.as_str()) {
            owners.entry((book, code)).or_default().insert(user);
        }
    }
    for ((book, code), users) in owners.into_iter().filter(|(_, u)| u.len() > 1) {
        let mut users: Vec<&str> = users.into_iter().collect();
        users.sort();
        verdict.flag(
            "code acknowledged twice",
            format!("{code} (book {book}) was acknowledged to {}", users.join(" and ")),
        );
    }
}

/// Redemptions: each acknowledged one is in the history as answered, and each row is acknowledged.
pub(super) fn redemptions(ops: &Ops, snap: &Snapshot, verdict: &mut Verdict) {
    let rows: HashMap<&str, _> = snap.redemptions.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut acked: HashMap<&str, Vec<u64>> = HashMap::new();
    for (f, answer) in ops.acked(&[Kind::Redeem]) {
        let Some(id) = answer.redemption_id.as_deref() else {
            verdict.flag("redeem answer", format!("{} names no redemption", describe(f)));
            continue;
        };
        acked.entry(id).or_default().push(f.op.id);
        match rows.get(id) {
            None => verdict.flag(
                "lost redemption",
                format!("{}: redemption {id} is not in the database", describe(f)),
            ),
            Some(r) => {
                if Some(&r.code) != f.op.code.as_ref() || r.user != f.op.user || r.order_id != f.op.order_id {
                    verdict.flag(
                        "redemption differs",
                        format!(
                            "{}: redemption {id} is {} by {} for order {:?}",
                            describe(f),
                            r.code,
                            r.user,
                            r.order_id
                        ),
                    );
                }
            }
        }
    }
    for (id, by) in acked.iter().filter(|(_, by)| by.len() > 1) {
        verdict.flag(
            "redemption acknowledged twice",
            format!("redemption {id} answered operations {by:?}, each with its own order"),
        );
    }
    let unknown = ops.unknown_by(&[Kind::Redeem], |f| {
        (f.op.user.clone(), f.op.code.clone().unwrap_or_default())
    });
    let mut extra: HashMap<(String, String), Vec<&str>> = HashMap::new();
    for r in snap.redemptions.iter().filter(|r| !acked.contains_key(r.id.as_str())) {
        extra.entry((r.user.clone(), r.code.clone())).or_default().push(&r.id);
    }
    for ((user, code), ids) in extra {
        let excused = unknown.get(&(user.clone(), code.clone())).copied().unwrap_or(0);
        if ids.len() as i64 > excused {
            verdict.flag(
                "unacknowledged redemption",
                format!("{user} redeemed {code} in {ids:?}, acknowledged by no answer ({excused} unknown redeems)"),
            );
        }
    }
}

/// Rollbacks: each acknowledged one has rolled its redemption back; each rolled-back redemption
/// was acknowledged so, or targeted by an unknown rollback.
pub(super) fn rollbacks(ops: &Ops, snap: &Snapshot, verdict: &mut Verdict) {
    let rows: HashMap<&str, _> = snap.redemptions.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut acked: HashSet<&str> = HashSet::new();
    for (f, answer) in ops.acked(&[Kind::Rollback]) {
        let id = f.op.redemption.as_deref().unwrap_or_default();
        acked.insert(id);
        if answer.redemption_status.as_deref() != Some("rolled_back") {
            verdict.flag(
                "rollback answer",
                format!("{} says {:?}", describe(f), answer.redemption_status),
            );
        }
        if !rows.get(id).is_some_and(|r| r.rolled_back) {
            verdict.flag(
                "lost rollback",
                format!("{}: redemption {id} is not rolled back", describe(f)),
            );
        }
    }
    let unknown = ops.unknown_by(&[Kind::Rollback], |f| f.op.redemption.clone().unwrap_or_default());
    for r in snap
        .redemptions
        .iter()
        .filter(|r| r.rolled_back && !acked.contains(r.id.as_str()))
    {
        if !unknown.contains_key(&r.id) {
            verdict.flag(
                "unacknowledged rollback",
                format!(
                    "redemption {} of {} by {} is rolled back, acknowledged by no answer",
                    r.id, r.code, r.user
                ),
            );
        }
    }
}

/// Supply: each book has its first codes plus what acknowledged generations added, and at most
/// what unknown ones could add besides.
pub(super) fn supply(ops: &Ops, snap: &Snapshot, books: &[Book], verdict: &mut Verdict) {
    for book in books {
        let count = snap.codes.iter().filter(|c| c.book == book.id).count() as i64;
        let ours = |f: &&crate::history::Finished| f.op.book.as_deref() == Some(book.id.as_str());
        let added: i64 = ops
            .acked(&[Kind::Generate])
            .filter(|(f, _)| ours(f))
            .map(|(_, a)| a.generated.unwrap_or(0))
            .sum();
        let maybe: i64 = ops
            .all
            .iter()
            .filter(|f| f.op.kind == Kind::Generate && f.unknown())
            .filter(ours)
            .map(|f| f.op.count.unwrap_or(0))
            .sum();
        let least = book.initial + added;
        if count < least {
            verdict.flag(
                "lost codes",
                format!(
                    "book {} ({}) has {count} codes, acknowledged {least}",
                    book.label, book.id
                ),
            );
        }
        if count > least + maybe {
            verdict.flag(
                "unacknowledged codes",
                format!(
                    "book {} ({}) has {count} codes, acknowledged {least} and {maybe} unknown",
                    book.label, book.id
                ),
            );
        }
    }
}
