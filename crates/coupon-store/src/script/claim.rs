//! A batch of claims, decided per book under the book's row lock, which every claim of that book
//! takes first: lapsed claims go back to the pool, the claimers' counters and a code for every
//! claim are read at once, the rules decide every answer in arrival order, and the codes are dealt
//! from the returned queue and then from the book's cursor, in O(batch). Lock order is book, then
//! user rows (in user-id order), then codes, so claims cannot deadlock.

use std::collections::{BTreeMap, HashMap};

use coupon_core::rules::{self, Holdings};
use coupon_core::{Book, CodeInstance, CodeMode, CouponError, Timestamp};
use uuid::Uuid;

use super::book;
use super::lapse::{queue, return_lapsed, unqueue};
use super::stock::{self, Announce, Pool};
use crate::backend::{Fields, Tx};
use crate::outbox::{Change, Journal};
use crate::rows;
use crate::statements::Q;
use crate::{ClaimRequest, ClaimTarget, Claimed, Stock, StoreError};

write!(
    /// Claims for any code of a book are decided together per book, in arrival order, by set-based
    /// statements over the whole batch.
    Claim { batch: Vec<ClaimRequest>, now: Timestamp } -> Vec<Result<Claimed, CouponError>> =
    |tx, s, events| claim(tx, events, &s.batch, s.now).await;
    planning = crate::backend::Planning::Fresh; keyed = batch
);
read!(CheckStock { book_id: Uuid, now: Timestamp } -> (Book, Stock) = |tx, s| stock(tx, s.book_id, s.now).await);

/// A claim waiting for its book's turn in a batch.
#[derive(Debug, Clone, Copy)]
struct Pending {
    /// Its place in the batch.
    index: usize,
    /// For `assign/{code}`: the id of the named code's instance 0.
    named: Option<i64>,
}

/// Answers every request of the batch, in order; a store failure fails the whole batch.
pub(crate) async fn claim<T: Tx>(
    tx: &T,
    events: &Journal,
    batch: &[ClaimRequest],
    now: Timestamp,
) -> Result<Vec<Result<Claimed, CouponError>>, StoreError> {
    let targets = futures::future::try_join_all(batch.iter().map(|req| async move {
        match &req.target {
            ClaimTarget::Book(id) => Ok(Some((*id, None))),
            ClaimTarget::Code(code) => {
                let code = code.as_str().into();
                match tx.first(Q::CodeZero { code }).await? {
                    Some(row) => Ok(Some((row.uuid("book_id")?, Some(row.i64("id")?)))),
                    None => Ok::<_, StoreError>(None),
                }
            }
        }
    }))
    .await?;
    // Books in id order: the order their rows are locked in.
    let mut answers: Vec<Option<Result<Claimed, CouponError>>> = vec![None; batch.len()];
    let mut books: BTreeMap<Uuid, Vec<Pending>> = BTreeMap::new();
    for (index, target) in targets.into_iter().enumerate() {
        match target {
            Some((book, named)) => books.entry(book).or_default().push(Pending { index, named }),
            None => answers[index] = Some(Err(CouponError::NotFound("code"))),
        }
    }
    for (book_id, group) in books {
        let outcome = claim_in_book(tx, events, book_id, &group, batch, now).await?;
        for (i, answer) in group.iter().map(|r| r.index).zip(outcome) {
            answers[i] = Some(answer);
        }
    }
    Ok(answers
        .into_iter()
        .map(|a| a.expect("every request answered"))
        .collect())
}

async fn claim_in_book<T: Tx>(
    tx: &T,
    events: &Journal,
    book_id: Uuid,
    group: &[Pending],
    batch: &[ClaimRequest],
    now: Timestamp,
) -> Result<Vec<Result<Claimed, CouponError>>, StoreError> {
    let Some(book::LockedBook { book, cursor, pool, .. }) = book::lock(tx, book_id).await? else {
        return Ok(vec![Err(CouponError::NotFound("coupon book")); group.len()]);
    };
    if let Err(e) = book.check_claimable(now) {
        return Ok(vec![Err(e); group.len()]);
    }
    let returned = return_lapsed(tx, events, &book, now).await?;
    let users: Vec<&str> = group.iter().map(|r| batch[r.index].user_id.as_str()).collect();
    let metadata: Vec<String> = group
        .iter()
        .map(|r| rows::metadata_json(&batch[r.index].metadata))
        .collect();
    // A shared book holds one code text, so a named claim there takes any free instance.
    let (named, any): (Vec<_>, Vec<_>) = group
        .iter()
        .enumerate()
        .partition(|(_, r)| r.named.is_some() && book.code_mode == CodeMode::Unique);

    // The counters and a code for every claim are read at once; the rules then decide how many of
    // those codes go out.
    let (mut holdings, mut reserved) = futures::try_join!(
        read_counters(tx, book.id, &users),
        reserve(tx, book.id, cursor, any.len())
    )?;

    // Named claims go first: a code they name is not dealt to anyone else in the batch.
    let mut answers: Vec<Option<Result<i64, CouponError>>> = vec![None; group.len()];
    let mut claimed = HashMap::new();
    for (i, pending) in named {
        let h = holdings.entry(users[i].to_owned()).or_default();
        let id = pending.named.expect("partitioned on named");
        reserved.forget(id);
        answers[i] = Some(match rules::check_claim(&book, h, now) {
            Err(e) => Err(e),
            Ok(()) => match take(tx, &book, &[(id, users[i], &metadata[i])], now).await?.remove(&id) {
                None => Err(CouponError::CodeTaken),
                Some(code) => {
                    h.count_claim(now);
                    claimed.insert(id, code);
                    Ok(id)
                }
            },
        });
    }
    let any_users: Vec<&str> = any.iter().map(|(i, _)| users[*i]).collect();
    let wanted = rules::codes_wanted(&book, &holdings, &any_users, now);
    if reserved.len() < wanted && !reserved.exhausted {
        let more = fresh(tx, book.id, reserved.next_cursor(cursor), wanted - reserved.len()).await?;
        reserved.fresh.extend(more);
    }
    let dealt = reserved.deal(wanted, cursor);
    for ((i, _), answer) in any
        .iter()
        .zip(rules::hand_out(&book, &mut holdings, &any_users, dealt.codes, now))
    {
        answers[*i] = Some(answer);
    }

    let answers: Vec<Result<i64, CouponError>> = answers.into_iter().map(|a| a.expect("answered")).collect();
    let dealt_to: Vec<(i64, &str, &str)> = any
        .iter()
        .filter_map(|(i, _)| {
            answers[*i]
                .as_ref()
                .ok()
                .map(|id| (*id, users[*i], metadata[*i].as_str()))
        })
        .collect();
    let granted = granted_per_user(answers.iter().zip(&users).filter(|(a, _)| a.is_ok()).map(|(_, u)| *u));
    // The pool moves by what the batch takes if every dealt code is taken; if one is not, the
    // batch fails and the move is rolled back with it. So the move joins the other writes at once
    // instead of costing the book's lock one more round trip.
    let moved = returned as i64 - (claimed.len() + dealt_to.len()) as i64;
    // A code taken by name may be queued as returned (its claim lapsed): it leaves the queue, or
    // a later claim would pop it in place of a free code and find the book sold out.
    let by_name: Vec<i64> = claimed.keys().copied().collect();
    let (taken, (), (), (), (), ()) = futures::try_join!(
        take(tx, &book, &dealt_to, now),
        write_counters(tx, &book, &granted, now),
        queue(tx, book.id, &dealt.unused),
        unqueue(tx, book.id, &by_name),
        move_cursor(tx, book.id, cursor, dealt.cursor),
        move_pool(tx, book.id, moved),
    )?;
    if taken.len() != dealt_to.len() {
        return Err(StoreError::Conflict("a dealt code was not free"));
    }
    claimed.extend(taken);
    note_claims(tx, events, &book, pool, moved, &claimed, now).await?;
    answers
        .into_iter()
        .map(|a| match a {
            Err(e) => Ok(Err(e)),
            Ok(id) => match claimed.remove(&id) {
                Some(code) => Ok(Ok(Claimed {
                    code,
                    book: book.clone(),
                })),
                None => Err(StoreError::Conflict("a granted code was not taken")),
            },
        })
        .collect()
}

/// Moves the book's pool counter by `moved` (what the batch gave back, less what it took).
async fn move_pool<T: Tx>(tx: &T, book_id: Uuid, moved: i64) -> Result<(), StoreError> {
    if moved != 0 {
        tx.exec(Q::MovePool {
            book_id: book_id.into(),
            by: moved.into(),
        })
        .await?;
    }
    Ok(())
}

/// Notes the claims, and looks at the book's stock level now that its pool moved by `moved`.
async fn note_claims<T: Tx>(
    tx: &T,
    events: &Journal,
    book: &Book,
    pool: Pool,
    moved: i64,
    claimed: &HashMap<i64, CodeInstance>,
    now: Timestamp,
) -> Result<(), StoreError> {
    let shared = std::sync::Arc::new(book.clone());
    let mut codes: Vec<&CodeInstance> = claimed.values().collect();
    codes.sort_unstable_by_key(|c| c.id);
    for code in codes {
        let (code, book) = (code.clone(), shared.clone());
        events.note(now, Change::Claimed { code, book });
    }
    stock::settle(tx, events, book, (pool, pool.count + moved), Announce::Yes, now).await
}

/// The counters of the batch's users that exist yet, their rows locked in user-id order. Missing
/// rows are created by `write_counters`.
async fn read_counters<T: Tx>(tx: &T, book_id: Uuid, users: &[&str]) -> Result<HashMap<String, Holdings>, StoreError> {
    let mut ids = users.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let rows = tx
        .query(Q::Counters {
            book_id: book_id.into(),
            users: ids.as_slice().into(),
        })
        .await?;
    rows.iter()
        .map(|r| Ok((r.string("user_id")?, rows::holdings(r)?)))
        .collect()
}

/// Codes reserved for a batch before the rules say how many it takes.
struct Reserved {
    /// Taken off the returned queue, still free, in id order: dealt first.
    popped: Vec<i64>,
    /// Free codes from the cursor on, in id order.
    fresh: Vec<i64>,
    /// Fewer fresh codes than asked: the book has nothing more past the cursor.
    exhausted: bool,
}

/// The codes a batch hands out, the popped ones it does not (to queue again), and the new cursor.
struct Dealt {
    codes: Vec<i64>,
    unused: Vec<i64>,
    cursor: i64,
}

impl Reserved {
    fn len(&self) -> usize {
        self.popped.len() + self.fresh.len()
    }

    /// A code claimed by name is not dealt to anyone else.
    fn forget(&mut self, id: i64) {
        self.popped.retain(|c| *c != id);
        self.fresh.retain(|c| *c != id);
    }

    fn next_cursor(&self, cursor: i64) -> i64 {
        self.fresh.last().map_or(cursor, |last| last + 1)
    }

    /// The first `wanted` codes, popped before fresh. The cursor moves past the fresh codes handed
    /// out only; fresh codes left over stay beyond it, and popped ones go back on the queue.
    fn deal(mut self, wanted: usize, cursor: i64) -> Dealt {
        let from_fresh = wanted.saturating_sub(self.popped.len()).min(self.fresh.len());
        let unused = self.popped.split_off(wanted.min(self.popped.len()));
        self.fresh.truncate(from_fresh);
        let cursor = self.fresh.last().map_or(cursor, |last| last + 1);
        let mut codes = self.popped;
        codes.append(&mut self.fresh);
        Dealt { codes, unused, cursor }
    }
}

/// Reserves up to `wanted` codes of the book twice over, in one round trip: queued returned codes
/// (taken off the queue) and free codes from the cursor on. The book's row lock keeps every other
/// claim of it out meanwhile. Both are index range scans with a plain `LIMIT`, so the plan does not
/// depend on how many codes were claimed before.
async fn reserve<T: Tx>(tx: &T, book_id: Uuid, cursor: i64, wanted: usize) -> Result<Reserved, StoreError> {
    if wanted == 0 {
        return Ok(Reserved {
            popped: Vec::new(),
            fresh: Vec::new(),
            exhausted: false,
        });
    }
    let (popped, fresh) = futures::try_join!(
        async {
            tx.query(Q::PopReturned {
                book_id: book_id.into(),
                limit: (wanted as i64).into(),
            })
            .await
        },
        fresh(tx, book_id, cursor, wanted),
    )?;
    let mut free = Vec::with_capacity(popped.len());
    for row in popped {
        if row.bool("free")? {
            free.push(row.i64("code_id")?);
        }
    }
    free.sort_unstable();
    Ok(Reserved {
        popped: free,
        exhausted: fresh.len() < wanted,
        fresh,
    })
}

async fn fresh<T: Tx>(tx: &T, book_id: Uuid, cursor: i64, wanted: usize) -> Result<Vec<i64>, StoreError> {
    let rows = tx
        .query(Q::FreshCodes {
            book_id: book_id.into(),
            from: cursor.into(),
            limit: (wanted as i64).into(),
        })
        .await?;
    rows.iter().map(|r| r.i64("id")).collect()
}

async fn move_cursor<T: Tx>(tx: &T, book_id: Uuid, from: i64, to: i64) -> Result<(), StoreError> {
    if to > from {
        tx.exec(Q::MoveCursor {
            book_id: book_id.into(),
            cursor: to.into(),
        })
        .await?;
    }
    Ok(())
}

/// Gives codes to their claimers, with each claim's metadata, in one statement; a code no longer
/// free is left out of the answer.
/// Named codes are taken one request at a time (the answer decides their counts); dealt codes all
/// at once, and they are all free: nothing else claims from the book while its row is locked.
async fn take<T: Tx>(
    tx: &T,
    book: &Book,
    codes: &[(i64, &str, &str)],
    now: Timestamp,
) -> Result<HashMap<i64, CodeInstance>, StoreError> {
    if codes.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<i64> = codes.iter().map(|c| c.0).collect();
    let owners: Vec<&str> = codes.iter().map(|c| c.1).collect();
    let metadata: Vec<&str> = codes.iter().map(|c| c.2).collect();
    let expires = book
        .policies
        .claim_ttl_seconds
        .map(|ttl| now.plus_seconds(ttl).millis());
    let rows = tx
        .query(Q::TakeCodes {
            code_ids: ids.as_slice().into(),
            owners: owners.as_slice().into(),
            claimed_at: now.millis().into(),
            claim_expires_at: expires.into(),
            metadata: metadata.as_slice().into(),
        })
        .await?;
    rows.iter().map(|r| rows::code(r).map(|c| (c.id, c))).collect()
}

/// How many claims each user was granted, in user-id order: the counters a batch moves. Each
/// granted claim adds one code held and one claim today.
fn granted_per_user<'a>(claimers: impl IntoIterator<Item = &'a str>) -> Vec<(&'a str, i64)> {
    let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
    for user in claimers {
        *counts.entry(user).or_insert(0) += 1;
    }
    counts.into_iter().collect()
}

/// Counts the granted claims in one guarded statement, creating missing rows: a row that would
/// pass a limit is neither created nor updated, and the batch fails rather than oversell.
async fn write_counters<T: Tx>(tx: &T, book: &Book, granted: &[(&str, i64)], now: Timestamp) -> Result<(), StoreError> {
    if granted.is_empty() {
        return Ok(());
    }
    let (users, counts): (Vec<&str>, Vec<i64>) = granted.iter().copied().unzip();
    let written = tx
        .query(Q::WriteCounters {
            book_id: book.id.into(),
            users: users.as_slice().into(),
            day: now.utc_day().into(),
            max_codes_per_user: book.policies.max_codes_per_user.into(),
            claims_per_user_per_day: book.policies.claims_per_user_per_day.into(),
            claims: counts.as_slice().into(),
        })
        .await?;
    if written.len() != users.len() {
        return Err(StoreError::Conflict("per-user claim limits"));
    }
    Ok(())
}

/// The book, and what a claim on it would find now (`Q::Stock`).
pub(crate) async fn stock<T: Tx>(tx: &T, book_id: Uuid, now: Timestamp) -> Result<(Book, Stock), StoreError> {
    let row = tx
        .first(Q::Stock {
            book_id: book_id.into(),
            now: now.millis().into(),
        })
        .await?
        .ok_or(StoreError::not_found("coupon book"))?;
    let stock = if row.bool("available")? {
        Stock::Available
    } else {
        Stock::SoldOut {
            next_lapse: row.opt_i64("next_lapse")?.map(Timestamp::from_millis),
        }
    };
    Ok((rows::book(&row, "")?, stock))
}
