//! The code a route looks up, as its path names it.

use coupon_core::CodeText;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::ApiError;
use crate::wire::text;

/// The code a route acts on, as its path names it.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct CodePath {
    #[param(schema_with = text::code_in_path, required = true)]
    pub code: String,
}

pub fn code_param(raw: &str) -> Result<CodeText, ApiError> {
    Ok(CodeText::parse(raw)?)
}
