//! Books and their supply on PostgreSQL.

use std::collections::HashSet;

use bytes::{BufMut, BytesMut};
use coupon_core::discount::DiscountType;
use coupon_core::{Book, BookDraft, BookPatch, BookStats, CodeMode, CodePattern, CouponError, Timestamp};
use deadpool_postgres::{GenericClient, Transaction};
use futures::SinkExt;
use uuid::Uuid;

use super::{all, exec, opt};
use crate::rows::{self, lapsed_sql, Fields, BOOK_COLUMNS};
use crate::{dedup_codes, AddedCodes, SearchPage, SearchQuery, StoreError, DRAW_ATTEMPTS, DRAW_CHUNK};

pub(super) async fn load(tx: &impl GenericClient, id: Uuid) -> Result<Option<Book>, StoreError> {
    let sql = format!("SELECT {BOOK_COLUMNS} FROM books WHERE id = $1");
    opt(tx, &sql, &[&id]).await?.map(|r| rows::book(&r, 0)).transpose()
}

/// The book with its row locked, and its supply counter, for changes to the book or its supply.
async fn load_for_update(tx: &Transaction<'_>, id: Uuid) -> Result<(Book, i64), StoreError> {
    let sql = format!("SELECT {BOOK_COLUMNS}, generated FROM books WHERE id = $1 FOR UPDATE");
    let row = opt(tx, &sql, &[&id])
        .await?
        .ok_or(StoreError::not_found("coupon book"))?;
    Ok((rows::book(&row, 0)?, row.i64(25)?))
}

pub(super) async fn create(tx: &Transaction<'_>, draft: &BookDraft) -> Result<Book, StoreError> {
    let b = &draft.book;
    let tags = serde_json::to_string(&b.tags).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let p = &b.policies;
    let sql = format!(
        "INSERT INTO books ({BOOK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
         $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25)"
    );
    exec(
        tx,
        &sql,
        &[
            &b.id,
            &b.name,
            &b.description,
            &b.category,
            &tags,
            &b.discount.type_name(),
            &b.discount.raw_value(),
            &b.discount.currency,
            &b.discount.max_discount,
            &b.discount.min_order_amount,
            &b.starts_at.map(Timestamp::millis),
            &b.expires_at.map(Timestamp::millis),
            &b.status.as_str(),
            &b.code_mode.as_str(),
            &b.code,
            &b.code_pattern,
            &b.total_codes,
            &p.max_codes_per_user,
            &p.max_redemptions_per_user,
            &p.max_redemptions_per_code,
            &p.claims_per_user_per_day,
            &p.claim_ttl_seconds,
            &p.lock_ttl_seconds,
            &b.created_at.millis(),
            &b.updated_at.millis(),
        ],
    )
    .await?;
    match (b.code_mode, &b.code) {
        (CodeMode::Shared, Some(code)) => {
            let total = b.total_codes.unwrap_or(0);
            let inserted = exec(
                tx,
                "INSERT INTO codes (book_id, code, instance, status) \
                 SELECT $1, $2, i, 'available' FROM generate_series(0::bigint, $3::bigint - 1) AS i \
                 ON CONFLICT (code, instance) DO NOTHING",
                &[&b.id, code, &total],
            )
            .await?;
            if inserted as i64 != total {
                return Err(CouponError::CodeTaken.into());
            }
            bump_generated(tx, b.id, total).await?;
        }
        _ => {
            if let (Some(pattern), Some(total)) = (&draft.pattern, b.total_codes) {
                fill(tx, b.id, pattern, total as u64).await?;
                bump_generated(tx, b.id, total).await?;
            }
        }
    }
    Ok(draft.book.clone())
}

/// Inserts codes that do not exist yet anywhere, in one statement; the rest come back as duplicates.
async fn insert_codes(tx: &Transaction<'_>, book_id: Uuid, codes: Vec<String>) -> Result<AddedCodes, StoreError> {
    let (codes, mut duplicates) = dedup_codes(codes);
    let rows = all(
        tx,
        "INSERT INTO codes (book_id, code, instance, status) \
         SELECT $1, c, 0, 'available' FROM unnest($2::text[]) AS c \
         ON CONFLICT (code, instance) DO NOTHING RETURNING code",
        &[&book_id, &codes],
    )
    .await?;
    let inserted: HashSet<String> = rows.iter().map(|r| r.string(0)).collect::<Result<_, _>>()?;
    duplicates.extend(codes.into_iter().filter(|c| !inserted.contains(c)));
    Ok(AddedCodes {
        inserted: inserted.len() as u64,
        duplicates,
    })
}

/// Moves the supply counter; the table's CHECK refuses to pass `total_codes`.
async fn bump_generated(tx: &Transaction<'_>, book_id: Uuid, by: i64) -> Result<(), StoreError> {
    let n = exec(
        tx,
        "UPDATE books SET generated = generated + $2 \
         WHERE id = $1 AND (total_codes IS NULL OR generated + $2 <= total_codes)",
        &[&book_id, &by],
    )
    .await?;
    if n != 1 {
        return Err(StoreError::Conflict("supply counter"));
    }
    Ok(())
}

/// Draws from the pattern, a chunk at a time, until `count` new codes are in; codes that collide
/// with existing ones are simply drawn again. Each chunk is streamed with COPY into a scratch table
/// and moved into `codes` in index order by one statement that skips codes already taken.
async fn fill(tx: &Transaction<'_>, book_id: Uuid, pattern: &CodePattern, count: u64) -> Result<(), StoreError> {
    tx.batch_execute("CREATE TEMP TABLE IF NOT EXISTS drawn (code TEXT NOT NULL); TRUNCATE drawn")
        .await?;
    let mut missing = count;
    let mut stalled = 0;
    while missing > 0 {
        let drawn = pattern.draw_distinct(missing.min(DRAW_CHUNK) as usize, &mut rand::rng());
        // Code texts are [A-Z0-9_-]: nothing in them needs escaping in COPY's text format.
        let mut lines = BytesMut::with_capacity(drawn.len() * (pattern.as_str().len() + 1));
        for code in &drawn {
            lines.put_slice(code.as_bytes());
            lines.put_u8(b'\n');
        }
        let sink = tx.copy_in("COPY drawn (code) FROM STDIN").await?;
        futures::pin_mut!(sink);
        sink.send(lines.freeze()).await?;
        sink.finish().await?;
        let inserted = exec(
            tx,
            "INSERT INTO codes (book_id, code, instance, status) \
             SELECT $1, code, 0, 'available' FROM drawn ORDER BY code ON CONFLICT (code, instance) DO NOTHING",
            &[&book_id],
        )
        .await?;
        tx.batch_execute("TRUNCATE drawn").await?;
        missing -= inserted;
        stalled = if inserted == 0 { stalled + 1 } else { 0 };
        if stalled == DRAW_ATTEMPTS {
            return Err(StoreError::Conflict("the pattern keeps drawing codes that exist"));
        }
    }
    Ok(())
}

pub(super) async fn add_codes(
    tx: &Transaction<'_>,
    book_id: Uuid,
    codes: Vec<String>,
) -> Result<AddedCodes, StoreError> {
    let (book, before) = load_for_update(tx, book_id).await?;
    book.check_room(before, 0)?;
    let added = insert_codes(tx, book_id, codes).await?;
    // Refusing here rolls the inserts back: an upload past the cap writes nothing.
    book.check_room(before, added.inserted as i64)?;
    bump_generated(tx, book_id, added.inserted as i64).await?;
    Ok(added)
}

pub(super) async fn generate_codes(
    tx: &Transaction<'_>,
    book_id: Uuid,
    pattern: Option<CodePattern>,
    count: u64,
) -> Result<u64, StoreError> {
    let (book, before) = load_for_update(tx, book_id).await?;
    let pattern = book.generation_pattern(pattern, count)?;
    book.check_room(before, count as i64)?;
    fill(tx, book_id, &pattern, count).await?;
    bump_generated(tx, book_id, count as i64).await?;
    Ok(count)
}

pub(super) async fn update(
    tx: &Transaction<'_>,
    id: Uuid,
    patch: BookPatch,
    now: Timestamp,
) -> Result<Book, StoreError> {
    let (mut book, _) = load_for_update(tx, id).await?;
    book.apply_patch(patch, now)?;
    exec(
        tx,
        "UPDATE books SET name = $2, description = $3, expires_at = $4, status = $5, updated_at = $6 \
         WHERE id = $1",
        &[
            &id,
            &book.name,
            &book.description,
            &book.expires_at.map(Timestamp::millis),
            &book.status.as_str(),
            &now.millis(),
        ],
    )
    .await?;
    Ok(book)
}

pub(super) async fn with_stats(
    tx: &impl GenericClient,
    id: Uuid,
    now: Timestamp,
) -> Result<(Book, BookStats), StoreError> {
    let book = load(tx, id).await?.ok_or(StoreError::not_found("coupon book"))?;
    let sql = format!(
        "SELECT count(*), \
           count(*) FILTER (WHERE status = 'redeemed'), \
           count(*) FILTER (WHERE status = 'active' AND locked_until > $2), \
           count(*) FILTER (WHERE status = 'active' AND NOT {}), \
           (SELECT count(*) FROM redemptions WHERE book_id = $1) \
         FROM codes WHERE book_id = $1",
        lapsed_sql("", "$2")
    );
    let r = opt(tx, &sql, &[&id, &now.millis()])
        .await?
        .ok_or(StoreError::Conflict("stats"))?;
    Ok((book, rows::stats(&r)?))
}

pub(super) async fn search(tx: &impl GenericClient, q: &SearchQuery, now: Timestamp) -> Result<SearchPage, StoreError> {
    let words = q.text.as_deref().map(rows::search_words).unwrap_or_default();
    let text = (!words.is_empty()).then(|| words.join(" "));
    let (after_ts, after_id) = match q.after {
        Some((ts, id)) => (Some(ts.millis()), Some(id)),
        None => (None, None),
    };
    let sql = format!(
        "SELECT {BOOK_COLUMNS} FROM books \
         WHERE status = 'active' AND (starts_at IS NULL OR starts_at <= $1) \
           AND (expires_at IS NULL OR expires_at >= $1) \
           AND ($2::text IS NULL OR category = $2) AND ($3::text IS NULL OR discount_type = $3) \
           AND ($4::bigint IS NULL OR (created_at, id) < ($4, $5::uuid)) \
           AND ($6::text IS NULL OR search @@ plainto_tsquery('english', $6)) \
         ORDER BY created_at DESC, id DESC LIMIT $7"
    );
    let limit = q.limit as i64 + 1;
    let rows = all(
        tx,
        &sql,
        &[
            &now.millis(),
            &q.category,
            &q.discount_type.map(DiscountType::as_str),
            &after_ts,
            &after_id,
            &text,
            &limit,
        ],
    )
    .await?;
    let books = rows.iter().map(|r| rows::book(r, 0)).collect::<Result<Vec<_>, _>>()?;
    Ok(SearchPage::from_overfetch(books, q.limit))
}
