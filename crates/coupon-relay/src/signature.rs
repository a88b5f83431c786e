//! Webhook signatures, Stripe's scheme under our own header name: receivers already know how to
//! check it, and it binds the body to a time so a captured request cannot be replayed later.
//!
//! `Coupond-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::Secret;

/// The request header that carries the signature.
pub const SIGNATURE_HEADER: &str = "Coupond-Signature";

/// A sensible receiver's window: Stripe's five minutes, wide enough for a slow retry queue and
/// clock skew, narrow enough that a replayed request soon stops verifying.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

type HmacSha256 = Hmac<Sha256>;

/// Why a signature header was refused. The variants say what to fix without saying anything an
/// attacker could use to forge one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("malformed signature header: {0}")]
    Malformed(&'static str),
    #[error("the signature header has no v1 signature")]
    NoSignature,
    #[error("no v1 signature matches the body under this secret")]
    Mismatch,
    /// The signature is genuine but its time is too far from `now`: a replay, or a skewed clock.
    #[error("signed at {t}, which is {skew_secs} s away from now (tolerance {tolerance_secs} s)")]
    OutsideTolerance {
        t: i64,
        skew_secs: u64,
        tolerance_secs: u64,
    },
}

/// The `Coupond-Signature` header value for `body` sent at `t` (unix seconds, from the caller's
/// clock so tests and coupond's injected clock decide it).
pub fn sign(secret: &Secret, t: i64, body: &[u8]) -> String {
    let tag = mac(secret, t, body).finalize().into_bytes();
    let mut header = format!("t={t},v1=");
    push_hex(&mut header, &tag);
    header
}

/// Checks a `Coupond-Signature` header against the raw body, as a receiver does.
///
/// Any one of several `v1=` entries may match (a sender rotating its secret signs with both);
/// entries of unknown schemes are ignored so a later `v2` does not break old receivers. The
/// comparison is constant-time. The signature is checked before the time, so `OutsideTolerance` is
/// only ever said of a genuine request; the window applies both ways (a sender's clock may be ahead).
pub fn verify(
    secret: &Secret,
    header: &str,
    body: &[u8],
    now_unix: i64,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let mut t = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        let (key, value) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed("an entry is not key=value"))?;
        match key {
            "t" => {
                if t.is_some() {
                    return Err(SignatureError::Malformed("t is given twice"));
                }
                t = Some(
                    value
                        .parse::<i64>()
                        .map_err(|_| SignatureError::Malformed("t is not an integer"))?,
                );
            }
            "v1" => candidates.push(parse_hex32(value).ok_or(SignatureError::Malformed("v1 is not 64 hex digits"))?),
            _ => {}
        }
    }
    let t = t.ok_or(SignatureError::Malformed("t is missing"))?;
    if candidates.is_empty() {
        return Err(SignatureError::NoSignature);
    }
    let expected = mac(secret, t, body);
    // `verify_slice` compares in constant time; a plain `==` on the hex would tell an attacker, by
    // timing, how many leading bytes of a forged tag were right.
    if !candidates.iter().any(|tag| expected.clone().verify_slice(tag).is_ok()) {
        return Err(SignatureError::Mismatch);
    }
    let skew_secs = now_unix.abs_diff(t);
    if skew_secs > tolerance.as_secs() {
        return Err(SignatureError::OutsideTolerance {
            t,
            skew_secs,
            tolerance_secs: tolerance.as_secs(),
        });
    }
    Ok(())
}

fn mac(secret: &Secret, t: i64, body: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length (a long one is hashed first), so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(secret.expose().as_bytes()).expect("HMAC accepts any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Appends `bytes` as lowercase hex.
pub(crate) fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0xf)] as char);
    }
}

fn parse_hex32(text: &str) -> Option<[u8; 32]> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let text = text.as_bytes();
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_767_225_600;
    const BODY: &[u8] = br#"{"id":"0190a1b2-0000-7000-8000-000000000001","type":"code.claimed"}"#;

    fn secret() -> Secret {
        Secret::new("whsec_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
    }

    fn check(header: &str, body: &[u8], now: i64) -> Result<(), SignatureError> {
        verify(&secret(), header, body, now, DEFAULT_TOLERANCE)
    }

    #[test]
    fn a_signed_body_verifies() {
        let header = sign(&secret(), NOW, BODY);
        assert!(header.starts_with(&format!("t={NOW},v1=")));
        assert_eq!(header.len(), format!("t={NOW},v1=").len() + 64);
        assert_eq!(check(&header, BODY, NOW), Ok(()));
    }

    #[test]
    fn matches_an_independent_hmac_of_t_dot_body() {
        // RFC 4231 test case 2 ("Jefe"), to pin the construction to HMAC-SHA256 itself.
        let header = sign(&Secret::new("Jefe"), 0, b"");
        let mut mac = HmacSha256::new_from_slice(b"Jefe").unwrap();
        mac.update(b"0.");
        let mut want = String::from("t=0,v1=");
        push_hex(&mut want, &mac.finalize().into_bytes());
        assert_eq!(header, want);

        let mut rfc = HmacSha256::new_from_slice(b"Jefe").unwrap();
        rfc.update(b"what do ya want for nothing?");
        let mut hex = String::new();
        push_hex(&mut hex, &rfc.finalize().into_bytes());
        assert_eq!(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    #[test]
    fn tampering_with_body_time_or_secret_is_a_mismatch() {
        let header = sign(&secret(), NOW, BODY);
        let mut body = BODY.to_vec();
        body[10] ^= 1;
        assert_eq!(check(&header, &body, NOW), Err(SignatureError::Mismatch));
        assert_eq!(
            check(&header, &BODY[..BODY.len() - 1], NOW),
            Err(SignatureError::Mismatch)
        );

        let moved = header.replacen(&format!("t={NOW}"), &format!("t={}", NOW + 1), 1);
        assert_eq!(check(&moved, BODY, NOW), Err(SignatureError::Mismatch));

        let other = Secret::new("whsec_another");
        assert_eq!(
            verify(&other, &header, BODY, NOW, DEFAULT_TOLERANCE),
            Err(SignatureError::Mismatch)
        );

        let mut flipped = header.clone();
        let last = flipped.pop().unwrap();
        flipped.push(if last == '0' { '1' } else { '0' });
        assert_eq!(check(&flipped, BODY, NOW), Err(SignatureError::Mismatch));
    }

    #[test]
    fn the_tolerance_window_applies_both_ways_and_is_inclusive() {
        let header = sign(&secret(), NOW, BODY);
        assert_eq!(check(&header, BODY, NOW + 300), Ok(()));
        assert_eq!(check(&header, BODY, NOW - 300), Ok(()));
        assert_eq!(
            check(&header, BODY, NOW + 301),
            Err(SignatureError::OutsideTolerance {
                t: NOW,
                skew_secs: 301,
                tolerance_secs: 300
            })
        );
        assert!(matches!(
            check(&header, BODY, NOW - 301),
            Err(SignatureError::OutsideTolerance { .. })
        ));
        assert_eq!(
            verify(&secret(), &header, BODY, NOW + 1, Duration::ZERO)
                .unwrap_err()
                .to_string(),
            format!("signed at {NOW}, which is 1 s away from now (tolerance 0 s)")
        );
    }

    #[test]
    fn any_of_several_v1_entries_may_match_and_unknown_schemes_are_ignored() {
        let genuine = sign(&secret(), NOW, BODY);
        let v1 = genuine.split_once(",v1=").unwrap().1;
        let rotated = format!("t={NOW}, v0=abc, v1={}, v1={v1}", "00".repeat(32));
        assert_eq!(check(&rotated, BODY, NOW), Ok(()));
        let upper = format!("t={NOW},v1={}", v1.to_uppercase());
        assert_eq!(check(&upper, BODY, NOW), Ok(()));
    }

    #[test]
    fn malformed_headers_are_refused_with_a_reason() {
        let v1 = "ab".repeat(32);
        let cases = [
            ("", SignatureError::Malformed("an entry is not key=value")),
            ("garbage", SignatureError::Malformed("an entry is not key=value")),
            (&*format!("v1={v1}"), SignatureError::Malformed("t is missing")),
            (
                &*format!("t=soon,v1={v1}"),
                SignatureError::Malformed("t is not an integer"),
            ),
            (
                &*format!("t=1,t=2,v1={v1}"),
                SignatureError::Malformed("t is given twice"),
            ),
            (
                &*format!("t={NOW},v1=abc"),
                SignatureError::Malformed("v1 is not 64 hex digits"),
            ),
            (
                &*format!("t={NOW},v1={}", "zz".repeat(32)),
                SignatureError::Malformed("v1 is not 64 hex digits"),
            ),
            (
                &*format!("t={NOW},v1={v1}0"),
                SignatureError::Malformed("v1 is not 64 hex digits"),
            ),
            (&*format!("t={NOW}"), SignatureError::NoSignature),
            (&*format!("t={NOW},v0={v1}"), SignatureError::NoSignature),
        ];
        for (header, want) in cases {
            assert_eq!(check(header, BODY, NOW), Err(want), "header {header:?}");
        }
    }
}
