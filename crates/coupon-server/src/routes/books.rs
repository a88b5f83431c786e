//! Coupon books: created and managed by admins, searched by anyone signed in.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use coupon_core::book::MAX_SUPPLY;
use coupon_core::CodePattern;
use coupon_store::{AddedCodes, Scope, SearchQuery};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::{Admin, Caller};
use crate::error::{ApiError, Problem, Problems};
use crate::extract::{Path, Query};
use crate::idempotency::{Idempotent, KeyHeader, KeyProblems};
use crate::routes::page::{self, PageAt};
use crate::wire::{text, Book, BookPatch, BookStats, DiscountType, NewBook};
use crate::AppState;

const MAX_UPLOAD: usize = 100_000;

/// Creates a book. With `code_pattern`, its `total_codes` codes exist when this returns.
#[utoipa::path(post, path = "/coupons", tag = "books", request_body = NewBook,
    security(("bearer" = [])), params(KeyHeader),
    responses((status = 201, body = Book), Problems, KeyProblems, (status = 409, body = Problem, content_type = "application/problem+json", description = "code_taken: the shared code exists; idempotency_in_flight")))]
pub async fn create(
    _: Admin,
    State(s): State<AppState>,
    Idempotent(new, key): Idempotent<NewBook>,
) -> Result<(StatusCode, Json<Book>), ApiError> {
    let draft = coupon_core::NewBook::from(new).into_draft(Uuid::now_v7(), s.clock.now())?;
    let key = key.map(|k| k.answering(StatusCode::CREATED, Book::of));
    Ok((
        StatusCode::CREATED,
        Json(Book::of(&s.coupons.create_book(draft, key).await?)),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct BookWithStats {
    #[serde(flatten)]
    pub book: Book,
    pub stats: BookStats,
}

/// A book with counts over its codes.
#[utoipa::path(get, path = "/coupons/{book_id}", tag = "books", security(("bearer" = [])),
    params(("book_id" = Uuid, Path)),
    responses((status = 200, body = BookWithStats), Problems))]
pub async fn show(_: Admin, State(s): State<AppState>, Path(id): Path<Uuid>) -> Result<Json<BookWithStats>, ApiError> {
    let (book, stats) = s.coupons.book_with_stats(id, s.clock.now()).await?;
    Ok(Json(BookWithStats {
        book: book.into(),
        stats: stats.into(),
    }))
}

/// Changes name, description, `expires_at` or status. `paused` stops new claims; `archived`
/// stops everything but reads, for good.
#[utoipa::path(patch, path = "/coupons/{book_id}", tag = "books", request_body = BookPatch,
    security(("bearer" = [])), params(("book_id" = Uuid, Path), KeyHeader),
    responses((status = 200, body = Book), Problems, KeyProblems,
        (status = 409, body = Problem, content_type = "application/problem+json", description = "book_inactive: the book is archived; window_conflict: the new expires_at falls before the book's starts_at; idempotency_in_flight")))]
pub async fn update(
    _: Admin,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
    Idempotent(patch, key): Idempotent<BookPatch>,
) -> Result<Json<Book>, ApiError> {
    let key = key.map(|k| k.answering(StatusCode::OK, Book::of));
    let book = s.coupons.update_book(id, patch.into(), s.clock.now(), key).await?;
    Ok(Json(Book::of(&book)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadCodes {
    pub coupon_book_id: Uuid,
    /// Up to 100,000 codes; matched case-insensitively.
    #[schema(schema_with = text::codes)]
    pub codes: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Uploaded {
    pub uploaded_codes_count: u64,
    /// Codes that already existed (in any book) or came twice; they were skipped.
    pub duplicates: Vec<String>,
}

impl Uploaded {
    fn of(added: &AddedCodes) -> Self {
        Uploaded {
            uploaded_codes_count: added.inserted,
            duplicates: added.duplicates.clone(),
        }
    }
}

/// Uploads codes into a unique-mode book, never past its `total_codes`.
#[utoipa::path(post, path = "/coupons/codes", tag = "books", request_body = UploadCodes,
    security(("bearer" = [])), params(KeyHeader),
    responses((status = 201, body = Uploaded), Problems, KeyProblems,
        (status = 409, body = Problem, content_type = "application/problem+json", description = "shared_book, total_codes_exceeded, book_inactive, idempotency_in_flight")))]
pub async fn upload(
    _: Admin,
    State(s): State<AppState>,
    Idempotent(req, key): Idempotent<UploadCodes>,
) -> Result<(StatusCode, Json<Uploaded>), ApiError> {
    let codes = super::code_list(&req.codes, MAX_UPLOAD)?;
    let key = key.map(|k| k.answering(StatusCode::CREATED, Uploaded::of));
    let added = s
        .coupons
        .add_codes(req.coupon_book_id, codes, s.clock.now(), key)
        .await?;
    Ok((StatusCode::CREATED, Json(Uploaded::of(&added))))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateCodes {
    #[schema(minimum = 1, maximum = 10_000_000)]
    pub count: i64,
    /// Defaults to the book's `code_pattern`, else `****-****-****` (twelve letters or digits).
    #[serde(default)]
    #[schema(schema_with = text::code_pattern)]
    pub pattern: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Generated {
    pub generated_codes_count: u64,
}

/// Draws new codes from a pattern into a unique-mode book.
#[utoipa::path(post, path = "/coupons/{book_id}/codes/generate", tag = "books", request_body = GenerateCodes,
    security(("bearer" = [])), params(("book_id" = Uuid, Path), KeyHeader),
    responses((status = 201, body = Generated), Problems, KeyProblems,
        (status = 409, body = Problem, content_type = "application/problem+json", description = "shared_book, total_codes_exceeded, book_inactive, idempotency_in_flight")))]
pub async fn generate(
    _: Admin,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
    Idempotent(req, key): Idempotent<GenerateCodes>,
) -> Result<(StatusCode, Json<Generated>), ApiError> {
    if !(1..=MAX_SUPPLY).contains(&req.count) {
        return Err(ApiError::invalid("count", format!("must be from 1 to {MAX_SUPPLY}")));
    }
    let pattern = req.pattern.as_deref().map(CodePattern::parse).transpose()?;
    let form = |n: &u64| Generated {
        generated_codes_count: *n,
    };
    let key = key.map(|k| k.answering(StatusCode::CREATED, form));
    let n = s
        .coupons
        .generate_codes(id, pattern, req.count as u64, s.clock.now(), key)
        .await?;
    Ok((StatusCode::CREATED, Json(form(&n))))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Words that must all appear in the name, description or tags.
    #[param(max_length = 200)]
    pub q: Option<String>,
    pub category: Option<String>,
    /// Discount type: `percentage` or `fixed_amount`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub kind: Option<DiscountType>,
    /// 1 to 100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    #[param(schema_with = text::page_cursor)]
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SearchResults {
    pub results: Vec<Book>,
    pub next_cursor: Option<String>,
}

/// Full-text search over active books inside their window, newest first.
#[utoipa::path(get, path = "/coupons/search", tag = "books", security(("bearer" = [])), params(SearchParams),
    responses((status = 200, body = SearchResults), Problems))]
pub async fn search(
    _: Caller,
    State(s): State<AppState>,
    Query(p): Query<SearchParams>,
) -> Result<Json<SearchResults>, ApiError> {
    check_text_query(p.q.as_deref())?;
    // A book's category has at most 100 characters: a longer one matches none.
    if p.category.as_ref().is_some_and(|c| c.chars().count() > 100) {
        return Err(ApiError::invalid("category", "at most 100 characters"));
    }
    let PageAt { limit, after } = PageAt::parse(p.limit, p.cursor.as_deref())?;
    let query = SearchQuery {
        scope: Scope::Live,
        text: p.q,
        category: p.category,
        discount_type: p.kind.map(Into::into),
        limit,
        after,
    };
    SearchResults::found(&s, query).await
}

impl SearchResults {
    /// The page of books `query` finds now.
    pub(crate) async fn found(s: &AppState, query: SearchQuery) -> Result<Json<SearchResults>, ApiError> {
        let page = s.coupons.search_books(query, s.clock.now()).await?;
        Ok(Json(SearchResults {
            results: page.items.into_iter().map(Book::from).collect(),
            next_cursor: page.next.map(page::cursor),
        }))
    }
}

/// Full-text queries are at most this many characters.
pub(crate) fn check_text_query(q: Option<&str>) -> Result<(), ApiError> {
    if q.is_some_and(|q| q.chars().count() > 200) {
        return Err(ApiError::invalid("q", "at most 200 characters"));
    }
    Ok(())
}
