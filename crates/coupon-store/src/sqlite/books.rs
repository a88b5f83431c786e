//! Books and their supply on SQLite.

use coupon_core::book::BookDraft;
use coupon_core::discount::DiscountType;
use coupon_core::{Book, BookPatch, BookStats, CodeMode, CodePattern, CouponError, Timestamp};
use rusqlite::{params, Connection};
use uuid::Uuid;

use super::{collect, first};
use crate::rows::{self, lapsed_sql, Fields, BOOK_COLUMNS};
use crate::{dedup_codes, AddedCodes, SearchPage, SearchQuery, StoreError, DRAW_ATTEMPTS, DRAW_CHUNK};

pub(super) fn load(c: &Connection, id: Uuid) -> Result<Option<Book>, StoreError> {
    let mut stmt = c.prepare_cached(&format!("SELECT {BOOK_COLUMNS} FROM books WHERE id = ?1"))?;
    first(&mut stmt, [id.to_string()], |r| rows::book(r, 0))
}

/// The book and its supply counter, for changes to its supply.
fn load_with_supply(c: &Connection, id: Uuid) -> Result<(Book, i64), StoreError> {
    let mut stmt = c.prepare_cached(&format!("SELECT {BOOK_COLUMNS}, generated FROM books WHERE id = ?1"))?;
    first(&mut stmt, [id.to_string()], |r| Ok((rows::book(r, 0)?, r.i64(25)?)))?
        .ok_or(StoreError::not_found("coupon book"))
}

pub(super) fn create(tx: &Connection, draft: BookDraft) -> Result<Book, StoreError> {
    let b = &draft.book;
    let tags = serde_json::to_string(&b.tags).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let p = &b.policies;
    tx.execute(
        &format!(
            "INSERT INTO books ({BOOK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, \
             ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25)"
        ),
        params![
            b.id.to_string(),
            b.name,
            b.description,
            b.category,
            tags,
            b.discount.type_name(),
            b.discount.raw_value(),
            b.discount.currency,
            b.discount.max_discount,
            b.discount.min_order_amount,
            b.starts_at.map(Timestamp::millis),
            b.expires_at.map(Timestamp::millis),
            b.status.as_str(),
            b.code_mode.as_str(),
            b.code,
            b.code_pattern,
            b.total_codes,
            p.max_codes_per_user,
            p.max_redemptions_per_user,
            p.max_redemptions_per_code,
            p.claims_per_user_per_day,
            p.claim_ttl_seconds,
            p.lock_ttl_seconds,
            b.created_at.millis(),
            b.updated_at.millis(),
        ],
    )?;
    match (b.code_mode, &b.code) {
        (CodeMode::Shared, Some(code)) => {
            let total = b.total_codes.unwrap_or(0);
            let inserted = tx.execute(
                "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?3) \
                 INSERT OR IGNORE INTO codes (book_id, code, instance, status) \
                 SELECT ?1, ?2, i, 'available' FROM n",
                params![b.id.to_string(), code, total],
            )?;
            if inserted as i64 != total {
                return Err(CouponError::CodeTaken.into());
            }
            bump_generated(tx, b.id, total)?;
        }
        _ => {
            if let (Some(pattern), Some(total)) = (&draft.pattern, b.total_codes) {
                fill(tx, b.id, pattern, total as u64)?;
                bump_generated(tx, b.id, total)?;
            }
        }
    }
    Ok(draft.book)
}

/// Inserts codes that do not exist yet anywhere; the rest come back as duplicates.
fn insert_codes(tx: &Connection, book_id: Uuid, codes: Vec<String>) -> Result<AddedCodes, StoreError> {
    let (codes, mut duplicates) = dedup_codes(codes);
    let mut stmt = tx.prepare_cached(
        "INSERT INTO codes (book_id, code, instance, status) VALUES (?1, ?2, 0, 'available') \
         ON CONFLICT (code, instance) DO NOTHING",
    )?;
    let book = book_id.to_string();
    let mut inserted = 0;
    for code in codes {
        if stmt.execute(params![book, code])? == 1 {
            inserted += 1;
        } else {
            duplicates.push(code);
        }
    }
    Ok(AddedCodes { inserted, duplicates })
}

/// Moves the supply counter; the table's CHECK refuses to pass `total_codes`.
fn bump_generated(tx: &Connection, book_id: Uuid, by: i64) -> Result<(), StoreError> {
    let n = tx.execute(
        "UPDATE books SET generated = generated + ?2 \
         WHERE id = ?1 AND (total_codes IS NULL OR generated + ?2 <= total_codes)",
        params![book_id.to_string(), by],
    )?;
    if n != 1 {
        return Err(StoreError::Conflict("supply counter"));
    }
    Ok(())
}

pub(super) fn add_codes(tx: &Connection, book_id: Uuid, codes: Vec<String>) -> Result<AddedCodes, StoreError> {
    let (book, before) = load_with_supply(tx, book_id)?;
    book.check_room(before, 0)?;
    let added = insert_codes(tx, book_id, codes)?;
    // Refusing here rolls the inserts back: an upload past the cap writes nothing.
    book.check_room(before, added.inserted as i64)?;
    bump_generated(tx, book_id, added.inserted as i64)?;
    Ok(added)
}

pub(super) fn generate_codes(
    tx: &Connection,
    book_id: Uuid,
    pattern: Option<CodePattern>,
    count: u64,
) -> Result<u64, StoreError> {
    let (book, before) = load_with_supply(tx, book_id)?;
    let pattern = book.generation_pattern(pattern, count)?;
    book.check_room(before, count as i64)?;
    fill(tx, book_id, &pattern, count)?;
    bump_generated(tx, book_id, count as i64)?;
    Ok(count)
}

/// Draws from the pattern, a chunk at a time, until `count` new codes are in; codes that collide
/// with existing ones are simply drawn again. A chunk goes in sorted, so the unique index on code
/// texts is written in order rather than at random pages.
fn fill(tx: &Connection, book_id: Uuid, pattern: &CodePattern, count: u64) -> Result<(), StoreError> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO codes (book_id, code, instance, status) VALUES (?1, ?2, 0, 'available') \
         ON CONFLICT (code, instance) DO NOTHING",
    )?;
    let book = book_id.to_string();
    let mut missing = count;
    let mut stalled = 0;
    while missing > 0 {
        let mut drawn = pattern.draw_distinct(missing.min(DRAW_CHUNK) as usize, &mut rand::rng());
        drawn.sort_unstable();
        let mut inserted = 0;
        for code in &drawn {
            inserted += insert.execute(params![book, code])? as u64;
        }
        missing -= inserted;
        stalled = if inserted == 0 { stalled + 1 } else { 0 };
        if stalled == DRAW_ATTEMPTS {
            return Err(StoreError::Conflict("the pattern keeps drawing codes that exist"));
        }
    }
    Ok(())
}

pub(super) fn update(tx: &Connection, id: Uuid, patch: BookPatch, now: Timestamp) -> Result<Book, StoreError> {
    let mut book = load(tx, id)?.ok_or(StoreError::not_found("coupon book"))?;
    book.apply_patch(patch, now)?;
    tx.execute(
        "UPDATE books SET name = ?2, description = ?3, expires_at = ?4, status = ?5, updated_at = ?6 \
         WHERE id = ?1",
        params![
            id.to_string(),
            book.name,
            book.description,
            book.expires_at.map(Timestamp::millis),
            book.status.as_str(),
            now.millis(),
        ],
    )?;
    Ok(book)
}

pub(super) fn with_stats(c: &Connection, id: Uuid, now: Timestamp) -> Result<(Book, BookStats), StoreError> {
    let book = load(c, id)?.ok_or(StoreError::not_found("coupon book"))?;
    let mut stmt = c.prepare_cached(&format!(
        "SELECT count(*), \
           coalesce(sum(status = 'redeemed'), 0), \
           coalesce(sum(status = 'active' AND locked_until > ?2), 0), \
           coalesce(sum(status = 'active' AND NOT {}), 0), \
           (SELECT count(*) FROM redemptions WHERE book_id = ?1) \
         FROM codes WHERE book_id = ?1",
        lapsed_sql("", "?2")
    ))?;
    let stats = first(&mut stmt, params![id.to_string(), now.millis()], |r| rows::stats(r))?;
    Ok((book, stats.ok_or(StoreError::Conflict("stats"))?))
}

pub(super) fn search(c: &Connection, q: SearchQuery, now: Timestamp) -> Result<SearchPage, StoreError> {
    let words = q.text.as_deref().map(rows::search_words).unwrap_or_default();
    let fts = (!words.is_empty()).then(|| words.iter().map(|w| format!("\"{w}\"")).collect::<Vec<_>>().join(" "));
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {BOOK_COLUMNS} FROM books \
         WHERE status = 'active' AND (starts_at IS NULL OR starts_at <= ?1) \
           AND (expires_at IS NULL OR expires_at >= ?1) \
           AND (?2 IS NULL OR category = ?2) AND (?3 IS NULL OR discount_type = ?3) \
           AND (?4 IS NULL OR (created_at, id) < (?4, ?5)) \
           AND (?6 IS NULL OR seq IN (SELECT rowid FROM books_fts WHERE books_fts MATCH ?6)) \
         ORDER BY created_at DESC, id DESC LIMIT ?7"
    ))?;
    let (after_ts, after_id) = match q.after {
        Some((ts, id)) => (Some(ts.millis()), Some(id.to_string())),
        None => (None, None),
    };
    let books = collect(
        &mut stmt,
        params![
            now.millis(),
            q.category,
            q.discount_type.map(DiscountType::as_str),
            after_ts,
            after_id,
            fts,
            q.limit as i64 + 1
        ],
        |r| rows::book(r, 0),
    )?;
    Ok(SearchPage::from_overfetch(books, q.limit))
}
