//! The CSV form of a book's codes: every code, fetched a keyset page at a time and written as it
//! goes, so a book of a million codes is exported in the memory of one page.

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use coupon_core::{Book, CodeInstance, CodeState, Timestamp};
use coupon_store::{CodeQuery, Coupons};
use futures::StreamExt;
use serde::Serialize;
use uuid::Uuid;

use super::PoolCode;
use crate::error::ApiError;
use crate::wire;

/// Codes fetched per query: large enough that a million codes take 200 queries, small enough
/// that a page is a few hundred KiB.
const EXPORT_PAGE: u32 = 5_000;
const HEADER: [&str; 8] = [
    "code",
    "instance",
    "status",
    "owner",
    "claimed_at",
    "claim_expires_at",
    "locked_until",
    "redemptions",
];

/// One line of the file: the JSON's fields but `metadata`, in the order of `HEADER`; absent
/// values are empty fields, times RFC 3339 as in the JSON.
#[derive(Serialize)]
struct Row<'a> {
    code: &'a str,
    instance: i64,
    status: wire::CodeState,
    owner: Option<&'a str>,
    claimed_at: Option<wire::Timestamp>,
    claim_expires_at: Option<wire::Timestamp>,
    locked_until: Option<wire::Timestamp>,
    redemptions: i64,
}

/// Whether the client prefers CSV: `text/csv` is acceptable and ranked above `application/json`
/// (JSON stays the answer to `*/*`, to no `Accept`, and to a tie).
pub fn wants_csv(headers: &HeaderMap) -> bool {
    let (mut csv, mut json) = (0.0_f32, 0.0_f32);
    let ranges = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','));
    for range in ranges {
        let mut parts = range.split(';');
        let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        match essence.as_str() {
            "text/csv" => csv = csv.max(q),
            "application/json" => json = json.max(q),
            _ => {}
        }
    }
    csv > 0.0 && csv > json
}

/// The export as a response. The first page is read before the answer starts, so an unknown book
/// is a 404 as in JSON; a failure later is logged here and cuts the body short (the client sees
/// a transfer that did not complete, never a file that looks whole).
pub async fn csv(
    coupons: Coupons,
    book_id: Uuid,
    state: Option<CodeState>,
    now: Timestamp,
) -> Result<Response, ApiError> {
    let query = move |after| CodeQuery {
        book_id,
        state,
        limit: EXPORT_PAGE,
        after,
    };
    let (book, first) = coupons.codes(query(None), now).await?;
    let head = lines(true, first.items, &book, now);
    let rest = futures::stream::unfold(first.next, move |next| {
        let coupons = coupons.clone();
        async move {
            let after = next?;
            match coupons.codes(query(Some(after)), now).await {
                Ok((book, page)) => Some((Ok(lines(false, page.items, &book, now)), page.next)),
                Err(e) => {
                    tracing::error!(error = %e, %book_id, "the CSV export of a book's codes failed");
                    Some((Err(e), None))
                }
            }
        }
    });
    let body = futures::stream::once(async move { Ok(head) }).chain(rest);
    let disposition = format!("attachment; filename=\"{book_id}-codes.csv\"");
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

/// A page of codes as CSV lines, after the header row if `header`.
fn lines(header: bool, codes: Vec<CodeInstance>, book: &Book, now: Timestamp) -> Bytes {
    let mut out = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::with_capacity(64 * (codes.len() + 1)));
    // Writing to memory fails only if serializing fails, which these plain fields cannot.
    if header {
        out.write_record(HEADER).expect("the header row is written to memory");
    }
    for code in codes {
        let code = PoolCode::new(code, book, now);
        out.serialize(Row {
            code: &code.code,
            instance: code.instance,
            status: code.status,
            owner: code.owner.as_deref(),
            claimed_at: code.claimed_at,
            claim_expires_at: code.claim_expires_at,
            locked_until: code.locked_until,
            redemptions: code.redemptions,
        })
        .expect("a row of plain fields serializes");
    }
    Bytes::from(out.into_inner().expect("flushing to memory cannot fail"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn accept(value: &str) -> bool {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        wants_csv(&headers)
    }

    #[test]
    fn csv_only_when_preferred() {
        assert!(!wants_csv(&HeaderMap::new()));
        assert!(accept("text/csv"));
        assert!(accept("Text/CSV; charset=utf-8"));
        assert!(accept("text/csv, */*;q=0.1"));
        assert!(accept("application/json;q=0.5, text/csv"));
        assert!(!accept("*/*"));
        assert!(!accept("application/json, text/csv"), "a tie is JSON");
        assert!(!accept("text/csv;q=0"));
        assert!(!accept("application/json"));
    }
}
