//! Settings: each has a flag and a `COUPOND_*` variable (the flag wins), with defaults for running
//! on the embedded database out of the box. The flags and their values are here; how a value is
//! read from text is parse.rs's, and how the settings are shown, secrets redacted, describe.rs's.

mod describe;
mod parse;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use coupon_server::{Role, ThrottleConfig, TokenAlgorithm};
use ipnet::IpNet;

pub use parse::{parse_duration, parse_ttl};
use parse::{parse_leeway, parse_network};

// `Debug` is written out in describe.rs: it shows `describe`, secrets redacted.
#[derive(Args)]
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
    /// The one signature tokens must carry: hs256 (coupond's own secret), or rs256 / es256 (an
    /// identity provider's keys, from --jwt-jwks-file or --jwt-public-key). A token whose header
    /// names another algorithm is refused.
    #[arg(long, env = "COUPOND_JWT_ALGORITHM", value_enum, default_value_t = JwtAlgorithm::Hs256, global = true)]
    pub jwt_algorithm: JwtAlgorithm,
    /// The identity provider's public keys as an RFC 7517 key set (JSON file), read at start.
    #[arg(long, env = "COUPOND_JWT_JWKS_FILE", global = true)]
    pub jwt_jwks_file: Option<PathBuf>,
    /// The identity provider's public key or certificate: PEM text, or @PATH of a PEM file.
    // Hyphen values: PEM text starts with `-----BEGIN`.
    #[arg(
        long,
        env = "COUPOND_JWT_PUBLIC_KEY",
        global = true,
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    pub jwt_public_key: Option<String>,
    /// When set, tokens must carry this `iss`.
    #[arg(long, env = "COUPOND_JWT_ISSUER", global = true)]
    pub jwt_issuer: Option<String>,
    /// When set, tokens must name this in `aud`; when unset, a token naming any audience is refused.
    #[arg(long, env = "COUPOND_JWT_AUDIENCE", global = true)]
    pub jwt_audience: Option<String>,
    /// Clock skew forgiven on `exp` and `nbf`, e.g. 30s (at most 10m).
    #[arg(long, env = "COUPOND_JWT_LEEWAY", default_value = "30s", value_parser = parse_leeway, global = true)]
    pub jwt_leeway: u32,
    /// The claim holding the role: a string (one name, or space-separated like `scope`) or an array.
    /// A dotted path reaches into objects (`realm_access.roles`).
    #[arg(long, env = "COUPOND_JWT_ROLE_CLAIM", default_value = "role", global = true)]
    pub jwt_role_claim: String,
    /// Names in the role claim that grant admin, comma-separated.
    #[arg(
        long,
        env = "COUPOND_JWT_ADMIN_ROLES",
        value_delimiter = ',',
        default_value = "admin,coupond:admin",
        global = true
    )]
    pub jwt_admin_roles: Vec<String>,
    /// Names in the role claim that grant service, comma-separated.
    #[arg(
        long,
        env = "COUPOND_JWT_SERVICE_ROLES",
        value_delimiter = ',',
        default_value = "service,coupond:service",
        global = true
    )]
    pub jwt_service_roles: Vec<String>,
    /// Names in the role claim that grant user, comma-separated.
    #[arg(
        long,
        env = "COUPOND_JWT_USER_ROLES",
        value_delimiter = ',',
        default_value = "user,coupond:user",
        global = true
    )]
    pub jwt_user_roles: Vec<String>,
    #[arg(long, env = "COUPOND_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// How writes reach the database: `batched` (concurrent requests share transactions) or `naive`
    /// (one transaction per request; the baseline the benchmark compares with).
    #[arg(long, env = "COUPOND_CLAIM_STRATEGY", value_enum, default_value_t = ClaimStrategy::Batched, global = true)]
    pub claim_strategy: ClaimStrategy,
    /// Throttle requests and failed code look-ups (`off` when a gateway in front does it).
    #[arg(long, env = "COUPOND_THROTTLE", value_enum, default_value_t = Switch::On, global = true)]
    pub throttle: Switch,
    /// Overrides a bucket: GROUP.KIND=RATE, e.g. claims.user=5/s:20, *.service=20000/s,
    /// lookups.user=10/h (groups: admin, claims, checkout, reads; kinds: anonymous, user,
    /// service, admin). Repeatable, or comma-separated in the variable.
    #[arg(
        long = "rate-limit",
        env = "COUPOND_RATE_LIMITS",
        value_delimiter = ',',
        global = true
    )]
    pub rate_limits: Vec<String>,
    /// Proxies (addresses or CIDR blocks) whose X-Forwarded-For is believed; none by default.
    #[arg(long, env = "COUPOND_TRUSTED_PROXIES", value_delimiter = ',', global = true)]
    pub trusted_proxies: Vec<String>,
    /// redis://host:port to share throttling buckets across instances; in memory without it, and
    /// while Redis is unreachable.
    #[arg(long, env = "COUPOND_REDIS_URL", global = true, hide_env_values = true)]
    pub redis_url: Option<String>,
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
    /// Serve GET /metrics (Prometheus) on this address instead of the API's port, which then does
    /// not serve it.
    #[arg(long, env = "COUPOND_METRICS_LISTEN", global = true)]
    pub metrics_listen: Option<SocketAddr>,
    /// A bearer token scrapers must send for /metrics (Authorization: Bearer <token>); open without it.
    #[arg(
        long,
        env = "COUPOND_METRICS_TOKEN",
        global = true,
        hide_env_values = true,
        value_parser = clap::builder::NonEmptyStringValueParser::new()
    )]
    pub metrics_token: Option<String>,
    /// Also publish every event to NATS JetStream (subject `coupond.events.<type>`, stream
    /// COUPOND_EVENTS, created if missing). May carry `user:password@`; never logged.
    #[arg(long, env = "COUPOND_NATS_URL", global = true, hide_env_values = true)]
    pub nats_url: Option<String>,
    /// How long a webhook receiver has to answer an attempt.
    #[arg(long, env = "COUPOND_WEBHOOK_TIMEOUT", default_value = "10s", value_parser = parse_duration, global = true)]
    pub webhook_timeout: Duration,
    /// Attempts per webhook delivery before it is marked failed (retried with exponential backoff
    /// and jitter, 1 s doubling up to an hour).
    #[arg(long, env = "COUPOND_WEBHOOK_MAX_ATTEMPTS", default_value_t = 12, global = true,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub webhook_max_attempts: u32,
    /// Delivered and failed webhook deliveries, and events every consumer has passed, are deleted
    /// once this old.
    #[arg(long, env = "COUPOND_EVENT_RETENTION", default_value = "7d", value_parser = parse_duration, global = true)]
    pub event_retention: Duration,
    /// How long a request's idempotency key and first answer are kept: a retry with the key within
    /// this is answered, not repeated.
    #[arg(long, env = "COUPOND_IDEMPOTENCY_RETENTION", default_value = "24h", value_parser = parse_duration, global = true)]
    pub idempotency_retention: Duration,
    /// Internal networks (addresses or CIDR blocks) webhooks may be sent to, comma-separated. By
    /// default only public addresses are: never loopback, private, link-local (cloud metadata)
    /// or other special-purpose ones, whether named in the URL or resolved from its host's name.
    #[arg(long, env = "COUPOND_WEBHOOK_ALLOW_NETWORKS", value_delimiter = ',', value_parser = parse_network, global = true)]
    pub webhook_allow_networks: Vec<IpNet>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    On,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClaimStrategy {
    Batched,
    Naive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum JwtAlgorithm {
    Hs256,
    Rs256,
    Es256,
}

impl From<JwtAlgorithm> for TokenAlgorithm {
    fn from(a: JwtAlgorithm) -> TokenAlgorithm {
        match a {
            JwtAlgorithm::Hs256 => TokenAlgorithm::Hs256,
            JwtAlgorithm::Rs256 => TokenAlgorithm::Rs256,
            JwtAlgorithm::Es256 => TokenAlgorithm::Es256,
        }
    }
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
    /// The throttle's settings. Errors name the setting at fault.
    pub fn throttle(&self) -> anyhow::Result<ThrottleConfig> {
        let mut config = ThrottleConfig::default();
        config.enabled = self.throttle == Switch::On;
        for setting in &self.rate_limits {
            config
                .set(setting)
                .map_err(|e| anyhow::anyhow!("COUPOND_RATE_LIMITS (--rate-limit): {e}"))?;
        }
        for proxy in &self.trusted_proxies {
            let net = parse_network(proxy)
                .map_err(|e| anyhow::anyhow!("COUPOND_TRUSTED_PROXIES (--trusted-proxies): {e}"))?;
            config.trusted_proxies.push(net);
        }
        config.redis_url = self.redis_url.clone();
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The settings of a command line, as `coupond` would read them.
    pub(super) fn parsed(args: &[&str]) -> Config {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            config: Config,
        }
        let mut argv = vec!["coupond"];
        argv.extend_from_slice(args);
        <Cli as clap::Parser>::try_parse_from(argv).expect("parses").config
    }

    #[test]
    fn throttle_settings_name_the_setting_at_fault() {
        let ok = parsed(&[
            "--rate-limit",
            "claims.user=1/s:3",
            "--trusted-proxies",
            "10.0.0.0/8,192.0.2.1",
        ]);
        let t = ok.throttle().unwrap();
        assert!(t.enabled);
        assert!(t.trusts("10.1.2.3".parse().unwrap()) && t.trusts("192.0.2.1".parse().unwrap()));
        assert!(t.describe().contains("claims.user=1/s:3"));
        let bad_rate = parsed(&["--rate-limit", "claims.user=lots"]).throttle().unwrap_err();
        assert!(bad_rate.to_string().starts_with("COUPOND_RATE_LIMITS"), "{bad_rate}");
        let bad_proxy = parsed(&["--trusted-proxies", "proxy.internal"]).throttle().unwrap_err();
        assert!(
            bad_proxy.to_string().starts_with("COUPOND_TRUSTED_PROXIES"),
            "{bad_proxy}"
        );
        assert!(!parsed(&["--throttle", "off"]).throttle().unwrap().enabled);
        let with_redis = parsed(&["--redis-url", "redis://:hunter2@cache:6379"]);
        assert!(!with_redis.describe().contains("hunter2"));
    }
}
