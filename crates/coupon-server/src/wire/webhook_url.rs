//! What a webhook endpoint's URL may be: `http` or `https`, a host that is a name whose last label
//! starts with a letter (so the URL standard never reads it as a number) or a dotted IPv4 address
//! the server may send to, an optional port (up to 65535), and printable ASCII after.
//!
//! Which literal addresses pass depends on the server's [`Destinations`] (public ones, and the
//! internal networks its operator allowed), so the pattern is built from them: the document a
//! server serves states it, and the server checks URLs with that same pattern, so the two cannot
//! drift apart. A name is checked when an event is sent, against the addresses it resolves to.

use std::net::Ipv4Addr;

use coupon_relay::{Destinations, Reach};
use ipnet::Ipv4Net;
use regex::Regex;
use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaType, Type};

pub const MAX_WEBHOOK_URL: usize = 2000;

const NAME: &str = "([A-Za-z0-9-]+[.])*[A-Za-z][A-Za-z0-9-]*";
const PORT: &str = "(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4}))?";
const REST: &str = "([/?#][!-~]*)?";

/// The URL rule of one server.
#[derive(Debug, Clone)]
pub struct WebhookUrls {
    pattern: String,
    regex: Regex,
}

impl WebhookUrls {
    pub fn new(destinations: &Destinations) -> Self {
        let pattern = pattern(destinations);
        let regex = Regex::new(&pattern).expect("a valid pattern");
        WebhookUrls { pattern, regex }
    }

    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Whether `url` is one the pattern describes. A single trailing newline passes, as it does
    /// for the tools that read the document's `$` the way Python's `re` does; the URL standard
    /// drops it.
    pub fn admits(&self, url: &str) -> bool {
        let url = url.strip_suffix('\n').unwrap_or(url);
        // The pattern admits ASCII only, so its length in bytes is its length in characters.
        url.len() <= MAX_WEBHOOK_URL && self.regex.is_match(url)
    }
}

impl Default for WebhookUrls {
    fn default() -> Self {
        WebhookUrls::new(&Destinations::default())
    }
}

/// The schema of a default server's URL; a server's document puts its own pattern in its place.
pub fn schema() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .pattern(Some(pattern(&Destinations::default())))
        .max_length(Some(MAX_WEBHOOK_URL))
        .description(Some(
            "An http:// or https:// URL whose host is a name or an IPv4 address. Internal addresses \
             (loopback, private, shared and link-local networks, and other special-purpose ranges) \
             are refused unless the server's operator allowed their network \
             (`--webhook-allow-networks`), and the pattern here is this server's; a name that \
             resolves only to such addresses is sent nothing (its deliveries fail).",
        ))
        .build()
}

/// The URL pattern for a server sending to `destinations`.
fn pattern(destinations: &Destinations) -> String {
    let ipv4 = addresses(destinations, 0, 0);
    format!("^https?://({NAME}|{ipv4}){PORT}{REST}$")
}

/// A pattern for the rest of a dotted address, `prefix` holding its first `fixed` octets: the
/// octets whose whole block is permitted, followed by any others, or, where only part of the block
/// is, that octet and the pattern of what may follow it.
fn addresses(destinations: &Destinations, prefix: u32, fixed: u8) -> String {
    let shift = 8 * (3 - u32::from(fixed));
    let (mut whole, mut parts) = (Vec::new(), Vec::new());
    for octet in 0..=255u32 {
        let start = prefix | octet << shift;
        let block = Ipv4Net::new_assert(Ipv4Addr::from(start), 8 * (fixed + 1));
        match destinations.reach(block) {
            Reach::All => whole.push(octet),
            Reach::None => {}
            Reach::Part => parts.push(format!("{octet}[.]{}", addresses(destinations, start, fixed + 1))),
        }
    }
    let any = numbers(&[0..=255]);
    let mut alternatives = Vec::new();
    if !whole.is_empty() {
        let tail = match 3 - fixed {
            0 => String::new(),
            n => format!("([.]{any}){{{n}}}"),
        };
        alternatives.push(format!("{}{tail}", numbers(&runs(&whole))));
    }
    alternatives.extend(parts);
    format!("({})", alternatives.join("|"))
}

/// Sorted values as runs of consecutive ones.
fn runs(values: &[u32]) -> Vec<std::ops::RangeInclusive<u32>> {
    let mut runs: Vec<std::ops::RangeInclusive<u32>> = Vec::new();
    for &v in values {
        match runs.last_mut() {
            Some(run) if *run.end() + 1 == v => *run = *run.start()..=v,
            _ => runs.push(v..=v),
        }
    }
    runs
}

/// A pattern matching the decimal numbers (without leading zeros) in `ranges`.
fn numbers(ranges: &[std::ops::RangeInclusive<u32>]) -> String {
    let mut pieces = Vec::new();
    for range in ranges {
        // Split by number of digits first, so that no piece needs a leading zero.
        for (low, high, leading) in [(0, 9, 1), (10, 99, 10), (100, 999, 100)] {
            let (from, to) = ((*range.start()).max(low), (*range.end()).min(high));
            if from <= to {
                digits(from, to, leading, &mut pieces);
            }
        }
    }
    format!("({})", pieces.join("|"))
}

/// Pieces for `from..=to`, numbers of one length whose leading digit is at `leading`'s place: each
/// a fixed prefix, a digit range and as many any-digits as the piece's block has trailing places
/// (`2[0-4][0-9]` for 200 to 249).
fn digits(mut from: u32, to: u32, leading: u32, pieces: &mut Vec<String>) {
    while from <= to {
        let mut place = 1;
        while place < leading && from.is_multiple_of(place * 10) && from + place * 10 - 1 <= to {
            place *= 10;
        }
        let digit = from / place % 10;
        let count = ((to + 1 - from) / place).min(10 - digit);
        let prefix = from / (place * 10);
        let mut piece = if prefix == 0 { String::new() } else { prefix.to_string() };
        piece.push_str(&match count {
            1 => digit.to_string(),
            _ => format!("[{digit}-{}]", digit + count - 1),
        });
        let mut trailing = place;
        while trailing > 1 {
            piece.push_str("[0-9]");
            trailing /= 10;
        }
        pieces.push(piece);
        from += count * place;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_patterns_match_exactly_their_ranges() {
        for ranges in [
            vec![0..=255],
            vec![1..=9, 11..=99, 101..=126],
            vec![16..=31, 64..=127, 200..=200],
        ] {
            let regex = Regex::new(&format!("^{}$", numbers(&ranges))).unwrap();
            for n in 0..=999u32 {
                let inside = ranges.iter().any(|r| r.contains(&n));
                assert_eq!(regex.is_match(&n.to_string()), inside, "{n} in {ranges:?}");
                assert!(!regex.is_match(&format!("0{n}")), "0{n}: no leading zeros");
            }
        }
    }

    #[test]
    fn literal_addresses_pass_as_the_destinations_permit() {
        let check = |urls: &WebhookUrls, ip: Ipv4Addr, permitted: bool| {
            assert_eq!(urls.admits(&format!("http://{ip}:8080/in")), permitted, "{ip}");
        };
        let public = WebhookUrls::default();
        let some = WebhookUrls::new(&Destinations::allowing(some_allowed()));
        let destinations = [Destinations::default(), Destinations::allowing(some_allowed())];
        // Every /16's first and last address, and a step through each, against `permits`.
        for a in 0..=255u8 {
            for b in (0..=255u8).step_by(5) {
                for ip in [
                    Ipv4Addr::new(a, b, 0, 0),
                    Ipv4Addr::new(a, b, 2, 77),
                    Ipv4Addr::new(a, b, 255, 255),
                ] {
                    check(&public, ip, destinations[0].permits(ip.into()));
                    check(&some, ip, destinations[1].permits(ip.into()));
                }
            }
        }
        for (ip, public_ok, some_ok) in [
            ("127.0.0.1", false, true),
            ("10.1.2.3", false, true),
            ("10.2.0.1", false, false),
            ("169.254.169.254", false, false),
            ("192.0.2.9", false, false),
            ("192.0.3.9", true, true),
            ("93.184.216.34", true, true),
        ] {
            let ip: Ipv4Addr = ip.parse().unwrap();
            check(&public, ip, public_ok);
            check(&some, ip, some_ok);
        }
        assert!(
            public.admits("https://localhost:8080/in"),
            "names are checked when sent"
        );
    }

    fn some_allowed() -> [ipnet::IpNet; 2] {
        ["127.0.0.0/8", "10.1.0.0/16"].map(|n| n.parse().unwrap())
    }
}
