//! Paging, the one way every list does it: `limit` (1 to 100, default 20) and an opaque `cursor`,
//! the `next_cursor` of the page before. Lists run newest first by (instant, id), and a cursor is
//! that key of a page's last item, `<millis>_<uuid simple>`.

use coupon_core::Timestamp;
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::error::ApiError;
use crate::wire::text;

pub const MAX_PAGE: u32 = 100;
const DEFAULT_PAGE: u32 = 20;

/// The `limit` and `cursor` query parameters of a list that takes nothing else.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// 1 to 100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    #[param(schema_with = text::page_cursor)]
    pub cursor: Option<String>,
}

/// Where a page starts and how long it is.
pub struct PageAt {
    pub limit: u32,
    pub after: Option<(Timestamp, Uuid)>,
}

impl PageAt {
    pub fn parse(limit: Option<u32>, cursor: Option<&str>) -> Result<Self, ApiError> {
        let limit = limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(ApiError::invalid("limit", format!("must be from 1 to {MAX_PAGE}")));
        }
        let after = cursor.map(parse_cursor).transpose()?;
        Ok(PageAt { limit, after })
    }
}

impl PageParams {
    pub fn page(&self) -> Result<PageAt, ApiError> {
        PageAt::parse(self.limit, self.cursor.as_deref())
    }
}

pub fn cursor((at, id): (Timestamp, Uuid)) -> String {
    format!("{}_{}", at.millis(), id.simple())
}

fn parse_cursor(cursor: &str) -> Result<(Timestamp, Uuid), ApiError> {
    let invalid = || ApiError::invalid("cursor", "not a cursor this service gave out");
    let (ms, id) = cursor.split_once('_').ok_or_else(invalid)?;
    Ok((
        Timestamp::from_millis(ms.parse().map_err(|_| invalid())?),
        Uuid::parse_str(id).map_err(|_| invalid())?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_as_its_key() {
        let key = (Timestamp::from_millis(1_780_315_200_000), Uuid::now_v7());
        let at = PageAt::parse(None, Some(&cursor(key))).unwrap();
        assert_eq!((at.limit, at.after), (20, Some(key)));
        for bad in ["", "12", "x_y", "12_not-a-uuid", "_0190a0c0b0a07000800000000000000a"] {
            assert!(PageAt::parse(None, Some(bad)).is_err(), "{bad}");
        }
        assert!(PageAt::parse(Some(0), None).is_err());
        assert!(PageAt::parse(Some(MAX_PAGE + 1), None).is_err());
        assert_eq!(PageAt::parse(Some(MAX_PAGE), None).unwrap().limit, MAX_PAGE);
    }
}
