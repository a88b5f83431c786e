//! The rules money depends on, from the rows alone: no book over supply, no code with two owners,
//! no limit exceeded; the counters the rules are checked against agree with the rows they count;
//! and each book's stats, as the API answered them, are a recount of its rows.

use std::collections::{BTreeMap, HashMap};

use super::Verdict;
use crate::snapshot::{BookRow, CodeRow, Snapshot, Stats};

pub(super) fn check(snap: &Snapshot, verdict: &mut Verdict) {
    let live: HashMap<i64, i64> =
        snap.redemptions
            .iter()
            .filter(|r| !r.rolled_back)
            .fold(HashMap::new(), |mut m, r| {
                *m.entry(r.code_id).or_insert(0) += 1;
                m
            });
    for book in &snap.books {
        let codes: Vec<&CodeRow> = snap.codes.iter().filter(|c| c.book == book.id).collect();
        supply(book, &codes, verdict);
        owners(book, &codes, verdict);
        per_code(book, &codes, &live, verdict);
        if let Some(stats) = snap.stats.get(&book.id) {
            let recount = recount(book, &codes, snap);
            if *stats != recount {
                verdict.flag(
                    "stats",
                    format!("book {}: the API says {stats:?}, the rows {recount:?}", book.id),
                );
            }
        }
    }
    counters(snap, verdict);
}

fn supply(book: &BookRow, codes: &[&CodeRow], verdict: &mut Verdict) {
    let count = codes.len() as i64;
    if book.total_codes.is_some_and(|total| count > total) {
        verdict.flag(
            "oversold",
            format!("book {} has {count} codes, supply {:?}", book.id, book.total_codes),
        );
    }
    let free = codes.iter().filter(|c| c.status == "available").count() as i64;
    if book.generated != count || book.pool != free {
        verdict.flag(
            "book counters",
            format!(
                "book {}: generated {} for {count} codes, pool {} for {free} available",
                book.id, book.generated, book.pool
            ),
        );
    }
    for c in codes {
        if (c.status == "available") != c.owner.is_none() {
            verdict.flag(
                "code state",
                format!("{} is {} with owner {:?}", c.code, c.status, c.owner),
            );
        }
    }
}

/// No code (a shared book: no instance) with two owners, and no user over `max_codes_per_user`.
fn owners(book: &BookRow, codes: &[&CodeRow], verdict: &mut Verdict) {
    let mut by_code: BTreeMap<(&str, i64), Vec<&str>> = BTreeMap::new();
    let mut by_user: BTreeMap<&str, i64> = BTreeMap::new();
    for c in codes {
        if let Some(owner) = &c.owner {
            let instance = if book.shared { c.instance } else { 0 };
            by_code.entry((&c.code, instance)).or_default().push(owner);
            *by_user.entry(owner).or_insert(0) += 1;
        }
    }
    for ((code, instance), users) in by_code.into_iter().filter(|(_, u)| u.len() > 1) {
        verdict.flag(
            "two owners",
            format!("{code} (instance {instance}) of book {} is held by {users:?}", book.id),
        );
    }
    if let Some(limit) = book.max_codes_per_user {
        for (user, n) in by_user.into_iter().filter(|(_, n)| *n > limit) {
            verdict.flag(
                "codes per user",
                format!("{user} holds {n} codes of book {}, limit {limit}", book.id),
            );
        }
    }
}

/// Uses per code within `max_redemptions_per_code`, and the code's counter equal to its live
/// redemptions.
fn per_code(book: &BookRow, codes: &[&CodeRow], live: &HashMap<i64, i64>, verdict: &mut Verdict) {
    for c in codes {
        let rows = live.get(&c.id).copied().unwrap_or(0);
        if rows > book.max_redemptions_per_code || c.redemptions > book.max_redemptions_per_code {
            verdict.flag(
                "redemptions per code",
                format!(
                    "{} has {rows} live redemptions (counter {}), limit {}",
                    c.code, c.redemptions, book.max_redemptions_per_code
                ),
            );
        }
        if rows != c.redemptions {
            verdict.flag(
                "code counters",
                format!("{} counts {} redemptions, {rows} live rows", c.code, c.redemptions),
            );
        }
    }
}

/// `user_books`: codes held and live redemptions per user and book, as counted from the rows.
fn counters(snap: &Snapshot, verdict: &mut Verdict) {
    let mut rows: BTreeMap<(&str, &str), (i64, i64)> = BTreeMap::new();
    for c in &snap.codes {
        if let Some(owner) = &c.owner {
            rows.entry((&c.book, owner)).or_default().0 += 1;
        }
    }
    for r in snap.redemptions.iter().filter(|r| !r.rolled_back) {
        rows.entry((&r.book, &r.user)).or_default().1 += 1;
    }
    let mut counted: BTreeMap<(&str, &str), (i64, i64)> = BTreeMap::new();
    for c in &snap.counters {
        counted.insert((&c.book, &c.user), (c.held, c.redeemed));
    }
    for key in rows
        .keys()
        .chain(counted.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let found = rows.get(key).copied().unwrap_or_default();
        let says = counted.get(key).copied().unwrap_or_default();
        if found != says {
            verdict.flag(
                "user counters",
                format!(
                    "{} in book {}: counters say held {} redeemed {}, the rows {} and {}",
                    key.1, key.0, says.0, says.1, found.0, found.1
                ),
            );
        }
    }
}

/// The stats as counted from the rows at the snapshot's instant.
fn recount(book: &BookRow, codes: &[&CodeRow], snap: &Snapshot) -> Stats {
    let count = |f: &dyn Fn(&CodeRow) -> bool| codes.iter().filter(|c| f(c)).count() as i64;
    let live = snap.redemptions.iter().filter(|r| r.book == book.id && !r.rolled_back);
    let assigned = count(&|c| c.owner.is_some());
    let generated = codes.len() as i64;
    Stats {
        total_generated: generated,
        total_assigned: assigned,
        total_locked: count(&|c| c.status == "active" && c.locked_until.is_some_and(|t| t > snap.now)),
        total_redeemed: count(&|c| c.status == "redeemed"),
        total_redemptions: live.clone().count() as i64,
        total_discount_applied: live.filter_map(|r| r.discount).sum(),
        available: generated - assigned,
    }
}
