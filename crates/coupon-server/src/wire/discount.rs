//! Discounts in JSON: `{"type": "percentage", "value": 12.5, "currency": "USD", ...}`. A
//! percentage is written as a number with up to 2 decimals; amounts are whole minor units.

use coupon_core::{self as domain, CouponError, DiscountKind};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

/// The two kinds of discount, as named in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DiscountType {
    Percentage,
    FixedAmount,
}

impl From<DiscountType> for domain::discount::DiscountType {
    fn from(t: DiscountType) -> Self {
        match t {
            DiscountType::Percentage => domain::discount::DiscountType::Percentage,
            DiscountType::FixedAmount => domain::discount::DiscountType::FixedAmount,
        }
    }
}

impl From<domain::discount::DiscountType> for DiscountType {
    fn from(t: domain::discount::DiscountType) -> Self {
        match t {
            domain::discount::DiscountType::Percentage => DiscountType::Percentage,
            domain::discount::DiscountType::FixedAmount => DiscountType::FixedAmount,
        }
    }
}

/// The JSON form: `{"type": "percentage", "value": 12.5, "currency": "USD", ...}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Discount {
    #[serde(rename = "type")]
    pub kind: DiscountType,
    /// A percentage (0 < v <= 100, at most 2 decimals) or an amount in minor units.
    #[schema(value_type = f64, exclusive_minimum = 0)]
    pub value: serde_json::Number,
    /// ISO 4217 code; defaults to USD.
    #[serde(default)]
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: Option<String>,
    /// Cap on the discount, minor units.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_000_000_000_000_000_i64)]
    pub max_discount: Option<i64>,
    /// Smallest order the discount applies to, minor units.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_000_000_000_000_000_i64)]
    pub min_order_amount: Option<i64>,
}

impl TryFrom<Discount> for domain::Discount {
    /// A sentence naming the field, as serde reports it.
    type Error = String;

    fn try_from(w: Discount) -> Result<Self, String> {
        let kind = match w.kind {
            DiscountType::Percentage => {
                DiscountKind::percentage(w.value.as_f64().ok_or("discount.value must be a number")?)
                    .map_err(sentence)?
            }
            DiscountType::FixedAmount => DiscountKind::FixedAmount {
                amount: w.value.as_i64().ok_or_else(|| {
                    sentence(CouponError::invalid(
                        "discount.value",
                        domain::discount::FIXED_AMOUNT_RULE,
                    ))
                })?,
            },
        };
        let currency = w.currency.unwrap_or_else(|| "USD".into());
        domain::Discount::new(kind, currency, w.max_discount, w.min_order_amount).map_err(sentence)
    }
}

/// `discount.currency must be ...`: the field and what is wrong with it, in one sentence.
fn sentence(e: CouponError) -> String {
    match e {
        CouponError::Invalid(i) => format!("{} {}", i.field, i.message),
        other => other.to_string(),
    }
}

impl From<domain::Discount> for Discount {
    fn from(d: domain::Discount) -> Self {
        let value = match d.kind {
            DiscountKind::Percentage { basis_points } if basis_points % 100 == 0 => {
                serde_json::Number::from(basis_points / 100)
            }
            DiscountKind::Percentage { basis_points } => {
                serde_json::Number::from_f64(basis_points as f64 / 100.0).unwrap_or_else(|| serde_json::Number::from(0))
            }
            DiscountKind::FixedAmount { amount } => serde_json::Number::from(amount),
        };
        Discount {
            kind: d.discount_type().into(),
            value,
            currency: Some(d.currency),
            max_discount: d.max_discount,
            min_order_amount: d.min_order_amount,
        }
    }
}

/// Reads a discount and checks it (`deserialize_with`), so that a bad one fails the body as it
/// is read, naming the field.
pub fn checked<'de, D: Deserializer<'de>>(d: D) -> Result<domain::Discount, D::Error> {
    let wire = Discount::deserialize(d)?;
    domain::Discount::try_from(wire).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<domain::Discount, serde_json::Error> {
        checked(v)
    }

    #[test]
    fn parses_percentages_in_basis_points() {
        let d = parse(json!({"type": "percentage", "value": 12.5})).unwrap();
        assert_eq!(d.kind, DiscountKind::Percentage { basis_points: 1250 });
        assert_eq!(d.currency, "USD");
        assert_eq!(serde_json::to_value(Discount::from(d)).unwrap()["value"], json!(12.5));
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
    fn names_the_field_in_the_sentence() {
        for (bad, message) in [
            (
                json!({"type": "percentage", "value": 10.123}),
                "discount.value must be a percentage above 0, at most 100, with at most 2 decimals",
            ),
            (
                json!({"type": "fixed_amount", "value": 10.5}),
                "discount.value must be a positive whole amount in minor units",
            ),
            (
                json!({"type": "fixed_amount", "value": 0}),
                "discount.value must be a positive whole amount in minor units",
            ),
            (
                json!({"type": "fixed_amount", "value": 5, "currency": "usd"}),
                "discount.currency must be a three-letter ISO 4217 code",
            ),
            (
                json!({"type": "fixed_amount", "value": 5, "min_order_amount": -1}),
                "discount.min_order_amount must be a non-negative amount in minor units",
            ),
        ] {
            assert_eq!(parse(bad).unwrap_err().to_string(), message);
        }
    }

    #[test]
    fn writes_whole_percentages_as_integers() {
        let d = parse(json!({"type": "percentage", "value": 15, "max_discount": 3000})).unwrap();
        assert_eq!(
            serde_json::to_value(Discount::from(d)).unwrap(),
            json!({"type": "percentage", "value": 15, "currency": "USD", "max_discount": 3000, "min_order_amount": null})
        );
    }
}
