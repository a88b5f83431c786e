//! The order a redemption is made for, as its checkout names it: a repeated redeem of one order
//! counts once.

use crate::CouponError;

/// The longest order id accepted, in characters (as JSON Schema's `maxLength` counts).
pub const MAX_ORDER_ID: usize = 200;

/// A checkout's order id as its client names it. Only `parse` builds one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrderId(String);

impl OrderId {
    /// 1 to 200 characters, taken as given.
    pub fn parse(raw: impl Into<String>) -> Result<Self, CouponError> {
        let id = raw.into();
        if id.is_empty() || id.chars().count() > MAX_ORDER_ID {
            return Err(CouponError::invalid(
                "order_id",
                format!("must have 1 to {MAX_ORDER_ID} characters"),
            ));
        }
        Ok(OrderId(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn order_ids_have_1_to_200_characters() {
        assert_eq!(OrderId::parse("order-1").unwrap().as_str(), "order-1");
        assert_eq!(OrderId::parse("o".repeat(200)).unwrap().into_string().len(), 200);
        assert!(OrderId::parse("ü".repeat(200)).is_ok());
        for bad in [String::new(), "o".repeat(201), "ü".repeat(201)] {
            let e = OrderId::parse(bad.clone()).unwrap_err();
            assert!(
                matches!(&e, CouponError::Invalid(i) if i.field == "order_id"),
                "{bad:?}: {e}"
            );
        }
    }

    proptest! {
        #[test]
        fn order_ids_are_kept_as_given(raw in "\\PC{0,120}") {
            match OrderId::parse(raw.clone()) {
                Ok(id) => {
                    prop_assert!(!raw.is_empty() && raw.chars().count() <= MAX_ORDER_ID);
                    prop_assert_eq!(id.as_str(), raw.as_str());
                }
                Err(_) => prop_assert!(raw.is_empty() || raw.chars().count() > MAX_ORDER_ID),
            }
        }
    }
}
