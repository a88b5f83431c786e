//! Settings: each has a flag and a `COUPOND_*` variable (the flag wins), with defaults for running
//! on the embedded database out of the box.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use coupon_server::{Role, ThrottleConfig, TokenAlgorithm};
use ipnet::IpNet;

// `Debug` is written out below: it shows `describe`, secrets redacted.
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
    /// The database URL without its password.
    pub fn redacted_database_url(&self) -> String {
        redact_password(&self.database_url)
    }

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

    pub fn describe(&self) -> String {
        let or_none = |v: &Option<String>| v.clone().unwrap_or_else(|| "<none>".into());
        format!(
            "listen = {}\ndatabase_url = {}\ndb_pool_size = {}\ndata_dir = {}\njwt_algorithm = {:?}\njwt_secret = {}\n\
             jwt_jwks_file = {}\njwt_public_key = {}\njwt_issuer = {}\njwt_audience = {}\njwt_leeway = {}s\n\
             jwt_role_claim = {}\njwt_admin_roles = {}\njwt_service_roles = {}\njwt_user_roles = {}\n\
             log_format = {:?}\nclaim_strategy = {:?}\nthrottle = {}\ntrusted_proxies = {}\nredis_url = {}\n\
             request_timeout = {:?}\nheader_read_timeout = {:?}\nmax_concurrent_requests = {}\ndb_acquire_timeout = {:?}\n\
             metrics_listen = {}\nmetrics_token = {}\nnats_url = {}\nwebhook_timeout = {:?}\n\
             webhook_max_attempts = {}\nevent_retention = {:?}\nwebhook_allow_networks = {}",
            self.listen,
            self.redacted_database_url(),
            self.db_pool_size,
            self.data_dir.display(),
            self.jwt_algorithm,
            if self.jwt_secret.is_some() {
                "<set, redacted>"
            } else {
                "<generated in data_dir>"
            },
            or_none(&self.jwt_jwks_file.as_ref().map(|p| p.display().to_string())),
            // Not secret, but long: its file, or that it is inline.
            match self.jwt_public_key.as_deref() {
                None => "<none>".into(),
                Some(key) if key.starts_with('@') => key.to_owned(),
                Some(_) => "<inline PEM>".to_owned(),
            },
            or_none(&self.jwt_issuer),
            or_none(&self.jwt_audience),
            self.jwt_leeway,
            self.jwt_role_claim,
            self.jwt_admin_roles.join(","),
            self.jwt_service_roles.join(","),
            self.jwt_user_roles.join(","),
            self.log_format,
            self.claim_strategy,
            match self.throttle() {
                Ok(t) if t.enabled => t.describe(),
                Ok(_) => "off".to_owned(),
                Err(e) => format!("<invalid: {e}>"),
            },
            self.trusted_proxies.join(","),
            self.redis_url
                .as_deref()
                .map_or_else(|| "<none: buckets in memory>".to_owned(), redact_password),
            self.request_timeout,
            self.header_read_timeout,
            self.max_concurrent_requests,
            self.db_acquire_timeout,
            self.metrics_listen
                .map_or_else(|| "<the API's listener>".to_owned(), |a| a.to_string()),
            if self.metrics_token.is_some() {
                "<set, redacted>"
            } else {
                "<none: open>"
            },
            self.nats_url
                .as_deref()
                .map_or_else(|| "<none>".to_owned(), coupon_relay::redact_url),
            self.webhook_timeout,
            self.webhook_max_attempts,
            self.event_retention,
            match self.webhook_allow_networks.as_slice() {
                [] => "<none: public addresses only>".to_owned(),
                nets => nets.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(","),
            },
        )
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
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
    match parse_seconds(s)? {
        secs if secs > 0 => Ok(secs),
        _ => Err("the lifetime must be positive".into()),
    }
}

/// An address or a CIDR block.
fn parse_network(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{text:?} is not an address or CIDR block"))
}

/// A leeway as [`parse_ttl`] reads it, zero allowed. Ten minutes at most: more is a broken clock
/// that leeway would hide.
fn parse_leeway(s: &str) -> Result<u32, String> {
    match parse_seconds(s)? {
        secs @ 0..=600 => Ok(secs as u32),
        _ => Err("the leeway is at most 10m".into()),
    }
}

fn parse_seconds(s: &str) -> Result<i64, String> {
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
    n.checked_mul(scale).ok_or_else(|| format!("{s:?} is too long"))
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
        assert_eq!(parse_leeway("0"), Ok(0));
        assert_eq!(parse_leeway("30s"), Ok(30));
        assert!(parse_leeway("11m").is_err());
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("0ms").is_err());
    }

    fn parsed(args: &[&str]) -> Config {
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

    #[test]
    fn the_metrics_token_is_redacted() {
        let config = parsed(&["--metrics-token", "scrape-secret", "--metrics-listen", "127.0.0.1:9100"]);
        let shown = format!("{config:?}");
        assert!(!shown.contains("scrape-secret"), "{shown}");
        assert!(shown.contains("metrics_token = <set, redacted>"), "{shown}");
        assert!(shown.contains("metrics_listen = 127.0.0.1:9100\n"), "{shown}");
        assert!(parsed(&[]).describe().contains("metrics_token = <none: open>"));
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
