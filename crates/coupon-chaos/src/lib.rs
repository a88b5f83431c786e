//! `coupond chaos`: real coupond processes on a real database, a mixed workload whose writes carry
//! idempotency keys, faults injected all along (killed servers, a crashing or failing-over
//! PostgreSQL, a slow or broken network, a full or read-only disk), every operation logged, and at
//! the end the database checked against what was acknowledged.
//!
//! Jepsen's shape, in three parts kept apart: a generator of operations (workload.rs, model.rs), a
//! nemesis (nemesis.rs) and a checker (check/) that reads only the history and the database.

mod attempt;
mod books;
mod check;
mod fleet;
mod history;
mod http;
mod model;
mod nemesis;
mod operation;
mod postgres;
mod proxy;
mod report;
mod run;
mod settle;
mod snapshot;
mod stage;
mod volume;
mod workload;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

pub use run::run;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    Postgres,
    Sqlite,
}

#[derive(Debug, Clone, Args)]
pub struct Chaos {
    /// The database the servers run on: a throwaway PostgreSQL cluster, or a SQLite file.
    #[arg(long, value_enum, default_value_t = Backend::Postgres)]
    pub backend: Backend,
    /// coupond processes sharing the database; clients go round them, kills rotate among them.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub instances: u16,
    /// How long the workload runs under faults, e.g. 30s, 10m.
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    pub duration: Duration,
    /// Seeds the workload's and the nemesis's choices (printed when not given).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Concurrent clients, each one operation at a time.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub clients: u16,
    /// Users the clients act for.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    pub users: u32,
    /// A fault about this often on average (0s: none).
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub fault_every: Duration,
    /// The faults to choose from (default: every one the backend allows), comma-separated:
    /// kill, pg-restart, latency, drop, disk-full, read-only.
    #[arg(long, value_delimiter = ',')]
    pub faults: Vec<String>,
    /// PostgreSQL only: a synchronous standby, and halfway through, the primary stopped hard and the
    /// standby promoted; prints how long writes were unavailable.
    #[arg(long)]
    pub failover: bool,
    /// Where the history (history.jsonl), the servers' logs and summary.json go (default: a new
    /// temporary directory, printed).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Attempts per operation during the run before it is given up as unknown.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub attempts: u32,
    /// How long a client waits for one answer.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub attempt_timeout: Duration,
    /// The servers' COUPOND_REQUEST_TIMEOUT: short, so that slow stretches end requests with 503
    /// `timeout` while their batches still run, and the retries meet them.
    #[arg(long, default_value = "2s")]
    pub server_timeout: String,
    /// The servers' PostgreSQL pool size (COUPOND_DB_POOL_SIZE).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=100))]
    pub pool_size: u16,
    /// The servers' log filter (COUPOND_LOG).
    #[arg(long, default_value = "warn")]
    pub server_log: String,
    /// Share of writes sent twice at once, to two instances, with one key.
    #[arg(long, default_value_t = 0.03)]
    pub twins: f64,
    /// Share of acknowledged writes sent again at once with their key (a lost answer's retry).
    #[arg(long, default_value_t = 0.03)]
    pub replays: f64,
    /// Acknowledged writes sent again with their keys after the run, each to be replayed.
    #[arg(long, default_value_t = 300)]
    pub final_replays: usize,
    /// Pass even with 500 answers (the service promises 503 during outages: a 500 fails the run).
    #[arg(long)]
    pub tolerate_500: bool,
    /// SQLite's volume, in MiB (it is filled for the disk-full fault).
    #[arg(long, default_value_t = 1024)]
    pub volume_mib: u64,
}

/// `250ms`, `30s`, `10m`, `1h`, or plain seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 30s or 10m"))?;
    Ok(match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(format!("{text:?}: the unit is ms, s, m or h")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("25s"), Ok(Duration::from_secs(25)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("10 minutes").is_err());
    }
}
