//! A book's pool of codes: upload, generate from a pattern, take out unheld codes, and list them
//! a page at a time. Every change moves the supply counter under the book's row lock.

use std::collections::HashSet;

use coupon_core::{Book, CodePattern, CodeState, Timestamp};
use uuid::Uuid;

use super::book::{bump_supply, fill, lock_existing, LockedBook};
use super::stock::{self, Announce, Pool};
use crate::backend::{Fields, Tx};
use crate::outbox::{Change, Journal};
use crate::rows;
use crate::statements::Q;
use crate::{AddedCodes, CodePage, CodeQuery, NotRemoved, Page, RemovedCodes, StoreError};

write!(AddCodes { book_id: Uuid, codes: Vec<String>, now: Timestamp } -> AddedCodes =
    |tx, s, events| add_codes(tx, events, s.book_id, &s.codes, s.now).await);
write!(GenerateCodes { book_id: Uuid, pattern: Option<CodePattern>, count: u64, now: Timestamp } -> u64 =
    |tx, s, events| generate_codes(tx, events, s.book_id, s.pattern.clone(), s.count, s.now).await);
write!(RemoveCodes { book_id: Uuid, codes: Vec<String>, now: Timestamp } -> RemovedCodes =
    |tx, s, events| remove_codes(tx, events, s.book_id, &s.codes, s.now).await);
read!(ListCodes { query: CodeQuery, now: Timestamp } -> (Book, CodePage) = |tx, s| codes(tx, &s.query, s.now).await);

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
        .query(Q::UploadCodes {
            book_id: book_id.into(),
            codes: codes.as_slice().into(),
        })
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
        .query(Q::NamedCodes {
            book_id: book_id.into(),
            codes: codes.as_slice().into(),
        })
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
        let code_ids = removable.as_slice().into();
        tx.exec(Q::UnqueueCodes {
            book_id: book_id.into(),
            code_ids,
        })
        .await?;
        let deleted = tx.exec(Q::DeleteCodes { code_ids }).await?;
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

/// The stored form of a derived state for `Q::ListCodes`, or `None` when no code of the book can
/// be in it (an expired book's codes are all `expired` or `redeemed`).
fn stored_filter(book: &Book, state: Option<CodeState>, now: Timestamp) -> Option<Option<&'static str>> {
    let expired = book.expires_at.is_some_and(|e| now > e);
    Some(match state {
        None => None,
        Some(CodeState::Redeemed) => Some("redeemed"),
        Some(CodeState::Expired) if expired => Some("unredeemed"),
        Some(_) if expired => return None,
        Some(CodeState::Expired) => return None,
        Some(CodeState::Available) => Some("available"),
        Some(CodeState::Active) => Some("active"),
        Some(CodeState::Locked) => Some("locked"),
    })
}

pub(crate) async fn codes<T: Tx>(tx: &T, q: &CodeQuery, now: Timestamp) -> Result<(Book, CodePage), StoreError> {
    let book = super::book::load(tx, q.book_id).await?;
    let Some(filter) = stored_filter(&book, q.state, now) else {
        return Ok((
            book,
            Page {
                items: Vec::new(),
                next: None,
            },
        ));
    };
    let rows = tx
        .query(Q::ListCodes {
            book_id: q.book_id.into(),
            after: q.after.unwrap_or(0).into(),
            limit: (q.limit as i64 + 1).into(),
            state: filter.into(),
            now: now.millis().into(),
        })
        .await?;
    let codes = rows.iter().map(rows::code).collect::<Result<Vec<_>, _>>()?;
    Ok((book, Page::from_overfetch(codes, q.limit, |c| c.id)))
}
