//! Books and their supply: create (with its shared instances or generated codes), change, upload,
//! generate, stats and search.

use std::collections::HashSet;

use coupon_core::discount::DiscountType;
use coupon_core::{Book, BookDraft, BookPatch, BookStats, BookStatus, CodeMode, CodePattern, CouponError, Timestamp};
use uuid::Uuid;

use super::stock::{self, Announce, Pool};
use crate::backend::{Fields, Tx};
use crate::outbox::{Change, Journal};
use crate::rows;
use crate::statements::Q;
use crate::{AddedCodes, NotRemoved, Page, RemovedCodes, Scope, SearchPage, SearchQuery, StoreError};

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
    match tx.first(Q::BookLock, &[id.into()]).await? {
        None => Ok(None),
        Some(r) => Ok(Some(LockedBook {
            book: rows::book(&r, "")?,
            generated: r.i64("generated")?,
            cursor: r.i64("deal_cursor")?,
            pool: Pool::read(&r)?,
        })),
    }
}

async fn lock_existing<T: Tx>(tx: &T, id: Uuid) -> Result<LockedBook, StoreError> {
    lock(tx, id).await?.ok_or(StoreError::not_found("coupon book"))
}

pub(crate) async fn load<T: Tx>(tx: &T, id: Uuid) -> Result<Book, StoreError> {
    Ok(with_supply(tx, id).await?.0)
}

/// The book and its supply counter (the codes it holds), read from its row.
pub(crate) async fn with_supply<T: Tx>(tx: &T, id: Uuid) -> Result<(Book, i64), StoreError> {
    let row = tx.first(Q::BookRead, &[id.into()]).await?;
    let row = row.ok_or(StoreError::not_found("coupon book"))?;
    Ok((rows::book(&row, "")?, row.i64("generated")?))
}

/// The book, and how many codes (or shared instances) were created with it.
pub(crate) async fn create<T: Tx>(tx: &T, events: &Journal, draft: &BookDraft) -> Result<(Book, u64), StoreError> {
    let b = &draft.book;
    let tags = serde_json::to_string(&b.tags).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let metadata = rows::metadata_json(&b.metadata);
    let p = &b.policies;
    tx.exec(
        Q::BookInsert,
        &[
            b.id.into(),
            (&b.name).into(),
            (&b.description).into(),
            (&b.category).into(),
            (&tags).into(),
            b.discount.type_name().into(),
            b.discount.raw_value().into(),
            (&b.discount.currency).into(),
            b.discount.max_discount.into(),
            b.discount.min_order_amount.into(),
            b.starts_at.map(Timestamp::millis).into(),
            b.expires_at.map(Timestamp::millis).into(),
            b.status.as_str().into(),
            b.code_mode.as_str().into(),
            (&b.code).into(),
            (&b.code_pattern).into(),
            b.total_codes.into(),
            p.max_codes_per_user.into(),
            p.max_redemptions_per_user.into(),
            p.max_redemptions_per_code.into(),
            p.claims_per_user_per_day.into(),
            p.claim_ttl_seconds.into(),
            p.lock_ttl_seconds.into(),
            (&metadata).into(),
            b.created_at.millis().into(),
            b.updated_at.millis().into(),
            b.low_stock_threshold.into(),
        ],
    )
    .await?;
    let created = match (b.code_mode, &b.code, &draft.pattern, b.total_codes) {
        (CodeMode::Shared, Some(code), _, Some(total)) => {
            let inserted = tx
                .exec(Q::SharedInstances, &[b.id.into(), code.into(), total.into()])
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

/// Moves the supply counter; the table's CHECK refuses to pass `total_codes`.
async fn bump_supply<T: Tx>(tx: &T, book_id: Uuid, by: i64) -> Result<(), StoreError> {
    if tx.exec(Q::BumpSupply, &[book_id.into(), by.into()]).await? != 1 {
        return Err(StoreError::Conflict("supply counter"));
    }
    Ok(())
}

/// Draws from the pattern, a chunk at a time, until `count` new codes are in; codes that collide
/// with existing ones are simply drawn again. A chunk goes in sorted, so the unique index on code
/// texts is written in order rather than at random pages.
async fn fill<T: Tx>(tx: &T, book_id: Uuid, pattern: &CodePattern, count: u64) -> Result<(), StoreError> {
    let mut missing = count;
    let mut stalled = 0;
    while missing > 0 {
        let mut drawn = pattern.draw_distinct(missing.min(DRAW_CHUNK) as usize, &mut rand::rng());
        drawn.sort_unstable();
        let inserted = tx
            .exec(Q::InsertDrawn, &[book_id.into(), drawn.as_slice().into()])
            .await?;
        missing -= inserted;
        stalled = if inserted == 0 { stalled + 1 } else { 0 };
        if stalled == DRAW_ATTEMPTS {
            return Err(StoreError::Conflict("the pattern keeps drawing codes that exist"));
        }
    }
    Ok(())
}

pub(crate) async fn add_codes<T: Tx>(
    tx: &T,
    events: &Journal,
    book_id: Uuid,
    codes: &[String],
    now: Timestamp,
) -> Result<AddedCodes, StoreError> {
    let LockedBook {
        book,
        generated: before,
        pool,
        ..
    } = lock_existing(tx, book_id).await?;
    book.check_room(before, 0)?;
    let (codes, mut duplicates) = dedup_codes(codes);
    let rows = tx
        .query(Q::UploadCodes, &[book_id.into(), codes.as_slice().into()])
        .await?;
    let inserted: HashSet<String> = rows.iter().map(|r| r.string("code")).collect::<Result<_, _>>()?;
    duplicates.extend(codes.into_iter().filter(|c| !inserted.contains(c)));
    let added = AddedCodes {
        inserted: inserted.len() as u64,
        duplicates,
    };
    // Refusing here rolls the inserts back: an upload past the cap writes nothing.
    book.check_room(before, added.inserted as i64)?;
    bump_supply(tx, book_id, added.inserted as i64).await?;
    added_codes(tx, events, &book, pool, added.inserted, now).await?;
    Ok(added)
}

/// Drops duplicates within an upload, keeping first occurrences, and reports the repeats.
fn dedup_codes(codes: &[String]) -> (Vec<String>, Vec<String>) {
    let mut seen = HashSet::with_capacity(codes.len());
    let (mut unique, mut repeats) = (Vec::with_capacity(codes.len()), Vec::new());
    for code in codes {
        if seen.insert(code.as_str()) {
            unique.push(code.clone());
        } else {
            repeats.push(code.clone());
        }
    }
    (unique, repeats)
}

/// Takes the named codes out of the book if no one ever held them (in the pool, with no
/// redemption history), under the book's row lock, so no claim deals them meanwhile. The supply
/// counter follows; `total_codes` stays, so replacements may be added.
pub(crate) async fn remove_codes<T: Tx>(
    tx: &T,
    events: &Journal,
    book_id: Uuid,
    codes: &[String],
    now: Timestamp,
) -> Result<RemovedCodes, StoreError> {
    let LockedBook { book, pool, .. } = lock_existing(tx, book_id).await?;
    book.check_pool_editable()?;
    let (codes, _) = dedup_codes(codes);
    let rows = tx
        .query(Q::NamedCodes, &[book_id.into(), codes.as_slice().into()])
        .await?;
    let mut found = std::collections::HashMap::with_capacity(rows.len());
    let (mut removable, mut removed) = (Vec::with_capacity(rows.len()), Vec::new());
    for r in &rows {
        let (code, status) = (r.string("code")?, r.string("status")?);
        let refusal = match status.as_str() {
            "available" if r.bool("has_history")? => Some(NotRemoved::HasHistory),
            "available" => None,
            "redeemed" => Some(NotRemoved::Redeemed),
            _ => Some(NotRemoved::Held),
        };
        if refusal.is_none() {
            removable.push(r.i64("id")?);
            removed.push(code.clone());
        }
        found.insert(code, refusal);
    }
    let not_removed = codes
        .into_iter()
        .filter_map(|c| match found.get(&c) {
            None => Some((c, NotRemoved::Unknown)),
            Some(Some(why)) => Some((c, *why)),
            Some(None) => None,
        })
        .collect();
    if !removable.is_empty() {
        // The queue refers to codes: it lets go of them first.
        tx.exec(Q::UnqueueCodes, &[book_id.into(), removable.as_slice().into()])
            .await?;
        let deleted = tx.exec(Q::DeleteCodes, &[removable.as_slice().into()]).await?;
        if deleted != removable.len() as u64 {
            return Err(StoreError::Conflict("a code to remove left the pool"));
        }
        bump_supply(tx, book_id, -(deleted as i64)).await?;
        events.note(
            now,
            Change::CodesRemoved {
                book_id,
                codes: removed,
            },
        );
        let after = pool.count - deleted as i64;
        stock::settle(tx, events, &book, (pool, after), Announce::Yes, now).await?;
    }
    Ok(RemovedCodes {
        removed: removable.len() as u64,
        not_removed,
    })
}

pub(crate) async fn generate_codes<T: Tx>(
    tx: &T,
    events: &Journal,
    book_id: Uuid,
    pattern: Option<CodePattern>,
    count: u64,
    now: Timestamp,
) -> Result<u64, StoreError> {
    let LockedBook {
        book,
        generated: before,
        pool,
        ..
    } = lock_existing(tx, book_id).await?;
    let pattern = book.generation_pattern(pattern, count)?;
    book.check_room(before, count as i64)?;
    fill(tx, book_id, &pattern, count).await?;
    bump_supply(tx, book_id, count as i64).await?;
    added_codes(tx, events, &book, pool, count, now).await?;
    Ok(count)
}

/// New codes raise the pool: its level is looked at again (rising announces nothing, but re-arms
/// the alerts), and the addition is announced.
async fn added_codes<T: Tx>(
    tx: &T,
    events: &Journal,
    book: &Book,
    pool: Pool,
    count: u64,
    now: Timestamp,
) -> Result<(), StoreError> {
    if count > 0 {
        events.note(
            now,
            Change::CodesAdded {
                book_id: book.id,
                count,
            },
        );
        let after = pool.count + count as i64;
        stock::settle(tx, events, book, (pool, after), Announce::Yes, now).await?;
    }
    Ok(())
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
    tx.exec(
        Q::BookUpdate,
        &[
            id.into(),
            (&book.name).into(),
            (&book.description).into(),
            book.expires_at.map(Timestamp::millis).into(),
            book.status.as_str().into(),
            now.millis().into(),
            (&rows::metadata_json(&book.metadata)).into(),
            book.low_stock_threshold.into(),
        ],
    )
    .await?;
    // A new threshold may put the pool under it.
    events.note(now, Change::BookUpdated(book.clone()));
    stock::settle(tx, events, &book, (pool, pool.count), Announce::Yes, now).await?;
    Ok(book)
}

pub(crate) async fn with_stats<T: Tx>(tx: &T, id: Uuid, now: Timestamp) -> Result<(Book, BookStats), StoreError> {
    let (book, counts) = futures::try_join!(load(tx, id), async {
        tx.first(Q::BookStats, &[id.into(), now.millis().into()]).await
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
        .query(
            Q::Search,
            &[
                now.millis().into(),
                q.category.as_deref().into(),
                q.discount_type.map(DiscountType::as_str).into(),
                after_ts.into(),
                after_id.into(),
                text.as_deref().into(),
                (q.limit as i64 + 1).into(),
                status.map(BookStatus::as_str).into(),
                in_window.into(),
            ],
        )
        .await?;
    let books = rows.iter().map(|r| rows::book(r, "")).collect::<Result<Vec<_>, _>>()?;
    Ok(Page::from_overfetch(books, q.limit, |b| (b.created_at, b.id)))
}
