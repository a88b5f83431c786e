//! Claim, lock, unlock and redeem on PostgreSQL. The rows a decision rests on are read `FOR UPDATE`
//! (so a concurrent request waits and then sees the committed result), free codes are picked with
//! `SKIP LOCKED`, and every write is a conditional update whose row count is checked.

use std::sync::LazyLock;

use coupon_core::rules::{self, Holdings};
use coupon_core::{Book, CodeInstance, CodeText, Redemption, Timestamp};
use deadpool_postgres::{GenericClient, Transaction};
use uuid::Uuid;

use super::{all, books, exec, opt};
use crate::rows::{self, lapsed_sql, CODE_COLUMNS, HOLDINGS_COLUMNS, REDEMPTION_COLUMNS};
use crate::{CodeView, LockRequest, Locked, RedeemRequest, StoreError, UnlockRequest};

async fn load_book(tx: &impl GenericClient, id: Uuid) -> Result<Book, StoreError> {
    books::load(tx, id).await?.ok_or(StoreError::not_found("coupon book"))
}

async fn instance_zero(tx: &impl GenericClient, code: &str) -> Result<CodeInstance, StoreError> {
    let sql = format!("SELECT {CODE_COLUMNS} FROM codes WHERE code = $1 AND instance = 0");
    let row = opt(tx, &sql, &[&code]).await?.ok_or(StoreError::not_found("code"))?;
    rows::code(&row, 0)
}

/// The instance of `code` that `user` acts on, locked: one they own (in `rows::instance_order`),
/// else instance 0 (unlocked) so the caller can tell why it is not theirs.
async fn find_for_user(
    tx: &impl GenericClient,
    code: &CodeText,
    user: &str,
    lock_id: Option<Uuid>,
) -> Result<CodeInstance, StoreError> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {CODE_COLUMNS} FROM codes WHERE code = $1 AND owner = $2 ORDER BY {} LIMIT 1 FOR UPDATE",
            rows::instance_order("", "$3")
        )
    });
    match opt(tx, &SQL, &[&code.as_str(), &user, &lock_id]).await? {
        Some(row) => rows::code(&row, 0),
        None => instance_zero(tx, code.as_str()).await,
    }
}

/// The user's counters in the book, with their row locked until the transaction ends.
async fn holdings_for_update(tx: &Transaction<'_>, book_id: Uuid, user: &str) -> Result<Holdings, StoreError> {
    exec(
        tx,
        "INSERT INTO user_books (book_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        &[&book_id, &user],
    )
    .await?;
    let sql = format!("SELECT {HOLDINGS_COLUMNS} FROM user_books WHERE book_id = $1 AND user_id = $2 FOR UPDATE");
    let row = opt(tx, &sql, &[&book_id, &user])
        .await?
        .ok_or(StoreError::Conflict("user counters"))?;
    rows::holdings(&row)
}

pub(super) async fn lock(tx: &Transaction<'_>, req: &LockRequest, now: Timestamp) -> Result<Locked, StoreError> {
    let inst = find_for_user(tx, &req.code, &req.user_id, None).await?;
    let book = load_book(tx, inst.book_id).await?;
    rules::check_lock(&book, &inst, &req.user_id, now)?;
    let lock_id = Uuid::now_v7();
    let until = now.plus_seconds(book.policies.lock_ttl_seconds);
    let sql = format!(
        "UPDATE codes SET lock_id = $3, locked_until = $4 \
         WHERE id = $1 AND owner = $2 AND status = 'active' \
           AND (locked_until IS NULL OR locked_until <= $5) AND NOT {}",
        lapsed_sql("", "$5")
    );
    let n = exec(
        tx,
        &sql,
        &[&inst.id, &req.user_id, &lock_id, &until.millis(), &now.millis()],
    )
    .await?;
    if n != 1 {
        return Err(StoreError::Conflict("lock"));
    }
    Ok(Locked {
        code: inst.code,
        lock_id,
        locked_until: until,
    })
}

pub(super) async fn unlock(tx: &Transaction<'_>, req: &UnlockRequest, now: Timestamp) -> Result<(), StoreError> {
    let inst = find_for_user(tx, &req.code, &req.user_id, req.lock_id).await?;
    let book = load_book(tx, inst.book_id).await?;
    rules::check_unlock(&book, &inst, &req.user_id, req.lock_id, now)?;
    let n = exec(
        tx,
        "UPDATE codes SET lock_id = NULL, locked_until = NULL \
         WHERE id = $1 AND owner = $2 AND lock_id = $3 AND locked_until > $4",
        &[&inst.id, &req.user_id, &inst.lock_id, &now.millis()],
    )
    .await?;
    if n != 1 {
        return Err(StoreError::Conflict("unlock"));
    }
    Ok(())
}

async fn prior_redemption(
    tx: &Transaction<'_>,
    code: &str,
    user: &str,
    order_id: &str,
) -> Result<Option<Redemption>, StoreError> {
    let sql =
        format!("SELECT {REDEMPTION_COLUMNS} FROM redemptions WHERE code = $1 AND user_id = $2 AND order_id = $3");
    opt(tx, &sql, &[&code, &user, &order_id])
        .await?
        .map(|r| rows::redemption(&r))
        .transpose()
}

pub(super) async fn redeem(
    tx: &Transaction<'_>,
    req: &RedeemRequest,
    now: Timestamp,
) -> Result<Redemption, StoreError> {
    let user = req.user_id.as_str();
    // Locking the code first serializes repeats of one redemption: the second sees the first's record.
    let inst = find_for_user(tx, &req.code, user, req.lock_id).await?;
    if let Some(order_id) = &req.order_id {
        if let Some(prior) = prior_redemption(tx, &inst.code, user, order_id).await? {
            return Ok(prior);
        }
    }
    let book = load_book(tx, inst.book_id).await?;
    let held = holdings_for_update(tx, book.id, user).await?;
    let applied = rules::check_redeem(&book, &inst, user, &held, req.lock_id, req.order_amount, now)?;
    let redemption = req.record(&inst, applied, now);
    let recorded = exec(
        tx,
        "INSERT INTO redemptions (id, code_id, book_id, code, user_id, order_id, order_amount, \
           discount_applied, final_price, redeemed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (code, user_id, order_id) DO NOTHING",
        &[
            &redemption.redemption_id,
            &inst.id,
            &book.id,
            &inst.code,
            &user,
            &redemption.order_id,
            &redemption.order_amount,
            &redemption.discount_applied,
            &redemption.final_price,
            &now.millis(),
        ],
    )
    .await?;
    if recorded != 1 {
        return Err(StoreError::Conflict("redemption recorded twice"));
    }
    let sql = format!(
        "UPDATE codes SET redemptions = redemptions + 1, \
           status = CASE WHEN redemptions + 1 >= $3 THEN 'redeemed' ELSE 'active' END, \
           lock_id = NULL, locked_until = NULL \
         WHERE id = $1 AND owner = $2 AND status = 'active' AND redemptions < $3 \
           AND (locked_until IS NULL OR locked_until <= $4 OR lock_id = $5) AND NOT {}",
        lapsed_sql("", "$4")
    );
    let used = exec(
        tx,
        &sql,
        &[
            &inst.id,
            &user,
            &book.policies.max_redemptions_per_code,
            &now.millis(),
            &req.lock_id,
        ],
    )
    .await?;
    let counted = exec(
        tx,
        "UPDATE user_books SET redeemed = redeemed + 1 \
         WHERE book_id = $1 AND user_id = $2 AND ($3::bigint IS NULL OR redeemed < $3)",
        &[&book.id, &user, &book.policies.max_redemptions_per_user],
    )
    .await?;
    if used != 1 || counted != 1 {
        return Err(StoreError::Conflict("redemption limits"));
    }
    Ok(redemption)
}

/// The code as `user` sees it, with its book and the user's counters (`rows::code_view_sql`).
pub(super) async fn view(
    c: &impl GenericClient,
    code: &CodeText,
    user: &str,
    lock_id: Option<Uuid>,
) -> Result<CodeView, StoreError> {
    static SQL: LazyLock<String> = LazyLock::new(|| rows::code_view_sql("$1", "$2", "$3"));
    let row = opt(c, &SQL, &[&code.as_str(), &user, &lock_id])
        .await?
        .ok_or(StoreError::not_found("code"))?;
    rows::code_view(&row)
}

/// Every code the user has owned, with its book (`rows::user_codes_sql`).
pub(super) async fn of_user(c: &impl GenericClient, user: &str) -> Result<Vec<(CodeInstance, Book)>, StoreError> {
    static SQL: LazyLock<String> = LazyLock::new(|| rows::user_codes_sql("$1"));
    all(c, &SQL, &[&user]).await?.iter().map(rows::user_code).collect()
}
