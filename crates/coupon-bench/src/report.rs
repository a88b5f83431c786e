//! The figures of a run, as a table for people or one JSON document for scripts.

use std::fmt::Write;

use serde::Serialize;

use crate::client::{Latency, Tally};
use crate::events::Events;
use crate::reads::IdleConnections;
use crate::server::Usage;
use crate::verify::Check;

pub const NOOP: &str = "noop";
pub const COLD_CLAIM: &str = "cold claim";
pub const WARM_CLAIM: &str = "warm claim";
pub const NAIVE_CLAIM: &str = "naive claim";
pub const NAIVE_REDEEM: &str = "naive redeem";
pub const CLAIM: &str = "claim";
pub const OUT_OF_STOCK: &str = "out_of_stock";
pub const READ: &str = "read";
pub const REDEEM: &str = "redeem";

#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    pub name: &'static str,
    /// Expected answers: 201 claims, out_of_stock refusals, 200 reads, redeems.
    pub requests: u64,
    pub seconds: f64,
    pub throughput: f64,
    pub latency_ms: Latency,
    /// Unexpected statuses and transport errors.
    pub errors: u64,
    /// The serving process over the phase; none when /proc could not be read.
    pub server: Option<Usage>,
}

impl Phase {
    pub fn new(name: &'static str, tally: &Tally, seconds: f64, server: Option<Usage>) -> Phase {
        let ms = |micros: u64| micros as f64 / 1000.0;
        let h = &tally.latency;
        Phase {
            name,
            requests: tally.answers(),
            seconds,
            throughput: if seconds > 0.0 {
                tally.answers() as f64 / seconds
            } else {
                0.0
            },
            latency_ms: Latency {
                p50: ms(h.value_at_quantile(0.5)),
                p99: ms(h.value_at_quantile(0.99)),
                p99_9: ms(h.value_at_quantile(0.999)),
                max: ms(h.max()),
            },
            errors: tally.errors,
            server,
        }
    }
}

/// Throughputs relative to each other; none when the divisor did not run.
#[derive(Debug, Clone, Serialize)]
pub struct Ratios {
    pub claim_vs_naive_claim: Option<f64>,
    pub claim_vs_noop: Option<f64>,
    pub out_of_stock_vs_noop: Option<f64>,
    pub reads_vs_noop: Option<f64>,
    pub redeem_vs_naive_redeem: Option<f64>,
    /// A book claimed before the first ANALYZE against the same after it.
    pub cold_claim_vs_warm_claim: Option<f64>,
}

/// The two books sold the moment they were created, before and after ANALYZE.
#[derive(Debug, Clone, Serialize)]
pub struct ColdSale {
    /// Codes in each book, and users claiming each.
    pub codes: u64,
    pub analyze_seconds: f64,
}

/// `POST /coupons` with `total_codes` drawn from a pattern, timed by the client.
#[derive(Debug, Clone, Serialize)]
pub struct Generation {
    pub codes: u64,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub backend: &'static str,
    pub codes: u64,
    pub users: u64,
    pub connections: usize,
    pub pool_size: u16,
    pub phases: Vec<Phase>,
    pub ratios: Ratios,
    pub claims_acknowledged: u64,
    pub out_of_stock_answers: u64,
    pub redeems_acknowledged: u64,
    pub naive_claims_acknowledged: u64,
    pub naive_redeems_acknowledged: u64,
    /// Every phase's errors, idle connections that failed included.
    pub errors: u64,
    pub idle_connections: Option<IdleConnections>,
    /// What a webhook receiver saw of the flash sale (`--webhook`).
    pub events: Option<Events>,
    /// Creating a book whose codes are drawn from a pattern and stored before the answer.
    pub generation: Option<Generation>,
    pub cold_sale: Option<ColdSale>,
    pub checks: Vec<Check>,
    pub passed: bool,
}

impl Ratios {
    pub fn of(phases: &[Phase]) -> Ratios {
        let throughput = |name: &str| phases.iter().find(|p| p.name == name).map_or(0.0, |p| p.throughput);
        let ratio = |a: &str, b: &str| {
            let divisor = throughput(b);
            (divisor > 0.0).then(|| throughput(a) / divisor)
        };
        Ratios {
            claim_vs_naive_claim: ratio(CLAIM, NAIVE_CLAIM),
            claim_vs_noop: ratio(CLAIM, NOOP),
            out_of_stock_vs_noop: ratio(OUT_OF_STOCK, NOOP),
            reads_vs_noop: ratio(READ, NOOP),
            redeem_vs_naive_redeem: ratio(REDEEM, NAIVE_REDEEM),
            cold_claim_vs_warm_claim: ratio(COLD_CLAIM, WARM_CLAIM),
        }
    }
}

impl Report {
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "coupond bench flash-sale: {}, {} codes, {} users, {} connections, pool {}\n",
            self.backend, self.codes, self.users, self.connections, self.pool_size
        );
        let _ = writeln!(
            out,
            "{:<13} {:>9} {:>10} {:>8} {:>8} {:>8} {:>8} {:>7} {:>7} {:>6} {:>9}",
            "phase",
            "requests",
            "req/s",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms",
            "errors",
            "cpu s",
            "cpu %",
            "peak MiB"
        );
        for p in &self.phases {
            let (cpu, percent, rss) = match &p.server {
                Some(u) => (
                    format!("{:.1}", u.cpu_seconds),
                    format!("{:.0}", u.cpu_percent),
                    format!("{:.1}", mib(u.peak_rss_bytes)),
                ),
                None => ("-".into(), "-".into(), "-".into()),
            };
            let l = &p.latency_ms;
            let _ = writeln!(
                out,
                "{:<13} {:>9} {:>10.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>7} {:>7} {:>6} {:>9}",
                p.name, p.requests, p.throughput, l.p50, l.p99, l.p99_9, l.max, p.errors, cpu, percent, rss
            );
        }
        let r = &self.ratios;
        let _ = writeln!(out, "\nratios of throughput");
        for (name, value) in [
            ("claim / naive claim", r.claim_vs_naive_claim),
            ("claim / noop", r.claim_vs_noop),
            ("out_of_stock / noop", r.out_of_stock_vs_noop),
            ("reads / noop", r.reads_vs_noop),
            ("redeem / naive redeem", r.redeem_vs_naive_redeem),
            ("cold / warm claim", r.cold_claim_vs_warm_claim),
        ] {
            let value = value.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"));
            let _ = writeln!(out, "  {name:<22} {value:>8}");
        }
        let _ = writeln!(
            out,
            "\nacknowledged: {} claims, {} out_of_stock, {} redeems (naive: {} claims, {} redeems); {} errors",
            self.claims_acknowledged,
            self.out_of_stock_answers,
            self.redeems_acknowledged,
            self.naive_claims_acknowledged,
            self.naive_redeems_acknowledged,
            self.errors
        );
        if let Some(g) = &self.generation {
            let _ = writeln!(
                out,
                "generation: a book of {} pattern codes created in {:.2} s ({:.0} codes/s)",
                g.codes,
                g.seconds,
                g.codes as f64 / g.seconds
            );
        }
        if let Some(c) = &self.cold_sale {
            let _ = writeln!(
                out,
                "cold and warm claim: books of {} pattern codes claimed as created, ANALYZE between them took {:.2} s",
                c.codes, c.analyze_seconds
            );
        }
        if let Some(e) = &self.events {
            let d = &e.claim_delay_ms;
            let _ = writeln!(
                out,
                "webhook: {} events received ({} again), {} claims; claim event to receipt p50 {:.1} ms, \
                 p99 {:.1} ms, p99.9 {:.1} ms, max {:.1} ms; last claim event {:.2} s after the sale's last request",
                e.received, e.duplicates, e.claims_received, d.p50, d.p99, d.p99_9, d.max, e.drain_seconds
            );
            let _ = writeln!(
                out,
                "outbox backlog at its peak: {:.0} events unread by the fan-out, {:.0} deliveries pending, \
                 oldest {:.1} s",
                e.peak_unread_events, e.peak_pending_deliveries, e.peak_oldest_seconds
            );
        }
        if let Some(idle) = &self.idle_connections {
            let per_connection =
                idle.server_rss_bytes.saturating_sub(idle.server_rss_before_bytes) as f64 / idle.opened.max(1) as f64;
            let _ = writeln!(
                out,
                "idle connections: {} of {} open, server RSS {:.1} MiB → {:.1} MiB ({:.1} KiB each), peak {:.1} MiB",
                idle.opened,
                idle.requested,
                mib(idle.server_rss_before_bytes),
                mib(idle.server_rss_bytes),
                per_connection / 1024.0,
                mib(idle.server_peak_rss_bytes)
            );
        }
        let _ = writeln!(out, "\nchecks");
        for c in &self.checks {
            let verdict = if c.passed { "PASS" } else { "FAIL" };
            let _ = writeln!(out, "  {verdict} {}: {} ({})", c.book, c.name, c.detail);
        }
        out
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
