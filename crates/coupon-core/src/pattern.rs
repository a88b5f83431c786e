//! Code patterns such as `SUMMER-####-????`: `#` is a digit, `?` a letter, `*` a letter or digit,
//! anything else is literal. Characters that read alike (0/O, 1/I/L) are left out so that codes
//! survive being read aloud or retyped.

use std::collections::HashSet;

use rand::Rng;

use crate::code::MAX_CODE_LEN;
use crate::{CodeText, CouponError};

const DIGITS: &[u8] = b"23456789";
const LETTERS: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ";
const ALPHANUMERIC: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

/// A pattern's space must be this many times the number of codes drawn from it, so that codes stay
/// unguessable (at most one in a thousand guesses hits) and collisions while drawing stay rare.
pub const SPACE_FACTOR: u128 = 1000;

/// What codes are drawn from when neither the request nor the book names a pattern: twelve letters
/// or digits, 31^12 (about 7.9 * 10^17) codes, so that guessing one is hopeless under the
/// failed-look-up budget (SECURITY.md has the arithmetic).
pub const DEFAULT_CODE_PATTERN: &str = "****-****-****";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Literal(u8),
    Pick(&'static [u8]),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodePattern {
    source: String,
    slots: Vec<Slot>,
}

impl CodePattern {
    pub fn parse(raw: &str) -> Result<Self, CouponError> {
        let source = raw.trim().to_ascii_uppercase();
        let invalid = |m: &str| CouponError::invalid("code_pattern", m);
        if source.is_empty() || source.len() > MAX_CODE_LEN {
            return Err(invalid("a pattern has 1 to 64 characters"));
        }
        let slots: Vec<Slot> = source
            .bytes()
            .map(|b| match b {
                b'#' => Slot::Pick(DIGITS),
                b'?' => Slot::Pick(LETTERS),
                b'*' => Slot::Pick(ALPHANUMERIC),
                other => Slot::Literal(other),
            })
            .collect();
        if !slots.iter().any(|s| matches!(s, Slot::Pick(_))) {
            return Err(invalid("a pattern needs at least one of '#', '?' or '*'"));
        }
        // Every code drawn must itself be a valid code, so literals follow the code alphabet.
        let literals: String = slots
            .iter()
            .map(|s| match s {
                Slot::Literal(b) => *b as char,
                Slot::Pick(set) => set[0] as char,
            })
            .collect();
        CodeText::parse(&literals).map_err(|_| invalid("literals may be only letters, digits, '-' and '_'"))?;
        Ok(CodePattern { source, slots })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// How many distinct codes the pattern can produce (saturating).
    pub fn space(&self) -> u128 {
        self.slots.iter().fold(1u128, |acc, s| match s {
            Slot::Literal(_) => acc,
            Slot::Pick(set) => acc.saturating_mul(set.len() as u128),
        })
    }

    /// Refuses a draw of `count` codes when the space is under [`SPACE_FACTOR`] times that.
    pub fn check_capacity(&self, count: u64) -> Result<(), CouponError> {
        let needed = (count as u128).saturating_mul(SPACE_FACTOR);
        if self.space() < needed {
            return Err(CouponError::invalid(
                "code_pattern",
                format!(
                    "pattern {} has {} codes; {} codes need at least {} (1000 per code)",
                    self.source,
                    self.space(),
                    count,
                    needed
                ),
            ));
        }
        Ok(())
    }

    pub fn draw(&self, rng: &mut impl Rng) -> String {
        self.slots
            .iter()
            .map(|s| match s {
                Slot::Literal(b) => *b as char,
                Slot::Pick(set) => set[rng.random_range(0..set.len())] as char,
            })
            .collect()
    }

    /// Draws `count` distinct codes. `rng` must be a CSPRNG in production (codes are bearer tokens).
    pub fn draw_distinct(&self, count: usize, rng: &mut impl Rng) -> Vec<String> {
        let mut seen = HashSet::with_capacity(count);
        let mut codes = Vec::with_capacity(count);
        while codes.len() < count {
            let code = self.draw(rng);
            if seen.insert(code.clone()) {
                codes.push(code);
            }
        }
        codes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;

    #[test]
    fn space_counts_only_placeholders() {
        let p = CodePattern::parse("summer-##-??").unwrap();
        assert_eq!(p.as_str(), "SUMMER-##-??");
        assert_eq!(p.space(), 8 * 8 * 23 * 23);
    }

    #[test]
    fn refuses_small_spaces_and_bad_literals() {
        let p = CodePattern::parse("A-###").unwrap();
        assert!(p.check_capacity(1).is_err(), "512 codes cannot hold 1 at 1000x");
        assert!(CodePattern::parse("#####").unwrap().check_capacity(32).is_ok());
        assert!(CodePattern::parse("#####").unwrap().check_capacity(33).is_err());
        assert!(CodePattern::parse("SUMMER").is_err());
        assert!(CodePattern::parse("SUM MER-##").is_err());
    }

    proptest! {
        #[test]
        fn drawn_codes_match_the_pattern(seed in any::<u64>(), pattern in "[A-Z-]{0,4}[#?*]{1,8}[A-Z-]{0,4}") {
            let p = CodePattern::parse(&pattern).unwrap();
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let codes = p.draw_distinct(5.min(p.space() as usize), &mut rng);
            for code in &codes {
                prop_assert_eq!(code.len(), pattern.len());
                prop_assert!(CodeText::parse(code).is_ok());
                for (c, slot) in code.bytes().zip(pattern.bytes()) {
                    match slot {
                        b'#' => prop_assert!(DIGITS.contains(&c)),
                        b'?' => prop_assert!(LETTERS.contains(&c)),
                        b'*' => prop_assert!(ALPHANUMERIC.contains(&c)),
                        lit => prop_assert_eq!(c, lit),
                    }
                }
                prop_assert!(!code.contains(['0', 'O', '1', 'I', 'L'].as_ref()) || pattern.contains(['O', 'I', 'L'].as_ref()));
            }
            let distinct: HashSet<_> = codes.iter().collect();
            prop_assert_eq!(distinct.len(), codes.len());
        }
    }
}
