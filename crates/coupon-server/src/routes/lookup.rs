//! The preamble of every route that looks one code up (a claim by code, lock, unlock, redeem,
//! validate): the code in the path, the user the caller acts for, and the failed-look-up budget
//! the look-up draws on.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use coupon_core::{CodeText, UserId};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::Path;
use crate::throttle::{ClientIp, Lookups, Throttle};
use crate::wire::text;
use crate::AppState;

/// The code a route acts on, as its path names it.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct CodePath {
    #[param(schema_with = text::code_in_path, required = true)]
    pub code: String,
}

/// A look-up of one code as the request asks for it: who calls, from where, and the code as the
/// path spells it. Taken as a handler's first argument.
///
/// Not one extractor that checks everything: axum runs every extractor before the handler, so a
/// code parsed or a user named there would be refused before a malformed body, and before the
/// handler's own fields. The checks come in three steps instead, each where its error has always
/// been answered when several things are wrong at once:
/// 1. Extraction: the caller (401), then the path. The body or query is a later argument, so a
///    malformed body is answered before a malformed code.
/// 2. [`CodeLookup::parse`], first in the handler: the code (400), before the handler's own fields
///    (an order amount, an order id).
/// 3. [`ParsedLookup::for_user`], after those: the user acted for (400, or 403 for another), then
///    the budget (429). So a bad order amount is answered before acting for someone else.
pub struct CodeLookup {
    caller: Caller,
    ip: ClientIp,
    throttle: Throttle,
    code: String,
}

impl FromRequestParts<AppState> for CodeLookup {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let Ok(ip) = ClientIp::from_request_parts(parts, state).await;
        let Path(CodePath { code }) = Path::<CodePath>::from_request_parts(parts, state).await?;
        Ok(CodeLookup {
            caller,
            ip,
            throttle: state.throttle.clone(),
            code,
        })
    }
}

impl CodeLookup {
    /// The code parsed (canonical case); a malformed one is a 400.
    pub fn parse(self) -> Result<ParsedLookup, ApiError> {
        let code = CodeText::parse(&self.code)?;
        Ok(ParsedLookup {
            caller: self.caller,
            ip: self.ip,
            throttle: self.throttle,
            code,
        })
    }
}

/// A look-up with a well-formed code, not yet cleared to run.
pub struct ParsedLookup {
    caller: Caller,
    ip: ClientIp,
    throttle: Throttle,
    code: CodeText,
}

impl ParsedLookup {
    /// Clears the look-up: the user it is for (`user_id` as the caller may name it), then the
    /// failed-look-up budget, which refuses it when spent.
    pub async fn for_user(self, user_id: Option<String>) -> Result<Cleared, ApiError> {
        let user = self.caller.acting_for(user_id)?;
        let lookups = self.throttle.lookups(&self.caller, &user, self.ip).await?;
        Ok(Cleared {
            code: self.code,
            user,
            lookups,
        })
    }
}

/// A look-up cleared to run: its outcome goes to `lookups` ([`Lookups::charge`]).
pub struct Cleared {
    pub code: CodeText,
    pub user: UserId,
    pub lookups: Lookups,
}

#[cfg(test)]
mod tests;
