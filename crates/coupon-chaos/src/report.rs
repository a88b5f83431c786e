//! The run's summary: operations by kind and outcome, refusals, faults by kind, how the unknowns
//! ended, 500s, the failover's window, and every violation; as text and as `summary.json`.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::attempt::ServerError;
use crate::check::Violation;
use crate::history::{Finished, Outcome};
use crate::nemesis::{Failover, Faults};
use crate::operation::Kind;
use crate::settle::Resolution;

#[derive(Debug, Serialize)]
pub struct Summary {
    pub seed: u64,
    pub backend: &'static str,
    pub instances: usize,
    pub clients: usize,
    pub seconds: f64,
    pub out: String,
    /// kind -> outcome (`ok`, `fail`, `unknown`) -> operations, after the unknowns were retried.
    pub operations: ByKind,
    /// Definite refusals by status and code.
    pub refusals: BTreeMap<String, u64>,
    /// Answers that came back replayed (`Idempotent-Replayed: true`) during the run.
    pub replayed_answers: u64,
    pub faults: Faults,
    pub unknowns: Resolution,
    pub server_errors: usize,
    pub server_error_samples: Vec<String>,
    pub failover: Option<Window>,
    pub server_starts: Vec<u32>,
    pub violations_by_check: Vec<(&'static str, usize)>,
    pub violations: Vec<Violation>,
    pub passed: bool,
}

/// How long writes stopped around the failover.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Window {
    /// From the last write acknowledged before the primary stopped to the first one sent after it
    /// and acknowledged.
    pub unavailable_ms: i64,
    /// From stopping the primary to the standby's promotion returning.
    pub promotion_ms: i64,
    pub last_write_before: i64,
    pub first_write_after: i64,
}

/// Operations by kind, then by outcome.
pub type ByKind = BTreeMap<&'static str, BTreeMap<&'static str, u64>>;

/// Operations by kind and outcome, refusals by code, and replayed answers.
pub fn tally(ops: &[Finished]) -> (ByKind, BTreeMap<String, u64>, u64) {
    let mut by_kind = ByKind::new();
    let mut refusals = BTreeMap::new();
    let mut replayed = 0;
    for f in ops {
        let outcome = match &f.outcome {
            Outcome::Ok(a) => {
                replayed += u64::from(a.replayed);
                "ok"
            }
            Outcome::Fail(a) => {
                *refusals.entry(a.label()).or_insert(0) += 1;
                "fail"
            }
            Outcome::Unknown => "unknown",
        };
        *by_kind.entry(f.op.kind.name()).or_default().entry(outcome).or_insert(0) += 1;
    }
    (by_kind, refusals, replayed)
}

/// The failover's window, from the acknowledged writes around it.
pub fn window(ops: &[Finished], failover: Failover) -> Option<Window> {
    let writes = ops.iter().filter(|f| f.op.kind.writes() && !f.was_unknown);
    let acked: Vec<(i64, i64)> = writes
        .filter_map(|f| Some((f.answered_attempt_at?, f.ok()?.at)))
        .collect();
    let last_before = acked
        .iter()
        .map(|(_, at)| *at)
        .filter(|at| *at <= failover.stopped_at)
        .max()?;
    let first_after = acked
        .iter()
        .filter(|(sent, _)| *sent >= failover.stopped_at)
        .map(|(_, at)| *at)
        .min()?;
    Some(Window {
        unavailable_ms: first_after - last_before,
        promotion_ms: failover.promoted_at - failover.stopped_at,
        last_write_before: last_before,
        first_write_after: first_after,
    })
}

pub fn samples(errors: &[ServerError], at_most: usize) -> Vec<String> {
    errors
        .iter()
        .take(at_most)
        .map(|e| {
            format!(
                "#{} {} on instance {} at {}: {}",
                e.op,
                e.kind,
                e.instance,
                crate::history::time(e.at),
                e.body
            )
        })
        .collect()
}

impl Summary {
    pub fn text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "coupond chaos: {} with {} instance(s), {} clients, {:.0} s, seed {}",
            self.backend, self.instances, self.clients, self.seconds, self.seed
        );
        let _ = writeln!(s, "history and logs: {}", self.out);
        let _ = writeln!(s, "\noperations          ok     fail  unknown");
        let mut totals = [0u64; 3];
        for kind in Kind::ALL {
            let Some(row) = self.operations.get(kind.name()) else {
                continue;
            };
            let cells = ["ok", "fail", "unknown"].map(|o| row.get(o).copied().unwrap_or(0));
            for (t, c) in totals.iter_mut().zip(cells) {
                *t += c;
            }
            let _ = writeln!(
                s,
                "  {:<12} {:>8} {:>8} {:>8}",
                kind.name(),
                cells[0],
                cells[1],
                cells[2]
            );
        }
        let _ = writeln!(
            s,
            "  {:<12} {:>8} {:>8} {:>8}",
            "total", totals[0], totals[1], totals[2]
        );
        let mut refusals: Vec<_> = self.refusals.iter().collect();
        refusals.sort_by(|a, b| b.1.cmp(a.1));
        let listed: Vec<String> = refusals.iter().map(|(label, n)| format!("{label} {n}")).collect();
        let _ = writeln!(s, "refusals: {}", listed.join(", "));
        let _ = writeln!(
            s,
            "acknowledged with Idempotent-Replayed (an earlier attempt or a twin had acted): {}",
            self.replayed_answers
        );
        let faults: Vec<String> = self.faults.counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let _ = writeln!(
            s,
            "\nfaults: {}",
            if faults.is_empty() {
                "none".into()
            } else {
                faults.join(", ")
            }
        );
        for failure in &self.faults.failures {
            let _ = writeln!(s, "  not applied: {failure}");
        }
        let _ = writeln!(s, "server starts: {:?}", self.server_starts);
        let u = &self.unknowns;
        let _ = writeln!(
            s,
            "unknown writes: {} (retried with their keys: {} replayed, {} acted now, {} refused, {} still unknown)",
            u.unknown, u.ok_replayed, u.ok_acted, u.refused, u.still_unknown
        );
        let _ = writeln!(s, "unknown reads (not retried): {}", u.reads);
        let _ = writeln!(
            s,
            "replays after the run: {} sent, {} answered",
            u.replays_sent, u.replays_answered
        );
        let _ = writeln!(s, "500 answers: {}", self.server_errors);
        for sample in &self.server_error_samples {
            let _ = writeln!(s, "  {sample}");
        }
        if let Some(w) = &self.failover {
            let _ = writeln!(
                s,
                "failover: writes unavailable for {} ms (last acknowledged before the primary stopped → first acknowledged after); promotion took {} ms",
                w.unavailable_ms, w.promotion_ms
            );
        }
        let by_check: Vec<String> = self
            .violations_by_check
            .iter()
            .map(|(c, n)| format!("{c} {n}"))
            .collect();
        let _ = writeln!(
            s,
            "\nviolations: {} {}",
            self.violations.len(),
            if by_check.is_empty() {
                String::new()
            } else {
                format!("({})", by_check.join(", "))
            }
        );
        for v in self.violations.iter().take(50) {
            let _ = writeln!(s, "  [{}] {}", v.check, v.detail);
        }
        if self.violations.len() > 50 {
            let _ = writeln!(s, "  … all of them in summary.json");
        }
        let _ = writeln!(s, "{}", if self.passed { "PASSED" } else { "FAILED" });
        s
    }
}
