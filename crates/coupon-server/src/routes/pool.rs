//! A book's pool of codes, for its admin: list it (a JSON page, or the whole book as CSV), import
//! codes from a CSV or text file, and remove codes nobody ever held.
//!
//! The CSV export streams (`export`) and the import spools the body to a file it reads twice
//! (`import`), so neither holds a million codes in memory.

mod export;
mod import;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use coupon_core::{Book, CodeInstance, CodeState};
use coupon_store::CodeQuery;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Admin;
use crate::error::{ApiError, Problem, Problems};
use crate::extract::{Path, Query};
use crate::idempotency::{Idempotent, KeyHeader, KeyProblems, SentKey};
use crate::wire::{self, text, Metadata, Timestamp};
use crate::AppState;

/// The import route's body limit: a million codes of up to 64 characters, with room to spare.
/// Other routes have theirs in `Limits`.
pub const MAX_IMPORT_BYTES: usize = 256 * 1024 * 1024;
const MAX_PAGE: u32 = 1000;
const DEFAULT_PAGE: u32 = 100;
const MAX_REMOVE: usize = 100_000;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PoolParams {
    /// Only codes in this state now.
    #[param(value_type = Option<wire::CodeState>)]
    pub status: Option<String>,
    /// 1 to 1000, default 100. JSON only: the CSV holds every code.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    #[param(schema_with = text::code_cursor)]
    pub cursor: Option<String>,
}

/// A code of the book as its admin sees it now.
#[derive(Serialize, ToSchema)]
pub struct PoolCode {
    pub code: String,
    /// 0 in unique mode; in shared mode, which instance of the book's code.
    pub instance: i64,
    pub status: wire::CodeState,
    /// Who holds the code now; null while it is in the pool, a lapsed claim included.
    pub owner: Option<String>,
    pub claimed_at: Option<Timestamp>,
    pub claim_expires_at: Option<Timestamp>,
    /// Set while a checkout lock holds the code.
    pub locked_until: Option<Timestamp>,
    pub redemptions: i64,
    /// What the holder's claim carried.
    pub metadata: Metadata,
}

impl PoolCode {
    /// The code at `now`. A claim that lapsed has left no trace: the code is available, with no
    /// owner, claim times or metadata, as the next claimer will get it.
    fn new(code: CodeInstance, book: &Book, now: coupon_core::Timestamp) -> Self {
        let status = code.state(book, now).into();
        let held = code.holder(now).is_some();
        let locked_until = code.live_lock(now).and(code.locked_until).map(Timestamp);
        let claim = |t: Option<coupon_core::Timestamp>| t.filter(|_| held).map(Timestamp);
        PoolCode {
            status,
            owner: code.owner.filter(|_| held),
            claimed_at: claim(code.claimed_at),
            claim_expires_at: claim(code.claim_expires_at),
            locked_until,
            redemptions: code.redemptions,
            metadata: if held { code.metadata } else { Default::default() }.into(),
            instance: code.instance,
            code: code.code,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PoolCodes {
    pub codes: Vec<PoolCode>,
    pub next_cursor: Option<String>,
}

fn parse_status(status: Option<&str>) -> Result<Option<CodeState>, ApiError> {
    status
        .map(|s| {
            CodeState::parse(s)
                .ok_or_else(|| ApiError::invalid("status", "must be available, active, locked, redeemed or expired"))
        })
        .transpose()
}

/// A cursor is the decimal id of the last code of a page, as `list` wrote it.
fn parse_cursor(cursor: &str) -> Result<i64, ApiError> {
    let invalid = || ApiError::invalid("cursor", "not a cursor this service gave out");
    if cursor.is_empty() || cursor.starts_with('0') || !cursor.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    cursor.parse().map_err(|_| invalid())
}

/// The book's codes in the order they were added, a page at a time; with `Accept: text/csv`,
/// every code (in the state asked for) as one streamed CSV file.
#[utoipa::path(get, path = "/coupons/{book_id}/codes", operation_id = "list_codes", tag = "books", security(("bearer" = [])),
    params(("book_id" = Uuid, Path), PoolParams),
    responses(
        (status = 200, description = "A page of codes; or, when `Accept` prefers `text/csv`, every code as CSV with the header row `code,instance,status,owner,claimed_at,claim_expires_at,locked_until,redemptions`",
            content((PoolCodes = "application/json"), (String = "text/csv")),
            headers(("Content-Disposition" = String, description = "CSV only: `attachment; filename=\"<book_id>-codes.csv\"`"))),
        Problems))]
pub async fn list(
    _: Admin,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
    Query(p): Query<PoolParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let state = parse_status(p.status.as_deref())?;
    let limit = p.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::invalid("limit", format!("must be from 1 to {MAX_PAGE}")));
    }
    let after = p.cursor.as_deref().map(parse_cursor).transpose()?;
    let now = s.clock.now();
    if export::wants_csv(&headers) {
        return export::csv(s.coupons.clone(), id, state, now).await;
    }
    let query = CodeQuery {
        book_id: id,
        state,
        limit,
        after,
    };
    let (book, page) = s.coupons.codes(query, now).await?;
    Ok(Json(PoolCodes {
        codes: page.items.into_iter().map(|c| PoolCode::new(c, &book, now)).collect(),
        next_cursor: page.next.map(|id| id.to_string()),
    })
    .into_response())
}

#[derive(Clone, Serialize, ToSchema)]
pub struct ImportedCodes {
    pub uploaded_codes_count: u64,
    /// Codes that already existed (in any book) or came twice in the file; they were skipped.
    pub duplicates_count: u64,
    /// The first 1,000 of them.
    pub duplicates: Vec<String>,
}

/// Imports codes from a file into a unique-mode book: the first column of each line is a code; a
/// first line whose first column is `code` is a header, and blank lines are skipped. Every code is
/// checked, and the book's room for all of them, before any is written.
#[utoipa::path(post, path = "/coupons/{book_id}/codes/import", operation_id = "import_codes", tag = "books", security(("bearer" = [])),
    params(("book_id" = Uuid, Path), KeyHeader),
    request_body(description = "CSV or plain text, one code per line (up to 256 MiB)",
        content((inline(CodeFile) = "text/csv"), (inline(CodeFile) = "text/plain"))),
    responses((status = 201, body = ImportedCodes), Problems, KeyProblems,
        (status = 409, body = Problem, content_type = "application/problem+json", description = "shared_book, total_codes_exceeded, book_inactive, idempotency_in_flight"),
        (status = 413, body = Problem, content_type = "application/problem+json", description = "payload_too_large: over 256 MiB"),
        (status = 415, body = Problem, content_type = "application/problem+json", description = "unsupported_media_type: the body is not text/csv or text/plain")))]
pub async fn import(
    _: Admin,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
    req: Request,
) -> Result<(StatusCode, Json<ImportedCodes>), ApiError> {
    import::check_media_type(req.headers())?;
    let mut sent = SentKey::of(&req, &s);
    let file = import::spool(req, sent.as_mut()).await?;
    let key = sent.map(SentKey::finish).transpose()?;
    // A retry of an import that finished is answered before any of its codes is read again.
    if let Some(key) = &key {
        s.coupons.replay(key.key()).await?;
    }
    let (file, count) = import::count(file).await?;
    let (book, held) = s.coupons.book_supply(id).await?;
    // Room for every line, duplicates included: a file that fits is never refused half-way.
    book.check_room(held, count as i64)?;
    let imported = import::add_all(&s.coupons, id, file, s.clock.now(), key).await?;
    Ok((StatusCode::CREATED, Json(imported)))
}

/// The body of an import, for the document.
pub struct CodeFile;

impl utoipa::PartialSchema for CodeFile {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        text::code_file().into()
    }
}

impl ToSchema for CodeFile {}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveCodes {
    /// Up to 100,000 codes; matched case-insensitively.
    #[schema(schema_with = text::codes)]
    pub codes: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct KeptCode {
    pub code: String,
    /// `unknown` (not in the book), `held` (a user holds it), `redeemed`, or `has_history` (a
    /// rolled-back redemption refers to it).
    pub reason: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct RemovedCodes {
    pub removed_count: u64,
    /// The codes that stayed, in the order named, each once.
    pub not_removed: Vec<KeptCode>,
}

/// Removes codes nobody ever held from a unique-mode book; `total_codes` stays, so others may
/// replace them.
#[utoipa::path(post, path = "/coupons/{book_id}/codes/remove", operation_id = "remove_codes", tag = "books", request_body = RemoveCodes,
    security(("bearer" = [])), params(("book_id" = Uuid, Path), KeyHeader),
    responses((status = 200, body = RemovedCodes), Problems, KeyProblems,
        (status = 409, body = Problem, content_type = "application/problem+json", description = "shared_book, book_inactive, idempotency_in_flight")))]
pub async fn remove(
    _: Admin,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
    Idempotent(req, key): Idempotent<RemoveCodes>,
) -> Result<Json<RemovedCodes>, ApiError> {
    let codes = super::code_list(&req.codes, MAX_REMOVE)?;
    let key = key.map(|k| k.answering(StatusCode::OK, RemovedCodes::of));
    let removed = s.coupons.remove_codes(id, codes, s.clock.now(), key).await?;
    Ok(Json(RemovedCodes::of(&removed)))
}

impl RemovedCodes {
    fn of(removed: &coupon_store::RemovedCodes) -> Self {
        RemovedCodes {
            removed_count: removed.removed,
            not_removed: removed
                .not_removed
                .iter()
                .map(|(code, why)| KeptCode {
                    code: code.clone(),
                    reason: why.as_str(),
                })
                .collect(),
        }
    }
}
