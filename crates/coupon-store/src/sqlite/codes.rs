//! Claim, lock, unlock and redeem on SQLite. Each runs inside the store's single write
//! transaction, so the state read before deciding cannot move before the guarded write.

use std::sync::LazyLock;

use coupon_core::rules::{self, Holdings};
use coupon_core::{Book, CodeInstance, CodeText, Redemption, Timestamp};
use rusqlite::{params, Connection};
use uuid::Uuid;

use super::{books, collect, first};
use crate::rows::{self, lapsed_sql, CODE_COLUMNS, HOLDINGS_COLUMNS, REDEMPTION_COLUMNS};
use crate::{CodeView, LockRequest, Locked, RedeemRequest, StoreError, UnlockRequest};

fn load_book(c: &Connection, id: Uuid) -> Result<Book, StoreError> {
    books::load(c, id)?.ok_or(StoreError::not_found("coupon book"))
}

/// The instance of `code` that `user` acts on: one they own (in `rows::instance_order`), else
/// instance 0 so the caller can tell why it is not theirs.
fn find_for_user(
    c: &Connection,
    code: &CodeText,
    user: &str,
    lock_id: Option<Uuid>,
) -> Result<CodeInstance, StoreError> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {CODE_COLUMNS} FROM codes WHERE code = ?1 AND owner = ?2 ORDER BY {} LIMIT 1",
            rows::instance_order("", "?3")
        )
    });
    let mut owned = c.prepare_cached(&SQL)?;
    if let Some(found) = first(
        &mut owned,
        params![code.as_str(), user, lock_id.map(|l| l.to_string())],
        |r| rows::code(r, 0),
    )? {
        return Ok(found);
    }
    let mut any = c.prepare_cached(&format!(
        "SELECT {CODE_COLUMNS} FROM codes WHERE code = ?1 AND instance = 0"
    ))?;
    first(&mut any, [code.as_str()], |r| rows::code(r, 0))?.ok_or(StoreError::not_found("code"))
}

fn holdings(c: &Connection, book_id: Uuid, user: &str) -> Result<Holdings, StoreError> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {HOLDINGS_COLUMNS} FROM user_books WHERE book_id = ?1 AND user_id = ?2"
    ))?;
    Ok(first(&mut stmt, params![book_id.to_string(), user], |r| rows::holdings(r))?.unwrap_or_default())
}

pub(super) fn lock(c: &Connection, req: &LockRequest, now: Timestamp) -> Result<Locked, StoreError> {
    let inst = find_for_user(c, &req.code, &req.user_id, None)?;
    let book = load_book(c, inst.book_id)?;
    rules::check_lock(&book, &inst, &req.user_id, now)?;
    let lock_id = Uuid::now_v7();
    let until = now.plus_seconds(book.policies.lock_ttl_seconds);
    let n = c
        .prepare_cached(&format!(
            "UPDATE codes SET lock_id = ?3, locked_until = ?4 \
             WHERE id = ?1 AND owner = ?2 AND status = 'active' \
               AND (locked_until IS NULL OR locked_until <= ?5) AND NOT {}",
            lapsed_sql("", "?5")
        ))?
        .execute(params![
            inst.id,
            req.user_id,
            lock_id.to_string(),
            until.millis(),
            now.millis()
        ])?;
    if n != 1 {
        return Err(StoreError::Conflict("lock"));
    }
    Ok(Locked {
        code: inst.code,
        lock_id,
        locked_until: until,
    })
}

pub(super) fn unlock(c: &Connection, req: &UnlockRequest, now: Timestamp) -> Result<(), StoreError> {
    let inst = find_for_user(c, &req.code, &req.user_id, req.lock_id)?;
    let book = load_book(c, inst.book_id)?;
    rules::check_unlock(&book, &inst, &req.user_id, req.lock_id, now)?;
    let n = c
        .prepare_cached(
            "UPDATE codes SET lock_id = NULL, locked_until = NULL \
             WHERE id = ?1 AND owner = ?2 AND lock_id = ?3 AND locked_until > ?4",
        )?
        .execute(params![
            inst.id,
            req.user_id,
            inst.lock_id.map(|l| l.to_string()),
            now.millis()
        ])?;
    if n != 1 {
        return Err(StoreError::Conflict("unlock"));
    }
    Ok(())
}

fn prior_redemption(c: &Connection, code: &str, user: &str, order_id: &str) -> Result<Option<Redemption>, StoreError> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {REDEMPTION_COLUMNS} FROM redemptions WHERE code = ?1 AND user_id = ?2 AND order_id = ?3"
    ))?;
    first(&mut stmt, params![code, user, order_id], |r| rows::redemption(r))
}

pub(super) fn redeem(c: &Connection, req: &RedeemRequest, now: Timestamp) -> Result<Redemption, StoreError> {
    let user = req.user_id.as_str();
    let inst = find_for_user(c, &req.code, user, req.lock_id)?;
    if let Some(order_id) = &req.order_id {
        if let Some(prior) = prior_redemption(c, &inst.code, user, order_id)? {
            return Ok(prior);
        }
    }
    let book = load_book(c, inst.book_id)?;
    let held = holdings(c, book.id, user)?;
    let applied = rules::check_redeem(&book, &inst, user, &held, req.lock_id, req.order_amount, now)?;
    let redemption = req.record(&inst, applied, now);
    let recorded = c
        .prepare_cached(
            "INSERT INTO redemptions (id, code_id, book_id, code, user_id, order_id, order_amount, \
           discount_applied, final_price, redeemed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
         ON CONFLICT (code, user_id, order_id) DO NOTHING",
        )?
        .execute(params![
            redemption.redemption_id.to_string(),
            inst.id,
            book.id.to_string(),
            inst.code,
            user,
            redemption.order_id,
            redemption.order_amount,
            redemption.discount_applied,
            redemption.final_price,
            now.millis(),
        ])?;
    if recorded != 1 {
        return Err(StoreError::Conflict("redemption recorded twice"));
    }
    let used = c
        .prepare_cached(&format!(
            "UPDATE codes SET redemptions = redemptions + 1, \
           status = CASE WHEN redemptions + 1 >= ?3 THEN 'redeemed' ELSE 'active' END, \
           lock_id = NULL, locked_until = NULL \
         WHERE id = ?1 AND owner = ?2 AND status = 'active' AND redemptions < ?3 \
           AND (locked_until IS NULL OR locked_until <= ?4 OR lock_id = ?5) AND NOT {}",
            lapsed_sql("", "?4")
        ))?
        .execute(params![
            inst.id,
            user,
            book.policies.max_redemptions_per_code,
            now.millis(),
            req.lock_id.map(|l| l.to_string())
        ])?;
    let counted = c
        .prepare_cached(
            "INSERT INTO user_books (book_id, user_id, redeemed) VALUES (?1, ?2, 1) \
         ON CONFLICT (book_id, user_id) DO UPDATE SET redeemed = redeemed + 1 \
         WHERE ?3 IS NULL OR redeemed < ?3",
        )?
        .execute(params![
            book.id.to_string(),
            user,
            book.policies.max_redemptions_per_user
        ])?;
    if used != 1 || counted != 1 {
        return Err(StoreError::Conflict("redemption limits"));
    }
    Ok(redemption)
}

/// The code as `user` sees it, with its book and the user's counters (`rows::code_view_sql`).
pub(super) fn view(c: &Connection, code: &CodeText, user: &str, lock_id: Option<Uuid>) -> Result<CodeView, StoreError> {
    static SQL: LazyLock<String> = LazyLock::new(|| rows::code_view_sql("?1", "?2", "?3"));
    let mut stmt = c.prepare_cached(&SQL)?;
    first(
        &mut stmt,
        params![code.as_str(), user, lock_id.map(|l| l.to_string())],
        |r| rows::code_view(r),
    )?
    .ok_or(StoreError::not_found("code"))
}

/// Every code the user has owned, with its book (`rows::user_codes_sql`).
pub(super) fn of_user(c: &Connection, user: &str) -> Result<Vec<(CodeInstance, Book)>, StoreError> {
    static SQL: LazyLock<String> = LazyLock::new(|| rows::user_codes_sql("?1"));
    let mut stmt = c.prepare_cached(&SQL)?;
    collect(&mut stmt, [user], |r| rows::user_code(r))
}
