//! Claims on SQLite, a batch at a time, inside the store's single write transaction: the same steps
//! as on PostgreSQL (lapsed claims back to the pool, counters read, every answer decided by the
//! rules in arrival order, codes dealt from the returned queue and then the book's cursor), with
//! per-row statements, which cost little in-process. One commit covers the whole batch.

use std::collections::HashMap;

use coupon_core::rules::{self, Holdings};
use coupon_core::{Book, CodeInstance, CodeMode, CouponError, Timestamp};
use rusqlite::{params, Connection};
use uuid::Uuid;

use super::{collect, first};
use crate::claim_batch::{by_book, granted_per_user, Pending};
use crate::rows::{self, lapsed_sql, Fields, BOOK_COLUMNS, CODE_COLUMNS, HOLDINGS_COLUMNS};
use crate::{ClaimRequest, ClaimTarget, Claimed, Stock, StoreError};

/// The book, and what a claim on it would find now (`rows::stock_sql`).
pub(super) fn stock(c: &Connection, book_id: Uuid, now: Timestamp) -> Result<(Book, Stock), StoreError> {
    let mut stmt = c.prepare_cached(&rows::stock_sql("?1", "?2"))?;
    first(&mut stmt, params![book_id.to_string(), now.millis()], |r| {
        Ok((rows::book(r, 0)?, Stock::from_row(r.i64(25)? == 1, r.opt_i64(26)?)))
    })?
    .ok_or(StoreError::not_found("coupon book"))
}

/// Answers every request of the batch, in order; a store failure fails the whole batch.
pub(super) fn claim(
    c: &Connection,
    batch: &[ClaimRequest],
    now: Timestamp,
) -> Result<Vec<Result<Claimed, CouponError>>, StoreError> {
    let mut zero = c.prepare_cached("SELECT book_id, id FROM codes WHERE code = ?1 AND instance = 0")?;
    let targets = batch
        .iter()
        .map(|req| match &req.target {
            ClaimTarget::Book(id) => Ok(Some((*id, None))),
            ClaimTarget::Code(code) => first(&mut zero, [code.as_str()], |r| Ok((r.uuid(0)?, Some(r.i64(1)?)))),
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let mut answers: Vec<Option<Result<Claimed, CouponError>>> = vec![None; batch.len()];
    for (book_id, group) in by_book(&targets, &mut answers) {
        let outcome = claim_in_book(c, book_id, &group, batch, now)?;
        for (i, answer) in group.iter().map(|r| r.index).zip(outcome) {
            answers[i] = Some(answer);
        }
    }
    Ok(answers
        .into_iter()
        .map(|a| a.expect("every request answered"))
        .collect())
}

fn claim_in_book(
    c: &Connection,
    book_id: Uuid,
    group: &[Pending],
    batch: &[ClaimRequest],
    now: Timestamp,
) -> Result<Vec<Result<Claimed, CouponError>>, StoreError> {
    let mut stmt = c.prepare_cached(&format!("SELECT {BOOK_COLUMNS}, deal_cursor FROM books WHERE id = ?1"))?;
    let Some((book, cursor)) = first(&mut stmt, [book_id.to_string()], |r| {
        Ok((rows::book(r, 0)?, r.i64(25)?))
    })?
    else {
        return Ok(vec![Err(CouponError::NotFound("coupon book")); group.len()]);
    };
    if let Err(e) = book.check_claimable(now) {
        return Ok(vec![Err(e); group.len()]);
    }
    return_lapsed(c, &book, now)?;
    let users: Vec<&str> = group.iter().map(|r| batch[r.index].user_id.as_str()).collect();
    let mut holdings = read_counters(c, book.id, &users)?;

    // A shared book holds one code text, so a named claim there takes any free instance. Named
    // claims go first, so that the codes they name are not dealt to others in the same batch.
    let (named, any): (Vec<_>, Vec<_>) = group
        .iter()
        .enumerate()
        .partition(|(_, r)| r.named.is_some() && book.code_mode == CodeMode::Unique);
    let mut answers: Vec<Option<Result<Claimed, CouponError>>> = vec![None; group.len()];
    for (i, pending) in named {
        let h = holdings.entry(users[i].to_owned()).or_default();
        let id = pending.named.expect("partitioned on named");
        answers[i] = Some(match rules::check_claim(&book, h, now) {
            Err(e) => Err(e),
            Ok(()) => match take(c, &book, id, users[i], now)? {
                None => Err(CouponError::CodeTaken),
                Some(claimed) => {
                    h.count_claim(now);
                    Ok(claimed)
                }
            },
        });
    }
    let any_users: Vec<&str> = any.iter().map(|(i, _)| users[*i]).collect();
    let wanted = rules::codes_wanted(&book, &holdings, &any_users, now);
    let dealt = deal(c, &book, cursor, wanted)?;
    for ((i, _), answer) in any
        .iter()
        .zip(rules::hand_out(&book, &mut holdings, &any_users, dealt, now))
    {
        answers[*i] = Some(match answer {
            Err(e) => Err(e),
            Ok(id) => Ok(take(c, &book, id, users[*i], now)?.ok_or(StoreError::Conflict("a dealt code was not free"))?),
        });
    }
    let answers: Vec<Result<Claimed, CouponError>> = answers.into_iter().map(|a| a.expect("answered")).collect();
    let granted = granted_per_user(answers.iter().zip(&users).filter(|(a, _)| a.is_ok()).map(|(_, u)| *u));
    write_counters(c, &book, &granted, now)?;
    Ok(answers)
}

/// Puts the book's lapsed claims back in the pool, queued to be dealt first, and takes them off
/// their holders' counts.
fn return_lapsed(c: &Connection, book: &Book, now: Timestamp) -> Result<(), StoreError> {
    if book.policies.claim_ttl_seconds.is_none() {
        return Ok(());
    }
    let mut lapsed = c.prepare_cached(&format!(
        "SELECT id, owner FROM codes WHERE book_id = ?1 AND {}",
        lapsed_sql("", "?2")
    ))?;
    let freed = collect(&mut lapsed, params![book.id.to_string(), now.millis()], |r| {
        Ok((r.i64(0)?, r.string(1)?))
    })?;
    let mut free = c.prepare_cached(
        "UPDATE codes SET status = 'available', owner = NULL, claimed_at = NULL, \
           claim_expires_at = NULL, lock_id = NULL, locked_until = NULL WHERE id = ?1",
    )?;
    let mut queue = c.prepare_cached("INSERT OR IGNORE INTO returned_codes (book_id, code_id) VALUES (?1, ?2)")?;
    let mut charge = c.prepare_cached("UPDATE user_books SET held = held - 1 WHERE book_id = ?1 AND user_id = ?2")?;
    for (id, owner) in freed {
        free.execute([id])?;
        queue.execute(params![book.id.to_string(), id])?;
        charge.execute(params![book.id.to_string(), owner])?;
    }
    Ok(())
}

/// The counters of the batch's users that exist yet; missing rows are created by `write_counters`.
fn read_counters(c: &Connection, book_id: Uuid, users: &[&str]) -> Result<HashMap<String, Holdings>, StoreError> {
    let mut read = c.prepare_cached(&format!(
        "SELECT {HOLDINGS_COLUMNS} FROM user_books WHERE book_id = ?1 AND user_id = ?2"
    ))?;
    let mut out = HashMap::new();
    for user in users {
        if !out.contains_key(*user) {
            if let Some(h) = first(&mut read, params![book_id.to_string(), user], |r| rows::holdings(r))? {
                out.insert(user.to_string(), h);
            }
        }
    }
    Ok(out)
}

/// Reserves up to `wanted` free codes of the book: returned ones first, then from the cursor on,
/// moving the cursor past them.
fn deal(c: &Connection, book: &Book, cursor: i64, wanted: usize) -> Result<Vec<i64>, StoreError> {
    if wanted == 0 {
        return Ok(Vec::new());
    }
    let mut pop = c.prepare_cached(
        "DELETE FROM returned_codes WHERE book_id = ?1 AND code_id IN \
           (SELECT code_id FROM returned_codes WHERE book_id = ?1 ORDER BY code_id LIMIT ?2) \
         RETURNING code_id",
    )?;
    let popped = collect(&mut pop, params![book.id.to_string(), wanted as i64], |r| r.i64(0))?;
    let mut free = c.prepare_cached("SELECT status = 'available' FROM codes WHERE id = ?1")?;
    let mut dealt = Vec::with_capacity(wanted);
    for id in popped {
        if first(&mut free, [id], |r| r.i64(0))? == Some(1) {
            dealt.push(id);
        }
    }
    let more = wanted - dealt.len();
    if more > 0 {
        let mut next = c.prepare_cached(
            "SELECT id FROM codes WHERE book_id = ?1 AND id >= ?2 AND status = 'available' ORDER BY id LIMIT ?3",
        )?;
        let picked = collect(&mut next, params![book.id.to_string(), cursor, more as i64], |r| {
            r.i64(0)
        })?;
        if let Some(last) = picked.last() {
            c.prepare_cached("UPDATE books SET deal_cursor = ?2 WHERE id = ?1")?
                .execute(params![book.id.to_string(), last + 1])?;
        }
        dealt.extend(picked);
    }
    Ok(dealt)
}

/// Gives the code to its claimer if it is still free.
fn take(c: &Connection, book: &Book, id: i64, user: &str, now: Timestamp) -> Result<Option<Claimed>, StoreError> {
    let expires = book
        .policies
        .claim_ttl_seconds
        .map(|ttl| now.plus_seconds(ttl).millis());
    let mut stmt = c.prepare_cached(&format!(
        "UPDATE codes SET status = 'active', owner = ?2, claimed_at = ?3, claim_expires_at = ?4 \
         WHERE id = ?1 AND status = 'available' RETURNING {CODE_COLUMNS}"
    ))?;
    let code: Option<CodeInstance> = first(&mut stmt, params![id, user, now.millis(), expires], |r| {
        rows::code(r, 0)
    })?;
    Ok(code.map(|code| Claimed {
        code,
        book: book.clone(),
    }))
}

/// Counts the granted claims with a guarded upsert per user, creating missing rows: a row that
/// would pass a limit is neither created nor updated, and the batch fails rather than oversell.
fn write_counters(c: &Connection, book: &Book, granted: &[(&str, i64)], now: Timestamp) -> Result<(), StoreError> {
    let mut stmt = c.prepare_cached(
        "INSERT INTO user_books (book_id, user_id, held, day, day_claims) \
         SELECT ?1, ?2, ?3, ?4, ?3 WHERE (?5 IS NULL OR ?3 <= ?5) AND (?6 IS NULL OR ?3 <= ?6) \
         ON CONFLICT (book_id, user_id) DO UPDATE SET held = held + excluded.held, \
           day_claims = (CASE WHEN day = excluded.day THEN day_claims ELSE 0 END) + excluded.day_claims, \
           day = excluded.day \
         WHERE (?5 IS NULL OR held + excluded.held <= ?5) \
           AND (?6 IS NULL OR (CASE WHEN day = excluded.day THEN day_claims ELSE 0 END) + excluded.day_claims <= ?6)",
    )?;
    for (user, n) in granted {
        let written = stmt.execute(params![
            book.id.to_string(),
            user,
            n,
            now.utc_day(),
            book.policies.max_codes_per_user,
            book.policies.claims_per_user_per_day,
        ])?;
        if written != 1 {
            return Err(StoreError::Conflict("per-user claim limits"));
        }
    }
    Ok(())
}
