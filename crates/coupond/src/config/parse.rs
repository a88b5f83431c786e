//! Reading settings' values from text: lifetimes and durations, the JWT leeway, networks.

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;

/// `90s`, `30m`, `1h`, `7d`, or plain seconds.
pub fn parse_ttl(s: &str) -> Result<i64, String> {
    match parse_seconds(s)? {
        secs if secs > 0 => Ok(secs),
        _ => Err("the lifetime must be positive".into()),
    }
}

/// An address or a CIDR block.
pub(super) fn parse_network(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{text:?} is not an address or CIDR block"))
}

/// A leeway as [`parse_ttl`] reads it, zero allowed. Ten minutes at most: more is a broken clock
/// that leeway would hide.
pub(super) fn parse_leeway(s: &str) -> Result<u32, String> {
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
}
