//! The failed-look-up budget: a route that looks one code up takes it before the look-up, and
//! charges the outcome to it after, so that guessing codes is stopped.

use coupon_core::{CouponError, UserId};
use coupon_store::StoreError;

use super::{Bucket, ClientIp, Throttle};
use crate::auth::{Caller, Role};
use crate::error::ApiError;

impl Throttle {
    /// The failed-look-up budgets a code look-up by `caller` for `user` from `ip` draws on, checked:
    /// a spent budget refuses the look-up before it is made. Admins, who can list every code, have
    /// none. A service's look-ups count against the user it acts for and not against its own IP,
    /// which carries every customer of the shop.
    pub async fn lookups(&self, caller: &Caller, user: &UserId, ip: ClientIp) -> Result<Lookups, ApiError> {
        let mut keys = Vec::new();
        if self.0.config.enabled {
            match caller.role {
                Role::Admin => {}
                Role::Service => keys.push((Bucket::LookupsPerUser, user.as_str().to_owned())),
                Role::User => {
                    keys.push((Bucket::LookupsPerUser, user.as_str().to_owned()));
                    keys.push((Bucket::LookupsPerIp, ip.0.to_string()));
                }
            }
        }
        for (bucket, key) in &keys {
            let verdict = self.peek(*bucket, key).await;
            if !verdict.allowed {
                return Err(ApiError::TooManyRequests {
                    code: "too_many_failed_lookups",
                    detail: "too many look-ups of unknown codes or codes of others; try again later",
                    retry_after: verdict.retry_after,
                });
            }
        }
        Ok(Lookups {
            throttle: self.clone(),
            keys,
        })
    }
}

/// The budgets one code look-up draws on; told the outcome, it counts a failure against each.
#[must_use = "a look-up's outcome must be charged"]
pub struct Lookups {
    throttle: Throttle,
    keys: Vec<(Bucket, String)>,
}

impl Lookups {
    /// Charges the look-up's outcome and hands it back unchanged. Only a refusal by a rule of the
    /// domain can count: an unknown code or a code of another's is a failure; a store that failed
    /// learned nothing about the code, so it is not.
    pub async fn charge<T, E: Refusal>(self, outcome: Result<T, E>) -> Result<T, E> {
        let refusal = outcome.as_ref().err().and_then(Refusal::refusal);
        if matches!(refusal, Some(CouponError::NotFound(_) | CouponError::NotAssignedToUser)) {
            for (bucket, key) in &self.keys {
                self.throttle.fail(*bucket, key).await;
            }
        }
        outcome
    }
}

/// An error a look-up may end in, as far as the budget cares: the domain's refusal inside, if any.
/// The routes meet it as the domain's error, the store's, or the API's.
pub trait Refusal {
    fn refusal(&self) -> Option<&CouponError>;
}

impl Refusal for CouponError {
    fn refusal(&self) -> Option<&CouponError> {
        Some(self)
    }
}

impl Refusal for StoreError {
    fn refusal(&self) -> Option<&CouponError> {
        match self {
            StoreError::Rejected(e) => Some(e),
            _ => None,
        }
    }
}

impl Refusal for ApiError {
    fn refusal(&self) -> Option<&CouponError> {
        self.as_coupon()
    }
}
