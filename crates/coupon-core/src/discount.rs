//! Discounts and their arithmetic. Money is integer minor units (cents) throughout; a percentage is
//! kept in basis points so that no float ever touches an amount.

use crate::amount::{Amount, MAX_AMOUNT};
use crate::CouponError;

const PERCENTAGE_RULE: &str = "must be a percentage above 0, at most 100, with at most 2 decimals";
/// What a fixed amount must be; the JSON layer says it too, of a value that is not a whole number.
pub const FIXED_AMOUNT_RULE: &str = "must be a positive whole amount in minor units";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscountKind {
    /// 1 to 10,000 basis points (0.01 % to 100 %).
    Percentage { basis_points: i64 },
    /// A fixed amount off, in minor units.
    FixedAmount { amount: i64 },
}

impl DiscountKind {
    /// A percentage as admins write it (`12.5` for 12.5 %): above 0, at most 100, with at most
    /// 2 decimals, so that it is a whole number of basis points.
    pub fn percentage(percent: f64) -> Result<Self, CouponError> {
        let bp = (percent * 100.0).round();
        if !(percent > 0.0 && percent <= 100.0) || (percent * 100.0 - bp).abs() > 1e-6 {
            return Err(CouponError::invalid("discount.value", PERCENTAGE_RULE));
        }
        Ok(DiscountKind::Percentage {
            basis_points: bp as i64,
        })
    }

    fn check(self) -> Result<Self, CouponError> {
        match self {
            DiscountKind::Percentage { basis_points } if !(1..=10_000).contains(&basis_points) => {
                Err(CouponError::invalid("discount.value", PERCENTAGE_RULE))
            }
            DiscountKind::FixedAmount { amount } if !(1..=MAX_AMOUNT).contains(&amount) => {
                Err(CouponError::invalid("discount.value", FIXED_AMOUNT_RULE))
            }
            kind => Ok(kind),
        }
    }
}

/// A discount: what it takes off, in which currency, its cap and the smallest order it applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discount {
    pub kind: DiscountKind,
    pub currency: String,
    pub max_discount: Option<i64>,
    pub min_order_amount: Option<i64>,
}

/// What a discount does to one order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub discount_applied: i64,
    pub final_price: i64,
}

impl Discount {
    /// A discount as an admin asks for it, checked in that order: the kind's value, a currency
    /// that is a three-letter ISO 4217 code, and caps that are amounts.
    pub fn new(
        kind: DiscountKind,
        currency: String,
        max_discount: Option<i64>,
        min_order_amount: Option<i64>,
    ) -> Result<Self, CouponError> {
        let kind = kind.check()?;
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(CouponError::invalid(
                "discount.currency",
                "must be a three-letter ISO 4217 code",
            ));
        }
        for (field, amount) in [
            ("discount.max_discount", max_discount),
            ("discount.min_order_amount", min_order_amount),
        ] {
            amount.map(|a| Amount::parse(field, a)).transpose()?;
        }
        Ok(Discount {
            kind,
            currency,
            max_discount,
            min_order_amount,
        })
    }

    pub fn discount_type(&self) -> DiscountType {
        match self.kind {
            DiscountKind::Percentage { .. } => DiscountType::Percentage,
            DiscountKind::FixedAmount { .. } => DiscountType::FixedAmount,
        }
    }

    pub fn type_name(&self) -> &'static str {
        self.discount_type().as_str()
    }

    /// Basis points or minor units, as stored.
    pub fn raw_value(&self) -> i64 {
        match self.kind {
            DiscountKind::Percentage { basis_points } => basis_points,
            DiscountKind::FixedAmount { amount } => amount,
        }
    }

    /// A discount read back from storage, which checked it on the way in.
    pub fn from_stored(
        type_name: &str,
        value: i64,
        currency: String,
        max_discount: Option<i64>,
        min_order_amount: Option<i64>,
    ) -> Option<Self> {
        let kind = match DiscountType::parse(type_name)? {
            DiscountType::Percentage => DiscountKind::Percentage { basis_points: value },
            DiscountType::FixedAmount => DiscountKind::FixedAmount { amount: value },
        };
        Some(Discount {
            kind,
            currency,
            max_discount,
            min_order_amount,
        })
    }

    /// The discount on an order of `order_amount` minor units. Percentages round down (in the
    /// merchant's favour); the discount never exceeds `max_discount` nor the order itself.
    pub fn apply(&self, order_amount: i64) -> Result<Applied, CouponError> {
        if let Some(min) = self.min_order_amount {
            if order_amount < min {
                return Err(CouponError::MinOrderNotMet);
            }
        }
        let raw = match self.kind {
            DiscountKind::Percentage { basis_points } => (order_amount as i128 * basis_points as i128 / 10_000) as i64,
            DiscountKind::FixedAmount { amount } => amount,
        };
        let capped = self.max_discount.map_or(raw, |max| raw.min(max));
        let discount_applied = capped.min(order_amount).max(0);
        Ok(Applied {
            discount_applied,
            final_price: order_amount - discount_applied,
        })
    }
}

/// The two kinds of discount, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscountType {
    Percentage,
    FixedAmount,
}

impl DiscountType {
    pub fn as_str(self) -> &'static str {
        match self {
            DiscountType::Percentage => "percentage",
            DiscountType::FixedAmount => "fixed_amount",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "percentage" => Some(DiscountType::Percentage),
            "fixed_amount" => Some(DiscountType::FixedAmount),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn discount(kind: DiscountKind, max: Option<i64>, min: Option<i64>) -> Result<Discount, CouponError> {
        Discount::new(kind, "USD".into(), max, min)
    }

    fn field_of<T: std::fmt::Debug>(r: Result<T, CouponError>) -> &'static str {
        match r {
            Err(CouponError::Invalid(i)) => i.field,
            other => panic!("not refused as input: {other:?}"),
        }
    }

    #[test]
    fn percentages_are_kept_in_basis_points() {
        assert_eq!(
            DiscountKind::percentage(12.5),
            Ok(DiscountKind::Percentage { basis_points: 1250 })
        );
        assert_eq!(
            DiscountKind::percentage(100.0),
            Ok(DiscountKind::Percentage { basis_points: 10_000 })
        );
        for bad in [0.0, -5.0, 100.01, 10.123, 0.001, 1e300] {
            assert_eq!(field_of(DiscountKind::percentage(bad)), "discount.value", "{bad}");
        }
    }

    #[test]
    fn refuses_bad_values_currencies_and_caps() {
        let fixed = |amount| DiscountKind::FixedAmount { amount };
        assert!(discount(fixed(MAX_AMOUNT), Some(0), Some(MAX_AMOUNT)).is_ok());
        assert_eq!(field_of(discount(fixed(0), None, None)), "discount.value");
        assert_eq!(field_of(discount(fixed(-5), None, None)), "discount.value");
        assert_eq!(field_of(discount(fixed(MAX_AMOUNT + 1), None, None)), "discount.value");
        let none_off = DiscountKind::Percentage { basis_points: 0 };
        assert_eq!(field_of(discount(none_off, None, None)), "discount.value");
        for currency in ["usd", "US", "USDT", "U5D"] {
            assert_eq!(
                field_of(Discount::new(fixed(5), currency.into(), None, None)),
                "discount.currency"
            );
        }
        assert_eq!(field_of(discount(fixed(5), Some(-1), None)), "discount.max_discount");
        assert_eq!(
            field_of(discount(fixed(5), None, Some(MAX_AMOUNT + 1))),
            "discount.min_order_amount"
        );
    }

    #[test]
    fn applies_caps_and_minimums() {
        let d = discount(DiscountKind::percentage(20.0).unwrap(), Some(1500), Some(1000)).unwrap();
        assert_eq!(d.apply(999), Err(CouponError::MinOrderNotMet));
        assert_eq!(
            d.apply(5000).unwrap(),
            Applied {
                discount_applied: 1000,
                final_price: 4000
            }
        );
        assert_eq!(d.apply(10_000).unwrap().discount_applied, 1500);
        let fixed = discount(DiscountKind::FixedAmount { amount: 2000 }, None, None).unwrap();
        assert_eq!(
            fixed.apply(1500).unwrap(),
            Applied {
                discount_applied: 1500,
                final_price: 0
            }
        );
    }

    proptest! {
        #[test]
        fn discount_never_exceeds_order(
            bp in 1i64..=10_000, amount in 1i64..=MAX_AMOUNT, order in 0i64..=MAX_AMOUNT,
            max in proptest::option::of(0i64..=MAX_AMOUNT), pct in any::<bool>(),
        ) {
            let kind = if pct { DiscountKind::Percentage { basis_points: bp } } else { DiscountKind::FixedAmount { amount } };
            let d = Discount { kind, currency: "USD".into(), max_discount: max, min_order_amount: None };
            let a = d.apply(order).unwrap();
            prop_assert!(a.discount_applied >= 0 && a.discount_applied <= order);
            prop_assert!(max.is_none_or(|m| a.discount_applied <= m));
            prop_assert_eq!(a.final_price, order - a.discount_applied);
        }
    }
}
