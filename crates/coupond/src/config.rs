//! Settings: each has a flag and a `COUPOND_*` variable (the flag wins), with defaults for running
//! on the embedded database out of the box.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use coupon_server::Role;

#[derive(Debug, Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "COUPOND_LISTEN", default_value = "127.0.0.1:8080", global = true)]
    pub listen: SocketAddr,
    /// postgres://user@host/db, or sqlite://path (created if missing).
    #[arg(
        long,
        env = "COUPOND_DATABASE_URL",
        default_value = "sqlite://coupond.db",
        global = true,
        hide_env_values = true
    )]
    pub database_url: String,
    /// PostgreSQL connections in the pool.
    #[arg(long, env = "COUPOND_DB_POOL_SIZE", default_value_t = 16, global = true,
          value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub db_pool_size: u16,
    /// Where the generated JWT secret is kept when none is given.
    #[arg(long, env = "COUPOND_DATA_DIR", default_value = ".", global = true)]
    pub data_dir: PathBuf,
    /// HS256 secret for tokens (at least 32 bytes). Without it, one is generated once into the data directory.
    #[arg(long, env = "COUPOND_JWT_SECRET", global = true, hide_env_values = true)]
    pub jwt_secret: Option<String>,
    #[arg(long, env = "COUPOND_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// How writes reach the database: `batched` (concurrent requests share transactions) or `naive`
    /// (one transaction per request; the baseline the benchmark compares with).
    #[arg(long, env = "COUPOND_CLAIM_STRATEGY", value_enum, default_value_t = ClaimStrategy::Batched, global = true)]
    pub claim_strategy: ClaimStrategy,
    /// How long a request may take before it is answered 503 `timeout` (408 while its body is
    /// still arriving). Imports have ten minutes; a CSV export is bounded until it starts.
    #[arg(long, env = "COUPOND_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration, global = true)]
    pub request_timeout: Duration,
    /// How long a client may take to send a request's headers (idle keep-alive connections close after as long).
    #[arg(long, env = "COUPOND_HEADER_READ_TIMEOUT", default_value = "30s", value_parser = parse_duration, global = true)]
    pub header_read_timeout: Duration,
    /// Requests in flight at most; past it, 503 `overloaded` at once (health probes excepted).
    #[arg(long, env = "COUPOND_MAX_CONCURRENT_REQUESTS", default_value_t = 4096, global = true,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_concurrent_requests: u32,
    /// How long a request waits for a database connection before it is answered 503 `unavailable`.
    #[arg(long, env = "COUPOND_DB_ACQUIRE_TIMEOUT", default_value = "2s", value_parser = parse_duration, global = true)]
    pub db_acquire_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClaimStrategy {
    Batched,
    Naive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Admin,
    Service,
    User,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Admin => Role::Admin,
            RoleArg::Service => Role::Service,
            RoleArg::User => Role::User,
        }
    }
}

impl Config {
    /// The database URL without its password.
    pub fn redacted_database_url(&self) -> String {
        redact_password(&self.database_url)
    }

    pub fn describe(&self) -> String {
        format!(
            "listen = {}\ndatabase_url = {}\ndb_pool_size = {}\ndata_dir = {}\njwt_secret = {}\nlog_format = {:?}\n\
             claim_strategy = {:?}\nrequest_timeout = {:?}\nheader_read_timeout = {:?}\n\
             max_concurrent_requests = {}\ndb_acquire_timeout = {:?}",
            self.listen,
            self.redacted_database_url(),
            self.db_pool_size,
            self.data_dir.display(),
            if self.jwt_secret.is_some() {
                "<set, redacted>"
            } else {
                "<generated in data_dir>"
            },
            self.log_format,
            self.claim_strategy,
            self.request_timeout,
            self.header_read_timeout,
            self.max_concurrent_requests,
            self.db_acquire_timeout,
        )
    }
}

fn redact_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let host_start = match rest.find('@') {
        Some(at) if rest[..at].find('/').is_none() => at,
        _ => return url.to_owned(),
    };
    match rest[..host_start].split_once(':') {
        Some((user, _)) => format!("{}{}:<redacted>{}", &url[..scheme_end], user, &rest[host_start..]),
        None => url.to_owned(),
    }
}

/// `90s`, `30m`, `1h`, `7d`, or plain seconds.
pub fn parse_ttl(s: &str) -> Result<i64, String> {
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 30m, 1h or 7d"))?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit {unit:?}: use s, m, h or d")),
    };
    match n.checked_mul(scale) {
        Some(secs) if secs > 0 => Ok(secs),
        _ => Err("the lifetime must be positive".into()),
    }
}

/// `250ms`, or a lifetime as [`parse_ttl`] reads it (`30s`, `2m`, plain seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    match s.strip_suffix("ms") {
        Some(ms) => match ms.parse::<u64>() {
            Ok(n) if n > 0 => Ok(Duration::from_millis(n)),
            _ => Err(format!("{s:?} is not a duration like 250ms, 30s or 2m")),
        },
        None => parse_ttl(s).map(|secs| Duration::from_secs(secs as u64)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lifetimes() {
        assert_eq!(parse_ttl("90"), Ok(90));
        assert_eq!(parse_ttl("30m"), Ok(1800));
        assert_eq!(parse_ttl("1h"), Ok(3600));
        assert_eq!(parse_ttl("7d"), Ok(604_800));
        assert!(parse_ttl("0s").is_err());
        assert!(parse_ttl("1w").is_err());
        assert!(parse_ttl("h").is_err());
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("0ms").is_err());
    }

    #[test]
    fn redacts_database_passwords() {
        assert_eq!(
            redact_password("postgres://u:hunter2@db:5432/c"),
            "postgres://u:<redacted>@db:5432/c"
        );
        assert_eq!(redact_password("postgres://u@db/c"), "postgres://u@db/c");
        assert_eq!(redact_password("sqlite://coupond.db"), "sqlite://coupond.db");
    }
}
