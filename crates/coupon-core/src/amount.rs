//! Money: integer minor units (cents) throughout, so that no float ever touches an amount.

use crate::CouponError;

/// The largest amount accepted anywhere (10^15 minor units): far above any order, far below overflow.
pub const MAX_AMOUNT: i64 = 1_000_000_000_000_000;

/// Money in minor units (cents), from 0 to [`MAX_AMOUNT`]. Only `parse` builds one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(i64);

impl Amount {
    /// Checks an amount given in `field` of a request.
    pub fn parse(field: &'static str, minor_units: i64) -> Result<Self, CouponError> {
        if !(0..=MAX_AMOUNT).contains(&minor_units) {
            return Err(CouponError::invalid(
                field,
                "must be a non-negative amount in minor units",
            ));
        }
        Ok(Amount(minor_units))
    }

    pub fn minor_units(self) -> i64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn field_of(e: CouponError) -> &'static str {
        match e {
            CouponError::Invalid(i) => i.field,
            other => panic!("not an input error: {other}"),
        }
    }

    #[test]
    fn amounts_run_from_zero_to_the_maximum() {
        assert_eq!(Amount::parse("order_amount", 0).unwrap().minor_units(), 0);
        assert_eq!(
            Amount::parse("order_amount", MAX_AMOUNT).unwrap().minor_units(),
            MAX_AMOUNT
        );
        assert_eq!(field_of(Amount::parse("order_amount", -1).unwrap_err()), "order_amount");
        assert_eq!(
            field_of(Amount::parse("discount.max_discount", MAX_AMOUNT + 1).unwrap_err()),
            "discount.max_discount"
        );
    }

    proptest! {
        #[test]
        fn an_amount_is_kept_exactly_when_in_range(n in any::<i64>()) {
            match Amount::parse("order_amount", n) {
                Ok(a) => {
                    prop_assert!((0..=MAX_AMOUNT).contains(&n));
                    prop_assert_eq!(a.minor_units(), n);
                }
                Err(_) => prop_assert!(!(0..=MAX_AMOUNT).contains(&n)),
            }
        }
    }
}
