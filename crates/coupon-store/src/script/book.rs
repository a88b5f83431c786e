//! A book: create it (with its shared instances or generated codes), change it, read it with its
//! supply or its stats, and search the catalog. A book's row lock is what every change to it or
//! its supply, and every claim from it, takes first.

use coupon_core::discount::DiscountType;
use coupon_core::{Book, BookDraft, BookPatch, BookStats, BookStatus, CodeMode, CodePattern, CouponError, Timestamp};
use uuid::Uuid;

use super::stock::{self, Announce, Pool};
use crate::backend::{Fields, Tx};
use crate::outbox::{Change, Journal};
use crate::rows;
use crate::statements::Q;
use crate::{Page, Scope, SearchPage, SearchQuery, StoreError};

write!(CreateBook { draft: BookDraft } -> (Book, u64) = |tx, s, events| create(tx, events, &s.draft).await);
read!(LoadBook { id: Uuid } -> Book = |tx, s| load(tx, s.id).await);
read!(BookSupply { id: Uuid } -> (Book, i64) = |tx, s| with_supply(tx, s.id).await);
write!(UpdateBook { id: Uuid, patch: BookPatch, now: Timestamp } -> Book =
    |tx, s, events| update(tx, events, s.id, s.patch.clone(), s.now).await);
read!(BookWithStats { id: Uuid, now: Timestamp } -> (Book, BookStats) = |tx, s| with_stats(tx, s.id, s.now).await);
read!(SearchBooks { query: SearchQuery, now: Timestamp } -> SearchPage = |tx, s| search(tx, &s.query, s.now).await);

/// Rounds in a row in which a pattern may draw nothing new before generation gives up. With the
/// space at least 1000 times the draw, a round rarely loses more than a thousandth to collisions.
const DRAW_ATTEMPTS: usize = 20;
/// Codes drawn and inserted per round, so a large generation never holds them all in memory.
const DRAW_CHUNK: u64 = 50_000;

/// A book's row as locked for a change to it or its supply.
pub(crate) struct LockedBook {
    pub book: Book,
    /// Its supply counter: the codes (or shared instances) it holds.
    pub generated: i64,
    pub cursor: i64,
    pub pool: Pool,
}

pub(crate) async fn lock<T: Tx>(tx: &T, id: Uuid) -> Result<Option<LockedBook>, StoreError> {
    match tx.first(Q::BookLock { book_id: id.into() }).await? {
        None => Ok(None),
        Some(r) => Ok(Some(LockedBook {
            book: rows::book(&r, "")?,
            generated: r.i64("generated")?,
            cursor: r.i64("deal_cursor")?,
            pool: Pool::read(&r)?,
        })),
    }
}

pub(crate) async fn lock_existing<T: Tx>(tx: &T, id: Uuid) -> Result<LockedBook, StoreError> {
    lock(tx, id).await?.ok_or(StoreError::not_found("coupon book"))
}

pub(crate) async fn load<T: Tx>(tx: &T, id: Uuid) -> Result<Book, StoreError> {
    Ok(with_supply(tx, id).await?.0)
}

/// The book and its supply counter (the codes it holds), read from its row.
pub(crate) async fn with_supply<T: Tx>(tx: &T, id: Uuid) -> Result<(Book, i64), StoreError> {
    let row = tx.first(Q::BookRead { book_id: id.into() }).await?;
    let row = row.ok_or(StoreError::not_found("coupon book"))?;
    Ok((rows::book(&row, "")?, row.i64("generated")?))
}

/// The book, and how many codes (or shared instances) were created with it.
pub(crate) async fn create<T: Tx>(tx: &T, events: &Journal, draft: &BookDraft) -> Result<(Book, u64), StoreError> {
    let b = &draft.book;
    let tags = serde_json::to_string(&b.tags).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let metadata = rows::metadata_json(&b.metadata);
    let p = &b.policies;
    tx.exec(Q::BookInsert {
        id: b.id.into(),
        name: (&b.name).into(),
        description: (&b.description).into(),
        category: (&b.category).into(),
        tags: (&tags).into(),
        discount_type: b.discount.type_name().into(),
        discount_value: b.discount.raw_value().into(),
        currency: (&b.discount.currency).into(),
        max_discount: b.discount.max_discount.into(),
        min_order_amount: b.discount.min_order_amount.into(),
        starts_at: b.starts_at.map(Timestamp::millis).into(),
        expires_at: b.expires_at.map(Timestamp::millis).into(),
        status: b.status.as_str().into(),
        code_mode: b.code_mode.as_str().into(),
        shared_code: (&b.code).into(),
        code_pattern: (&b.code_pattern).into(),
        total_codes: b.total_codes.into(),
        max_codes_per_user: p.max_codes_per_user.into(),
        max_redemptions_per_user: p.max_redemptions_per_user.into(),
        max_redemptions_per_code: p.max_redemptions_per_code.into(),
        claims_per_user_per_day: p.claims_per_user_per_day.into(),
        claim_ttl_seconds: p.claim_ttl_seconds.into(),
        lock_ttl_seconds: p.lock_ttl_seconds.into(),
        metadata: (&metadata).into(),
        created_at: b.created_at.millis().into(),
        updated_at: b.updated_at.millis().into(),
        low_stock_threshold: b.low_stock_threshold.into(),
    })
    .await?;
    let created = match (b.code_mode, &b.code, &draft.pattern, b.total_codes) {
        (CodeMode::Shared, Some(code), _, Some(total)) => {
            let inserted = tx
                .exec(Q::SharedInstances {
                    book_id: b.id.into(),
                    code: code.into(),
                    instances: total.into(),
                })
                .await?;
            if inserted as i64 != total {
                return Err(CouponError::CodeTaken.into());
            }
            total
        }
        (CodeMode::Unique, _, Some(pattern), Some(total)) => {
            fill(tx, b.id, pattern, total as u64).await?;
            total
        }
        _ => 0,
    };
    if created > 0 {
        bump_supply(tx, b.id, created).await?;
    }
    events.note(b.created_at, Change::BookCreated(b.clone()));
    stock::settle(tx, events, b, (Pool::NEW, created), Announce::Quietly, b.created_at).await?;
    Ok((draft.book.clone(), created as u64))
}

pub(crate) async fn update<T: Tx>(
    tx: &T,
    events: &Journal,
    id: Uuid,
    patch: BookPatch,
    now: Timestamp,
) -> Result<Book, StoreError> {
    let LockedBook { mut book, pool, .. } = lock_existing(tx, id).await?;
    book.apply_patch(patch, now)?;
    tx.exec(Q::BookUpdate {
        book_id: id.into(),
        name: (&book.name).into(),
        description: (&book.description).into(),
        expires_at: book.expires_at.map(Timestamp::millis).into(),
        status: book.status.as_str().into(),
        updated_at: now.millis().into(),
        metadata: (&rows::metadata_json(&book.metadata)).into(),
        low_stock_threshold: book.low_stock_threshold.into(),
    })
    .await?;
    // A new threshold may put the pool under it.
    events.note(now, Change::BookUpdated(book.clone()));
    stock::settle(tx, events, &book, (pool, pool.count), Announce::Yes, now).await?;
    Ok(book)
}

pub(crate) async fn with_stats<T: Tx>(tx: &T, id: Uuid, now: Timestamp) -> Result<(Book, BookStats), StoreError> {
    let (book, counts) = futures::try_join!(load(tx, id), async {
        tx.first(Q::BookStats {
            book_id: id.into(),
            now: now.millis().into(),
        })
        .await
    })?;
    Ok((book, rows::stats(&counts.ok_or(StoreError::Conflict("stats"))?)?))
}

pub(crate) async fn search<T: Tx>(tx: &T, q: &SearchQuery, now: Timestamp) -> Result<SearchPage, StoreError> {
    let words = q.text.as_deref().map(rows::search_words).unwrap_or_default();
    let text = (!words.is_empty()).then(|| T::text_query(&words));
    let (after_ts, after_id) = match q.after {
        Some((ts, id)) => (Some(ts.millis()), Some(id)),
        None => (None, None),
    };
    let (status, in_window) = match q.scope {
        Scope::Live => (Some(BookStatus::Active), 1),
        Scope::All(status) => (status, 0),
    };
    let rows = tx
        .query(Q::Search {
            now: now.millis().into(),
            category: q.category.as_deref().into(),
            discount_type: q.discount_type.map(DiscountType::as_str).into(),
            after_at: after_ts.into(),
            after_id: after_id.into(),
            text: text.as_deref().into(),
            limit: (q.limit as i64 + 1).into(),
            status: status.map(BookStatus::as_str).into(),
            in_window: in_window.into(),
        })
        .await?;
    let books = rows.iter().map(|r| rows::book(r, "")).collect::<Result<Vec<_>, _>>()?;
    Ok(Page::from_overfetch(books, q.limit, |b| (b.created_at, b.id)))
}

/// Moves the supply counter; the table's CHECK refuses to pass `total_codes`.
pub(crate) async fn bump_supply<T: Tx>(tx: &T, book_id: Uuid, by: i64) -> Result<(), StoreError> {
    let bump = Q::BumpSupply {
        book_id: book_id.into(),
        by: by.into(),
    };
    if tx.exec(bump).await? != 1 {
        return Err(StoreError::Conflict("supply counter"));
    }
    Ok(())
}

/// Draws from the pattern, a chunk at a time, until `count` new codes are in; codes that collide
/// with existing ones are simply drawn again. A chunk goes in sorted, so the unique index on code
/// texts is written in order rather than at random pages.
pub(crate) async fn fill<T: Tx>(tx: &T, book_id: Uuid, pattern: &CodePattern, count: u64) -> Result<(), StoreError> {
    let mut missing = count;
    let mut stalled = 0;
    while missing > 0 {
        let mut drawn = pattern.draw_distinct(missing.min(DRAW_CHUNK) as usize, &mut rand::rng());
        drawn.sort_unstable();
        let inserted = tx
            .exec(Q::InsertDrawn {
                book_id: book_id.into(),
                codes: drawn.as_slice().into(),
            })
            .await?;
        missing -= inserted;
        stalled = if inserted == 0 { stalled + 1 } else { 0 };
        if stalled == DRAW_ATTEMPTS {
            return Err(StoreError::Conflict("the pattern keeps drawing codes that exist"));
        }
    }
    Ok(())
}
