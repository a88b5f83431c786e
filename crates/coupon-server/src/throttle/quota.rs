//! What each caller may send: a token bucket per route group and kind of caller, and two much
//! smaller buckets for failed code look-ups. Rates are written `N/UNIT[:BURST]` (`5/s:20` is five
//! a second with bursts of twenty; `10/h` is ten an hour, ten at once).

use std::net::IpAddr;
use std::time::Duration;

use axum::http::Method;
use ipnet::IpNet;

use crate::auth::Role;

/// Routes that are throttled alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    /// Managing books and codes, rollbacks: every write outside claims and checkout.
    Admin,
    /// `POST /coupons/assign` and `/coupons/assign/{code}`.
    Claims,
    /// Lock, unlock, redeem and validate.
    Checkout,
    /// Every other `GET`.
    Reads,
}

/// Who is calling, for throttling: anonymous callers (no valid token) are counted by client IP,
/// everyone else by principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Anonymous,
    User,
    Service,
    Admin,
}

impl From<Role> for Kind {
    fn from(role: Role) -> Kind {
        match role {
            Role::Admin => Kind::Admin,
            Role::Service => Kind::Service,
            Role::User => Kind::User,
        }
    }
}

const GROUPS: [(&str, Group); 4] = [
    ("admin", Group::Admin),
    ("claims", Group::Claims),
    ("checkout", Group::Checkout),
    ("reads", Group::Reads),
];
const KINDS: [(&str, Kind); 4] = [
    ("anonymous", Kind::Anonymous),
    ("user", Kind::User),
    ("service", Kind::Service),
    ("admin", Kind::Admin),
];

/// The group of a matched route; `None` for probes, metrics and documentation, which are never
/// throttled.
pub fn group_of(method: &Method, route: &str) -> Option<Group> {
    match route {
        "" | "/healthz" | "/readyz" | "/metrics" | "/openapi.json" | "/docs" | "/docs/{file}" => None,
        "/coupons/assign" | "/coupons/assign/{code}" => Some(Group::Claims),
        "/coupons/lock/{code}" | "/coupons/unlock/{code}" | "/coupons/redeem/{code}" | "/coupons/validate/{code}" => {
            Some(Group::Checkout)
        }
        _ if method == Method::GET => Some(Group::Reads),
        _ => Some(Group::Admin),
    }
}

/// A token bucket: `burst` at once, refilled one every `every`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub every: Duration,
    pub burst: u32,
}

impl Rate {
    /// `count` per `period`, `burst` at once.
    pub const fn new(count: u32, period: Duration, burst: u32) -> Rate {
        Rate {
            every: Duration::from_nanos(period.as_nanos() as u64 / count as u64),
            burst,
        }
    }

    pub fn parse(spec: &str) -> Result<Rate, String> {
        let bad = || format!("{spec:?} is not a rate like 5/s, 100/m:200 or 10/h");
        let (rate, burst) = match spec.split_once(':') {
            Some((rate, burst)) => (rate, Some(burst)),
            None => (spec, None),
        };
        let (count, unit) = rate.split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        let period = match unit.trim() {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return Err(bad()),
        };
        let burst: u32 = match burst {
            Some(b) => b.trim().parse().map_err(|_| bad())?,
            None => count,
        };
        if count == 0 || burst == 0 || count > 1_000_000_000 {
            return Err(format!("{spec:?}: the count and the burst must be positive"));
        }
        Ok(Rate::new(count, Duration::from_secs(period), burst))
    }

    /// At most this many in a year: the burst, then one per `every`.
    pub fn per_year(&self) -> f64 {
        self.burst as f64 + 365.0 * 86_400.0 / self.every.as_secs_f64()
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let per_second = 1.0 / self.every.as_secs_f64();
        let (count, unit) = if per_second >= 1.0 {
            (per_second, "s")
        } else if per_second * 60.0 >= 1.0 {
            (per_second * 60.0, "m")
        } else if per_second * 3600.0 >= 1.0 {
            (per_second * 3600.0, "h")
        } else {
            (per_second * 86_400.0, "d")
        };
        write!(f, "{}/{unit}:{}", count.round(), self.burst)
    }
}

/// Everything the throttle needs to know, with defaults that leave normal traffic alone.
#[derive(Debug, Clone)]
pub struct ThrottleConfig {
    /// Off means no bucket is consulted (a gateway in front does the throttling).
    pub enabled: bool,
    requests: [[Rate; 4]; 4],
    /// Failed look-ups (unknown code, code not yours) per user, whoever sends them.
    pub lookups_per_user: Rate,
    /// Failed look-ups per client IP, of callers with the `user` role.
    pub lookups_per_ip: Rate,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Buckets shared by every instance through this Redis; in memory when unset or unreachable.
    pub redis_url: Option<String>,
    /// What the shared buckets' Redis keys start with.
    pub redis_prefix: String,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        const SEC: Duration = Duration::from_secs(1);
        const HOUR: Duration = Duration::from_secs(3600);
        // Rows: admin, claims, checkout, reads. Columns: anonymous, user, service, admin.
        // A service acts for every customer of a shop: its bucket only guards against a runaway
        // client, far above what a cluster of instances serves (one answered about 56,000 sold-out
        // claims a second in the benchmark, which a bucket of 50,000 a second throttled).
        let anonymous = Rate::new(20, SEC, 50);
        let service = Rate::new(1_000_000, SEC, 2_000_000);
        let admin = Rate::new(1_000, SEC, 2_000);
        let requests = [
            [anonymous, Rate::new(5, SEC, 10), service, admin],
            [anonymous, Rate::new(2, SEC, 10), service, admin],
            [anonymous, Rate::new(10, SEC, 30), service, admin],
            [anonymous, Rate::new(20, SEC, 60), service, admin],
        ];
        ThrottleConfig {
            enabled: true,
            requests,
            lookups_per_user: Rate::new(10, HOUR, 10),
            lookups_per_ip: Rate::new(100, HOUR, 100),
            trusted_proxies: Vec::new(),
            redis_url: None,
            redis_prefix: "coupond:throttle".into(),
        }
    }
}

impl ThrottleConfig {
    pub fn requests(&self, group: Group, kind: Kind) -> Rate {
        self.requests[group as usize][kind as usize]
    }

    /// Applies one `TARGET=RATE` setting: `claims.user=5/s:20`, `*.service=…`, `reads.*=…`,
    /// `lookups.user=10/h`, `lookups.ip=100/h`.
    pub fn set(&mut self, setting: &str) -> Result<(), String> {
        let (target, rate) = setting
            .split_once('=')
            .ok_or_else(|| format!("{setting:?} is not TARGET=RATE, e.g. claims.user=5/s:20"))?;
        let rate = Rate::parse(rate)?;
        let (group, kind) = target
            .trim()
            .split_once('.')
            .ok_or_else(|| format!("{target:?} is not GROUP.KIND, e.g. claims.user"))?;
        match (group, kind) {
            ("lookups", "user") => self.lookups_per_user = rate,
            ("lookups", "ip") => self.lookups_per_ip = rate,
            ("lookups", _) => return Err(format!("{target:?}: failed look-ups are limited per user or per ip")),
            _ => {
                let groups = pick(&GROUPS, group, "group")?;
                let kinds = pick(&KINDS, kind, "kind of caller")?;
                for &g in &groups {
                    for &k in &kinds {
                        self.requests[g as usize][k as usize] = rate;
                    }
                }
            }
        }
        Ok(())
    }

    /// Every setting, one per line, for `coupond config`.
    pub fn describe(&self) -> String {
        let mut lines = Vec::new();
        for (gname, g) in GROUPS {
            for (kname, k) in KINDS {
                lines.push(format!("{gname}.{kname}={}", self.requests(g, k)));
            }
        }
        lines.push(format!("lookups.user={}", self.lookups_per_user));
        lines.push(format!("lookups.ip={}", self.lookups_per_ip));
        lines.join(", ")
    }

    pub fn trusts(&self, peer: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&peer))
    }
}

fn pick<T: Copy>(table: &[(&str, T)], name: &str, what: &str) -> Result<Vec<T>, String> {
    if name == "*" {
        return Ok(table.iter().map(|(_, t)| *t).collect());
    }
    match table.iter().find(|(n, _)| *n == name) {
        Some((_, t)) => Ok(vec![*t]),
        None => {
            let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
            Err(format!("unknown {what} {name:?}: use one of {} or *", names.join(", ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rates() {
        assert_eq!(Rate::parse("5/s:20"), Ok(Rate::new(5, Duration::from_secs(1), 20)));
        assert_eq!(Rate::parse("10/h").unwrap().burst, 10);
        assert_eq!(Rate::parse("10/h").unwrap().every, Duration::from_secs(360));
        assert_eq!(Rate::parse("10/h").unwrap().to_string(), "10/h:10");
        assert_eq!(Rate::parse("2/s:10").unwrap().to_string(), "2/s:10");
        for bad in ["", "5", "5/w", "0/s", "5/s:0", "x/s", "5/s:y"] {
            assert!(Rate::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn settings_override_the_defaults() {
        let mut c = ThrottleConfig::default();
        c.set("claims.user=1/s:3").unwrap();
        assert_eq!(
            c.requests(Group::Claims, Kind::User),
            Rate::new(1, Duration::from_secs(1), 3)
        );
        assert_eq!(
            c.requests(Group::Reads, Kind::User).burst,
            60,
            "other groups are untouched"
        );
        c.set("*.service=7/s").unwrap();
        assert!([Group::Admin, Group::Claims, Group::Checkout, Group::Reads]
            .iter()
            .all(|&g| c.requests(g, Kind::Service).burst == 7));
        c.set("lookups.ip=3/m").unwrap();
        assert_eq!(c.lookups_per_ip.every, Duration::from_secs(20));
        assert!(c.set("claims.robot=1/s").unwrap_err().contains("robot"));
        assert!(c.set("payments.user=1/s").is_err());
        assert!(c.set("claims.user").is_err());
        assert!(c.set("lookups.admin=1/s").is_err());
    }

    #[test]
    fn routes_fall_into_groups() {
        assert_eq!(group_of(&Method::POST, "/coupons/assign/{code}"), Some(Group::Claims));
        assert_eq!(
            group_of(&Method::GET, "/coupons/validate/{code}"),
            Some(Group::Checkout)
        );
        assert_eq!(group_of(&Method::GET, "/coupons/{book_id}"), Some(Group::Reads));
        assert_eq!(group_of(&Method::PATCH, "/coupons/{book_id}"), Some(Group::Admin));
        assert_eq!(group_of(&Method::GET, "/healthz"), None);
        assert_eq!(group_of(&Method::GET, "/metrics"), None);
    }

    /// The arithmetic SECURITY.md quotes: with the defaults, a year of failed look-ups against the
    /// default code pattern finds no code.
    #[test]
    fn a_year_of_guessing_finds_nothing() {
        let c = ThrottleConfig::default();
        let space = coupon_core::CodePattern::parse(coupon_core::DEFAULT_CODE_PATTERN)
            .unwrap()
            .space() as f64;
        let live_codes = 100_000_000.0;
        let per_user = c.lookups_per_user.per_year() * live_codes / space;
        let per_ip = c.lookups_per_ip.per_year() * live_codes / space;
        assert!(per_user < 1e-4, "{per_user}");
        assert!(per_ip < 1e-3, "{per_ip}");
    }
}
