//! Rows to domain values, written once for both backends: each backend's row type implements
//! [`Fields`], and the column lists below are the same on both.

use coupon_core::rules::Holdings;
use coupon_core::{
    Book, BookStats, BookStatus, CodeInstance, CodeMode, Discount, Policies, Redemption, StoredStatus, Timestamp,
};
use uuid::Uuid;

use crate::StoreError;

pub(crate) const BOOK_COLUMNS: &str = "id, name, description, category, tags, discount_type, \
    discount_value, currency, max_discount, min_order_amount, starts_at, expires_at, status, \
    code_mode, shared_code, code_pattern, total_codes, max_codes_per_user, max_redemptions_per_user, \
    max_redemptions_per_code, claims_per_user_per_day, claim_ttl_seconds, lock_ttl_seconds, \
    created_at, updated_at";

pub(crate) const CODE_COLUMNS: &str = "id, book_id, code, instance, status, owner, claimed_at, \
    claim_expires_at, lock_id, locked_until, redemptions";

pub(crate) const HOLDINGS_COLUMNS: &str = "held, day, day_claims, redeemed";

pub(crate) const REDEMPTION_COLUMNS: &str = "id, code, book_id, user_id, order_id, order_amount, \
    discount_applied, final_price, redeemed_at";

/// A column list with each column qualified by a table alias, for joins.
pub(crate) fn qualified(columns: &str, alias: &str) -> String {
    columns
        .split(", ")
        .map(|c| format!("{alias}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Typed access to one row's columns by position.
pub(crate) trait Fields {
    fn i64(&self, i: usize) -> Result<i64, StoreError>;
    fn opt_i64(&self, i: usize) -> Result<Option<i64>, StoreError>;
    fn string(&self, i: usize) -> Result<String, StoreError>;
    fn opt_string(&self, i: usize) -> Result<Option<String>, StoreError>;
    fn uuid(&self, i: usize) -> Result<Uuid, StoreError>;
    fn opt_uuid(&self, i: usize) -> Result<Option<Uuid>, StoreError>;

    fn ts(&self, i: usize) -> Result<Timestamp, StoreError> {
        self.i64(i).map(Timestamp::from_millis)
    }

    fn opt_ts(&self, i: usize) -> Result<Option<Timestamp>, StoreError> {
        Ok(self.opt_i64(i)?.map(Timestamp::from_millis))
    }
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("{what}: {value:?}"))
}

pub(crate) fn book(r: &impl Fields, at: usize) -> Result<Book, StoreError> {
    let tags_json = r.string(at + 4)?;
    let tags: Vec<String> = serde_json::from_str(&tags_json).map_err(|_| corrupt("tags", &tags_json))?;
    let discount_type = r.string(at + 5)?;
    let discount = Discount::from_stored(
        &discount_type,
        r.i64(at + 6)?,
        r.string(at + 7)?,
        r.opt_i64(at + 8)?,
        r.opt_i64(at + 9)?,
    )
    .ok_or_else(|| corrupt("discount_type", &discount_type))?;
    let status = r.string(at + 12)?;
    let mode = r.string(at + 13)?;
    Ok(Book {
        id: r.uuid(at)?,
        name: r.string(at + 1)?,
        description: r.string(at + 2)?,
        category: r.opt_string(at + 3)?,
        tags,
        discount,
        starts_at: r.opt_ts(at + 10)?,
        expires_at: r.opt_ts(at + 11)?,
        status: BookStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
        code_mode: CodeMode::parse(&mode).ok_or_else(|| corrupt("code_mode", &mode))?,
        code: r.opt_string(at + 14)?,
        code_pattern: r.opt_string(at + 15)?,
        total_codes: r.opt_i64(at + 16)?,
        policies: Policies {
            max_codes_per_user: r.opt_i64(at + 17)?,
            max_redemptions_per_user: r.opt_i64(at + 18)?,
            max_redemptions_per_code: r.i64(at + 19)?,
            claims_per_user_per_day: r.opt_i64(at + 20)?,
            claim_ttl_seconds: r.opt_i64(at + 21)?,
            lock_ttl_seconds: r.i64(at + 22)?,
        },
        created_at: r.ts(at + 23)?,
        updated_at: r.ts(at + 24)?,
    })
}

pub(crate) fn code(r: &impl Fields, at: usize) -> Result<CodeInstance, StoreError> {
    let status = r.string(at + 4)?;
    Ok(CodeInstance {
        id: r.i64(at)?,
        book_id: r.uuid(at + 1)?,
        code: r.string(at + 2)?,
        instance: r.i64(at + 3)?,
        status: StoredStatus::parse(&status).ok_or_else(|| corrupt("code status", &status))?,
        owner: r.opt_string(at + 5)?,
        claimed_at: r.opt_ts(at + 6)?,
        claim_expires_at: r.opt_ts(at + 7)?,
        lock_id: r.opt_uuid(at + 8)?,
        locked_until: r.opt_ts(at + 9)?,
        redemptions: r.i64(at + 10)?,
    })
}

pub(crate) fn holdings(r: &impl Fields) -> Result<Holdings, StoreError> {
    Ok(Holdings {
        held: r.i64(0)?,
        day: r.i64(1)?,
        day_claims: r.i64(2)?,
        redeemed: r.i64(3)?,
    })
}

/// Book stats from a row of counts: all instances, used up, under a live lock, active and held,
/// and redemption records.
pub(crate) fn stats(r: &impl Fields) -> Result<BookStats, StoreError> {
    Ok(BookStats::from_counts(
        r.i64(0)?,
        r.i64(1)?,
        r.i64(2)?,
        r.i64(3)?,
        r.i64(4)?,
    ))
}

pub(crate) fn redemption(r: &impl Fields) -> Result<Redemption, StoreError> {
    Ok(Redemption {
        redemption_id: r.uuid(0)?,
        code: r.string(1)?,
        coupon_book_id: r.uuid(2)?,
        user_id: r.string(3)?,
        order_id: r.opt_string(4)?,
        order_amount: r.opt_i64(5)?,
        discount_applied: r.opt_i64(6)?,
        final_price: r.opt_i64(7)?,
        redeemed_at: r.ts(8)?,
    })
}

/// The words of a free-text query, lower-cased, with everything else dropped, so that user input
/// is never read as full-text query syntax on either backend. Every word must match.
pub(crate) fn search_words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// The lapsed-claim predicate in SQL, matching `CodeInstance::is_lapsed`: `now` is a parameter,
/// `t` qualifies the columns (`""` or `"codes."`).
pub(crate) fn lapsed_sql(t: &str, now: &str) -> String {
    format!(
        "({t}status = 'active' AND {t}redemptions = 0 AND {t}claim_expires_at IS NOT NULL \
         AND {t}claim_expires_at <= {now} AND ({t}locked_until IS NULL OR {t}locked_until <= {now}))"
    )
}

/// The sold-out check in SQL, for both backends: the book, whether it has a code to deal (past its
/// cursor, returned, or lapsed at `now`), and the earliest claim expiry among its held codes.
/// `book` and `now` are the backend's placeholders.
pub(crate) fn stock_sql(book: &str, now: &str) -> String {
    format!(
        "SELECT {BOOK_COLUMNS}, \
           EXISTS (SELECT 1 FROM codes WHERE book_id = books.id AND status = 'available' AND id >= deal_cursor) \
           OR EXISTS (SELECT 1 FROM returned_codes WHERE book_id = books.id) \
           OR EXISTS (SELECT 1 FROM codes WHERE book_id = books.id AND {}), \
           (SELECT min(claim_expires_at) FROM codes \
             WHERE book_id = books.id AND status = 'active' AND claim_expires_at IS NOT NULL) \
         FROM books WHERE id = {book}",
        lapsed_sql("", now)
    )
}

/// The order in which a user's instances of one code are tried: an active one first, the one under
/// the given lock (a placeholder) first among those, the latest claim first. `t` qualifies the
/// columns, as in `lapsed_sql`.
pub(crate) fn instance_order(t: &str, lock: &str) -> String {
    format!("{t}status = 'active' DESC, coalesce({t}lock_id = {lock}, false) DESC, {t}claimed_at DESC")
}

/// A code as one user sees it, its book and that user's counters, in one statement: an instance
/// the user owns (in `instance_order`), else instance 0. Placeholders: the code, the user, the
/// lock id.
pub(crate) fn code_view_sql(code: &str, user: &str, lock: &str) -> String {
    format!(
        "SELECT {}, {}, u.held, u.day, u.day_claims, u.redeemed FROM codes c \
           JOIN books b ON b.id = c.book_id \
           LEFT JOIN user_books u ON u.book_id = c.book_id AND u.user_id = {user} \
         WHERE c.code = {code} AND (c.owner = {user} OR c.instance = 0) \
         ORDER BY coalesce(c.owner = {user}, false) DESC, {} LIMIT 1",
        qualified(CODE_COLUMNS, "c"),
        qualified(BOOK_COLUMNS, "b"),
        instance_order("c.", lock),
    )
}

/// A row of `code_view_sql`.
pub(crate) fn code_view(r: &impl Fields) -> Result<crate::CodeView, StoreError> {
    let holdings = match r.opt_i64(36)? {
        None => Holdings::default(),
        Some(held) => Holdings {
            held,
            day: r.i64(37)?,
            day_claims: r.i64(38)?,
            redeemed: r.i64(39)?,
        },
    };
    Ok(crate::CodeView {
        code: code(r, 0)?,
        book: book(r, 11)?,
        holdings,
    })
}

/// Every code a user has owned, with its book, newest claim first. Placeholder: the user.
pub(crate) fn user_codes_sql(user: &str) -> String {
    format!(
        "SELECT {}, {} FROM codes c JOIN books b ON b.id = c.book_id \
         WHERE c.owner = {user} ORDER BY c.claimed_at DESC, c.id DESC",
        qualified(CODE_COLUMNS, "c"),
        qualified(BOOK_COLUMNS, "b"),
    )
}

/// A row of `user_codes_sql`.
pub(crate) fn user_code(r: &impl Fields) -> Result<(CodeInstance, Book), StoreError> {
    Ok((code(r, 0)?, book(r, 11)?))
}
