//! Bearer tokens and the roles they grant: JWTs signed with coupond's HS256 secret or by an identity
//! provider (`tokens`), the role read from a configurable claim (`roles`). Admins manage books and
//! act for anyone; a `service` (a checkout backend) acts for any user it names; a `user` acts only
//! for itself.

mod keys;
mod roles;
mod tokens;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use coupon_core::UserId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, NO_TOKEN};
use crate::AppState;

pub use keys::{KeyError, TokenKeys};
pub use roles::RoleNames;
pub use tokens::{Claims, JwtSecret, TokenAlgorithm, TokenRules, Tokens};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Service,
    User,
}

/// Who is calling, from a valid token.
#[derive(Debug, Clone)]
pub struct Caller {
    pub sub: UserId,
    pub role: Role,
}

impl Caller {
    /// The user a request acts for: the caller itself unless `user_id` names another, which only
    /// admins and services may do.
    pub fn acting_for(&self, user_id: Option<String>) -> Result<UserId, ApiError> {
        match user_id {
            None => Ok(self.sub.clone()),
            Some(id) => {
                let id = UserId::parse(id)?;
                if self.role == Role::User && id != self.sub {
                    return Err(ApiError::Forbidden("a user may act only for itself"));
                }
                Ok(id)
            }
        }
    }

    /// The user a `/users/{user_id}/...` path names, `me` being the caller, checked as
    /// [`Caller::acting_for`] checks it.
    pub fn user_in_path(&self, user_id: String) -> Result<UserId, ApiError> {
        if user_id == "me" {
            Ok(self.sub.clone())
        } else {
            self.acting_for(Some(user_id))
        }
    }
}

/// The caller a request's `Authorization` header names, checked.
pub(crate) fn authenticate(headers: &HeaderMap, state: &AppState) -> Result<Caller, ApiError> {
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(ApiError::Unauthorized(NO_TOKEN))?;
    let verified = state
        .tokens
        .verify(token.trim(), state.clock.now().millis())
        .map_err(ApiError::Unauthorized)?;
    let sub = UserId::parse(verified.sub).map_err(|_| ApiError::Unauthorized("the token's subject is not valid"))?;
    Ok(Caller {
        sub,
        role: verified.role,
    })
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // The throttle has already authenticated the request when it counted it.
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let caller = authenticate(&parts.headers, state)?;
        // Kept for what reads it later (the idempotency key's scope), so it is verified once.
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

/// A caller with the admin role. Taken before the body, so a non-admin hears 403 before any 400.
#[derive(Debug, Clone)]
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if caller.role != Role::Admin {
            return Err(ApiError::Forbidden("this needs the admin role"));
        }
        Ok(Admin)
    }
}

/// A caller that acts for the shop rather than as a customer: an admin or a service (a checkout
/// backend). Taken before the body, like [`Admin`].
#[derive(Debug, Clone)]
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if caller.role == Role::User {
            return Err(ApiError::Forbidden("this needs the admin or service role"));
        }
        Ok(Operator)
    }
}
