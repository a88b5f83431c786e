//! Discounts and their arithmetic. Money is integer minor units (cents) throughout; a percentage is
//! kept in basis points so that no float ever touches an amount.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::amount::MAX_AMOUNT;
use crate::CouponError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscountKind {
    /// 1 to 10,000 basis points (0.01 % to 100 %).
    Percentage { basis_points: i64 },
    /// A fixed amount off, in minor units.
    FixedAmount { amount: i64 },
}

/// A discount as the domain sees it. Its JSON form is [`DiscountWire`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "DiscountWire", into = "DiscountWire")]
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

/// The two kinds of discount, as named in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
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

/// The JSON form: `{"type": "percentage", "value": 12.5, "currency": "USD", ...}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Discount)]
pub struct DiscountWire {
    #[serde(rename = "type")]
    pub kind: DiscountType,
    /// A percentage (0 < v <= 100, at most 2 decimals) or an amount in minor units.
    #[schema(value_type = f64)]
    pub value: serde_json::Number,
    /// ISO 4217 code; defaults to USD.
    #[serde(default)]
    pub currency: Option<String>,
    /// Cap on the discount, minor units.
    #[serde(default)]
    pub max_discount: Option<i64>,
    /// Smallest order the discount applies to, minor units.
    #[serde(default)]
    pub min_order_amount: Option<i64>,
}

impl TryFrom<DiscountWire> for Discount {
    type Error = String;

    fn try_from(w: DiscountWire) -> Result<Self, String> {
        let kind = match w.kind {
            DiscountType::Percentage => {
                let v = w.value.as_f64().ok_or("discount.value must be a number")?;
                let bp = (v * 100.0).round();
                if !(v > 0.0 && v <= 100.0) || (v * 100.0 - bp).abs() > 1e-6 {
                    return Err(
                        "discount.value must be a percentage above 0, at most 100, with at most 2 decimals".into(),
                    );
                }
                DiscountKind::Percentage {
                    basis_points: bp as i64,
                }
            }
            DiscountType::FixedAmount => {
                let amount = w
                    .value
                    .as_i64()
                    .filter(|a| (1..=MAX_AMOUNT).contains(a))
                    .ok_or("discount.value must be a positive whole amount in minor units")?;
                DiscountKind::FixedAmount { amount }
            }
        };
        let currency = w.currency.unwrap_or_else(|| "USD".into());
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err("discount.currency must be a three-letter ISO 4217 code".into());
        }
        for (name, amount) in [
            ("discount.max_discount", w.max_discount),
            ("discount.min_order_amount", w.min_order_amount),
        ] {
            if amount.is_some_and(|a| !(0..=MAX_AMOUNT).contains(&a)) {
                return Err(format!("{name} must be a non-negative amount in minor units"));
            }
        }
        Ok(Discount {
            kind,
            currency,
            max_discount: w.max_discount,
            min_order_amount: w.min_order_amount,
        })
    }
}

impl From<Discount> for DiscountWire {
    fn from(d: Discount) -> Self {
        let value = match d.kind {
            DiscountKind::Percentage { basis_points } if basis_points % 100 == 0 => {
                serde_json::Number::from(basis_points / 100)
            }
            DiscountKind::Percentage { basis_points } => {
                serde_json::Number::from_f64(basis_points as f64 / 100.0).unwrap_or_else(|| serde_json::Number::from(0))
            }
            DiscountKind::FixedAmount { amount } => serde_json::Number::from(amount),
        };
        DiscountWire {
            kind: d.discount_type(),
            value,
            currency: Some(d.currency),
            max_discount: d.max_discount,
            min_order_amount: d.min_order_amount,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<Discount, serde_json::Error> {
        serde_json::from_value(v)
    }

    #[test]
    fn parses_percentages_in_basis_points() {
        let d = parse(json!({"type": "percentage", "value": 12.5})).unwrap();
        assert_eq!(d.kind, DiscountKind::Percentage { basis_points: 1250 });
        assert_eq!(d.currency, "USD");
        assert_eq!(serde_json::to_value(&d).unwrap()["value"], json!(12.5));
    }

    #[test]
    fn rejects_bad_values() {
        for bad in [
            json!({"type": "percentage", "value": 0}),
            json!({"type": "percentage", "value": 100.01}),
            json!({"type": "percentage", "value": 10.123}),
            json!({"type": "fixed_amount", "value": 10.5}),
            json!({"type": "fixed_amount", "value": -5}),
            json!({"type": "bogus", "value": 5}),
            json!({"type": "fixed_amount", "value": 5, "currency": "usd"}),
            json!({"type": "fixed_amount", "value": 5, "max_discount": -1}),
            json!({"type": "fixed_amount", "value": 5, "extra": 1}),
        ] {
            assert!(parse(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn applies_caps_and_minimums() {
        let d =
            parse(json!({"type": "percentage", "value": 20, "max_discount": 1500, "min_order_amount": 1000})).unwrap();
        assert_eq!(d.apply(999), Err(CouponError::MinOrderNotMet));
        assert_eq!(
            d.apply(5000).unwrap(),
            Applied {
                discount_applied: 1000,
                final_price: 4000
            }
        );
        assert_eq!(d.apply(10_000).unwrap().discount_applied, 1500);
        let fixed = parse(json!({"type": "fixed_amount", "value": 2000})).unwrap();
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
