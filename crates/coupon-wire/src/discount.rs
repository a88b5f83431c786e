//! Discounts in JSON: `{"type": "percentage", "value": 12.5, "currency": "USD", ...}`. A
//! percentage is written as a number with up to 2 decimals; amounts are whole minor units.

use coupon_core::amount::MAX_AMOUNT;
use coupon_core::{self as domain, CouponError, DiscountKind};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::openapi::schema::{
    AdditionalProperties, KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::RefOr;
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

/// The JSON form: `{"type": "percentage", "value": 12.5, "currency": "USD", ...}`. Its schema
/// (below) is one object per type, since what `value` may be depends on `type`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Discount {
    #[serde(rename = "type")]
    pub kind: DiscountType,
    /// A percentage (0 < v <= 100, at most 2 decimals) or an amount in minor units.
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

impl utoipa::PartialSchema for Discount {
    fn schema() -> RefOr<Schema> {
        let amount = |description: &str| {
            ObjectBuilder::new()
                .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                .minimum(Some(0))
                .maximum(Some(MAX_AMOUNT))
                .description(Some(description))
        };
        let kind = |name: &str, value: ObjectBuilder, description: &str| {
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .title(Some(name))
                .property(
                    "type",
                    ObjectBuilder::new().schema_type(Type::String).enum_values(Some([name])),
                )
                .property("value", value.description(Some(description)))
                .property(
                    "currency",
                    ObjectBuilder::new()
                        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
                        .pattern(Some("^[A-Z]{3}$"))
                        .min_length(Some(3))
                        .max_length(Some(3))
                        .description(Some("ISO 4217 code; defaults to USD.")),
                )
                .property("max_discount", amount("Cap on the discount, minor units."))
                .property(
                    "min_order_amount",
                    amount("Smallest order the discount applies to, minor units."),
                )
                .required("type")
                .required("value")
                .additional_properties(Some(AdditionalProperties::FreeForm(false)))
                .build()
        };
        let percentage = ObjectBuilder::new()
            .schema_type(Type::Number)
            .exclusive_minimum(Some(0))
            .maximum(Some(100))
            .multiple_of(Some(0.01));
        let fixed = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(1))
            .maximum(Some(MAX_AMOUNT));
        OneOfBuilder::new()
            .item(kind(
                "percentage",
                percentage,
                "Percent off: above 0, at most 100, at most 2 decimals.",
            ))
            .item(kind("fixed_amount", fixed, "Minor units off."))
            .description(Some("What a book takes off an order."))
            .into()
    }
}

impl ToSchema for Discount {}

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
