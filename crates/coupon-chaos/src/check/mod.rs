//! The checker: the history's final outcomes against the database read after the run. It trusts
//! neither the workload's model nor the server's code: an acknowledgement is what a client was
//! answered, and an effect is a row.
//!
//! Every keyed operation ends known (acknowledged or refused) unless even the retry after the run
//! got no answer; such an operation may or may not have acted, so an effect no acknowledgement
//! explains is excused only by an unknown operation that could have made it.

mod effects;
mod events;
mod keys;
mod rules;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use serde::Serialize;

use crate::books::Book;
use crate::history::{Finished, Outcome};
use crate::operation::{Answer, Kind};
use crate::snapshot::Snapshot;

#[derive(Debug, Clone, Serialize)]
pub struct Violation {
    pub check: &'static str,
    pub detail: String,
}

/// The checks' findings.
#[derive(Debug, Default)]
pub struct Verdict {
    pub violations: Vec<Violation>,
}

impl Verdict {
    fn flag(&mut self, check: &'static str, detail: String) {
        self.violations.push(Violation { check, detail });
    }

    /// How many violations of each check.
    pub fn by_check(&self) -> Vec<(&'static str, usize)> {
        let mut counts: Vec<(&'static str, usize)> = Vec::new();
        for v in &self.violations {
            match counts.iter_mut().find(|(c, _)| *c == v.check) {
                Some((_, n)) => *n += 1,
                None => counts.push((v.check, 1)),
            }
        }
        counts
    }
}

/// The run's operations, indexed the ways the checks look them up.
struct Ops<'a> {
    all: &'a [Finished],
}

impl<'a> Ops<'a> {
    /// Acknowledged operations of a kind, with their answers.
    fn acked(&self, kinds: &'a [Kind]) -> impl Iterator<Item = (&'a Finished, &'a Answer)> + 'a {
        self.all
            .iter()
            .filter(move |f| kinds.contains(&f.op.kind))
            .filter_map(|f| f.ok().map(|a| (f, a)))
    }

    /// Operations of a kind whose outcome is still unknown, counted by what `group` says of them.
    fn unknown_by<K: std::hash::Hash + Eq>(&self, kinds: &[Kind], group: impl Fn(&Finished) -> K) -> HashMap<K, i64> {
        let mut counts = HashMap::new();
        for f in self.all.iter().filter(|f| kinds.contains(&f.op.kind) && f.unknown()) {
            *counts.entry(group(f)).or_insert(0) += 1;
        }
        counts
    }
}

/// Judges the run.
pub fn check(ops: &[Finished], snap: &Snapshot, books: &[Book]) -> Verdict {
    let mut verdict = Verdict::default();
    let ops = Ops { all: ops };
    effects::claims(&ops, snap, &mut verdict);
    effects::redemptions(&ops, snap, &mut verdict);
    effects::rollbacks(&ops, snap, &mut verdict);
    effects::supply(&ops, snap, books, &mut verdict);
    events::check(&ops, snap, &mut verdict);
    keys::check(&ops, snap, &mut verdict);
    rules::check(snap, &mut verdict);
    verdict
}

/// How an operation reads in a violation's detail.
fn describe(f: &Finished) -> String {
    let op = &f.op;
    let mut s = format!("#{} {} by {}", op.id, op.kind.name(), op.user);
    if let Some(code) = &op.code {
        s.push_str(&format!(" on {code}"));
    }
    if let Some(key) = &op.key {
        s.push_str(&format!(" (key {key})"));
    }
    match &f.outcome {
        Outcome::Ok(a) | Outcome::Fail(a) => s.push_str(&format!(" answered {}", a.label())),
        Outcome::Unknown => s.push_str(" unknown"),
    }
    s
}
