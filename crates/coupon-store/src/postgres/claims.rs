//! Claims on PostgreSQL, a batch at a time. Each book of the batch is handled set-based under its
//! row lock, which every claim of that book takes first: lapsed claims go back to the pool, the
//! claimers' counters are read in one statement, the rules decide every answer in arrival order,
//! and the codes are dealt from the returned queue and then the book's cursor, in O(batch). Lock
//! order is book, then user rows (in user-id order), then codes, so claims cannot deadlock.

use std::collections::HashMap;

use coupon_core::rules::{self, Holdings};
use coupon_core::{Book, CodeInstance, CodeMode, CouponError, Timestamp};
use deadpool_postgres::Transaction;
use uuid::Uuid;

use super::{all, opt};
use crate::claim_batch::{by_book, granted_per_user, Pending};
use crate::rows::{self, lapsed_sql, Fields, BOOK_COLUMNS, CODE_COLUMNS};
use crate::{ClaimRequest, ClaimTarget, Claimed, StoreError};

/// Answers every request of the batch, in order; a store failure fails the whole batch.
pub(super) async fn claim(
    tx: &Transaction<'_>,
    batch: &[ClaimRequest],
    now: Timestamp,
) -> Result<Vec<Result<Claimed, CouponError>>, StoreError> {
    let mut targets = Vec::with_capacity(batch.len());
    for req in batch {
        targets.push(match &req.target {
            ClaimTarget::Book(id) => Some((*id, None)),
            ClaimTarget::Code(code) => {
                let sql = "SELECT book_id, id FROM codes WHERE code = $1 AND instance = 0";
                match opt(tx, sql, &[&code.as_str()]).await? {
                    Some(row) => Some((row.uuid(0)?, Some(row.i64(1)?))),
                    None => None,
                }
            }
        });
    }
    let mut answers: Vec<Option<Result<Claimed, CouponError>>> = vec![None; batch.len()];
    for (book_id, group) in by_book(&targets, &mut answers) {
        let outcome = claim_in_book(tx, book_id, &group, batch, now).await?;
        for (i, answer) in group.iter().map(|r| r.index).zip(outcome) {
            answers[i] = Some(answer);
        }
    }
    Ok(answers
        .into_iter()
        .map(|a| a.expect("every request answered"))
        .collect())
}

async fn claim_in_book(
    tx: &Transaction<'_>,
    book_id: Uuid,
    group: &[Pending],
    batch: &[ClaimRequest],
    now: Timestamp,
) -> Result<Vec<Result<Claimed, CouponError>>, StoreError> {
    let sql = format!("SELECT {BOOK_COLUMNS}, deal_cursor FROM books WHERE id = $1 FOR UPDATE");
    let Some(row) = opt(tx, &sql, &[&book_id]).await? else {
        return Ok(vec![Err(CouponError::NotFound("coupon book")); group.len()]);
    };
    let book = rows::book(&row, 0)?;
    let cursor = row.i64(25)?;
    if let Err(e) = book.check_claimable(now) {
        return Ok(vec![Err(e); group.len()]);
    }
    return_lapsed(tx, &book, now).await?;
    let users: Vec<&str> = group.iter().map(|r| batch[r.index].user_id.as_str()).collect();
    // A shared book holds one code text, so a named claim there takes any free instance.
    let (named, any): (Vec<_>, Vec<_>) = group
        .iter()
        .enumerate()
        .partition(|(_, r)| r.named.is_some() && book.code_mode == CodeMode::Unique);

    // The counters and a code for every claim are read at once (pipelined on the connection); the
    // rules then decide how many of those codes go out, and the rest are queued again.
    let (mut holdings, mut dealt) =
        tokio::try_join!(read_counters(tx, book.id, &users), deal(tx, book.id, cursor, any.len()))?;

    // Named claims go first: a code they name is not dealt to anyone else in the batch.
    let mut answers: Vec<Option<Result<i64, CouponError>>> = vec![None; group.len()];
    let mut claimed = HashMap::new();
    for (i, pending) in named {
        let h = holdings.entry(users[i].to_owned()).or_default();
        let id = pending.named.expect("partitioned on named");
        dealt.ids.retain(|dealt| *dealt != id);
        answers[i] = Some(match rules::check_claim(&book, h, now) {
            Err(e) => Err(e),
            Ok(()) => match take(tx, &book, &[(id, users[i])], now).await?.remove(&id) {
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
    if dealt.ids.len() < wanted && !dealt.exhausted {
        let more = deal(tx, book.id, dealt.cursor, wanted - dealt.ids.len()).await?;
        dealt.ids.extend(more.ids);
        dealt.spare.extend(more.spare);
    }
    let mut unused = dealt.ids.split_off(wanted.min(dealt.ids.len()));
    unused.append(&mut dealt.spare);
    for ((i, _), answer) in any
        .iter()
        .zip(rules::hand_out(&book, &mut holdings, &any_users, dealt.ids, now))
    {
        answers[*i] = Some(answer);
    }

    let answers: Vec<Result<i64, CouponError>> = answers.into_iter().map(|a| a.expect("answered")).collect();
    let dealt_to: Vec<(i64, &str)> = any
        .iter()
        .filter_map(|(i, _)| answers[*i].as_ref().ok().map(|id| (*id, users[*i])))
        .collect();
    let granted = granted_per_user(answers.iter().zip(&users).filter(|(a, _)| a.is_ok()).map(|(_, u)| *u));
    let (taken, (), ()) = tokio::try_join!(
        take(tx, &book, &dealt_to, now),
        write_counters(tx, &book, &granted, now),
        requeue(tx, book.id, &unused),
    )?;
    if taken.len() != dealt_to.len() {
        return Err(StoreError::Conflict("a dealt code was not free"));
    }
    claimed.extend(taken);
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

/// Puts the book's lapsed claims back in the pool, queued to be dealt first, and takes them off
/// their holders' counts, in one statement. Owners are read from the rows as locked, never from an
/// older snapshot; rows another transaction holds (a redemption racing the lapse) are skipped until
/// the next claim.
async fn return_lapsed(tx: &Transaction<'_>, book: &Book, now: Timestamp) -> Result<(), StoreError> {
    if book.policies.claim_ttl_seconds.is_none() {
        return Ok(());
    }
    let sql = format!(
        "WITH lapsed AS (SELECT id, owner FROM codes WHERE book_id = $1 AND {} ORDER BY id FOR UPDATE SKIP LOCKED), \
         freed AS (UPDATE codes c SET status = 'available', owner = NULL, claimed_at = NULL, \
             claim_expires_at = NULL, lock_id = NULL, locked_until = NULL \
           FROM lapsed WHERE c.id = lapsed.id RETURNING c.id, lapsed.owner), \
         queued AS (INSERT INTO returned_codes (book_id, code_id) SELECT $1, id FROM freed ON CONFLICT DO NOTHING), \
         lost AS (SELECT owner, count(*) AS n FROM freed GROUP BY owner) \
         UPDATE user_books u SET held = u.held - lost.n FROM lost WHERE u.book_id = $1 AND u.user_id = lost.owner",
        lapsed_sql("", "$2")
    );
    super::exec(tx, &sql, &[&book.id, &now.millis()]).await?;
    Ok(())
}

/// The counters of the batch's users that exist yet, their rows locked in user-id order. Missing
/// rows are created by `write_counters`.
async fn read_counters(
    tx: &Transaction<'_>,
    book_id: Uuid,
    users: &[&str],
) -> Result<HashMap<String, Holdings>, StoreError> {
    let mut ids = users.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let rows = all(
        tx,
        "SELECT u.user_id, u.held, u.day, u.day_claims, u.redeemed \
         FROM unnest($2::text[]) AS v(user_id) JOIN user_books u ON u.book_id = $1 AND u.user_id = v.user_id \
         ORDER BY u.user_id FOR UPDATE OF u",
        &[&book_id, &ids],
    )
    .await?;
    rows.iter()
        .map(|r| {
            let h = Holdings {
                held: r.i64(1)?,
                day: r.i64(2)?,
                day_claims: r.i64(3)?,
                redeemed: r.i64(4)?,
            };
            Ok((r.string(0)?, h))
        })
        .collect()
}

/// Codes reserved for a batch, and where the book's cursor now stands.
struct Dealt {
    ids: Vec<i64>,
    /// Reserved beyond what was asked for: to be queued again.
    spare: Vec<i64>,
    cursor: i64,
    /// Fewer than asked: the book has nothing more to deal.
    exhausted: bool,
}

/// Reserves up to `wanted` free codes of the book in one statement: returned ones first, then from
/// the cursor on, moving the cursor past them. The book's row lock keeps every other claim of it
/// out meanwhile; a reserved code that is not handed out must be queued again (`requeue`), which is
/// also where fresh codes go when returned ones covered the need. Every part is an index range
/// scan with a plain `LIMIT`, so the plan does not depend on how many codes were claimed before.
async fn deal(tx: &Transaction<'_>, book_id: Uuid, cursor: i64, wanted: usize) -> Result<Dealt, StoreError> {
    if wanted == 0 {
        return Ok(Dealt {
            ids: Vec::new(),
            spare: Vec::new(),
            cursor,
            exhausted: false,
        });
    }
    let rows = all(
        tx,
        "WITH popped AS (DELETE FROM returned_codes WHERE (book_id, code_id) IN \
             (SELECT book_id, code_id FROM returned_codes WHERE book_id = $1 ORDER BY book_id, code_id LIMIT $3) \
           RETURNING code_id), \
         fresh AS (SELECT id FROM codes WHERE book_id = $1 AND id >= $2 AND status = 'available' \
           ORDER BY book_id, id LIMIT $3), \
         moved AS (UPDATE books SET deal_cursor = (SELECT max(id) + 1 FROM fresh) \
           WHERE id = $1 AND EXISTS (SELECT 1 FROM fresh)) \
         SELECT c.id, false FROM codes c JOIN popped ON c.id = popped.code_id WHERE c.status = 'available' \
         UNION ALL SELECT id, true FROM fresh ORDER BY 2, 1",
        &[&book_id, &cursor, &(wanted as i64)],
    )
    .await?;
    let mut dealt = Dealt {
        ids: Vec::with_capacity(wanted),
        spare: Vec::new(),
        cursor,
        exhausted: rows.len() < wanted,
    };
    for row in rows {
        let id = row.i64(0)?;
        if row.try_get::<_, bool>(1)? {
            dealt.cursor = dealt.cursor.max(id + 1);
        }
        if dealt.ids.len() < wanted {
            dealt.ids.push(id);
        } else {
            dealt.spare.push(id);
        }
    }
    Ok(dealt)
}

/// Queues reserved codes that went to nobody, to be dealt first next time.
async fn requeue(tx: &Transaction<'_>, book_id: Uuid, ids: &[i64]) -> Result<(), StoreError> {
    if !ids.is_empty() {
        super::exec(
            tx,
            "INSERT INTO returned_codes (book_id, code_id) SELECT $1, unnest($2::bigint[]) ON CONFLICT DO NOTHING",
            &[&book_id, &ids],
        )
        .await?;
    }
    Ok(())
}

/// Gives codes to their claimers in one statement; a code no longer free is left out of the answer.
/// Named codes are taken one request at a time (the answer decides their counts); dealt codes all
/// at once, and they are all free: nothing else claims from the book while its row is locked.
async fn take(
    tx: &Transaction<'_>,
    book: &Book,
    codes: &[(i64, &str)],
    now: Timestamp,
) -> Result<HashMap<i64, CodeInstance>, StoreError> {
    if codes.is_empty() {
        return Ok(HashMap::new());
    }
    let (ids, owners): (Vec<i64>, Vec<&str>) = codes.iter().copied().unzip();
    let expires = book
        .policies
        .claim_ttl_seconds
        .map(|ttl| now.plus_seconds(ttl).millis());
    let sql = format!(
        "UPDATE codes SET status = 'active', owner = v.claimer, claimed_at = $3, claim_expires_at = $4 \
         FROM unnest($1::bigint[], $2::text[]) AS v(code_id, claimer) \
         WHERE id = v.code_id AND status = 'available' RETURNING {CODE_COLUMNS}"
    );
    let rows = all(tx, &sql, &[&ids, &owners, &now.millis(), &expires]).await?;
    let taken = rows
        .iter()
        .map(|r| rows::code(r, 0).map(|c| (c.id, c)))
        .collect::<Result<HashMap<_, _>, _>>()?;
    Ok(taken)
}

/// Counts the granted claims in one guarded statement, creating missing rows: a row that would
/// pass a limit is neither created nor updated, and the batch fails rather than oversell.
async fn write_counters(
    tx: &Transaction<'_>,
    book: &Book,
    granted: &[(&str, i64)],
    now: Timestamp,
) -> Result<(), StoreError> {
    if granted.is_empty() {
        return Ok(());
    }
    let (users, counts): (Vec<&str>, Vec<i64>) = granted.iter().copied().unzip();
    let written = all(
        tx,
        "INSERT INTO user_books AS u (book_id, user_id, held, day, day_claims) \
         SELECT $1, v.user_id, v.n, $3::bigint, v.n FROM unnest($2::text[], $6::bigint[]) AS v(user_id, n) \
         WHERE ($4::bigint IS NULL OR v.n <= $4) AND ($5::bigint IS NULL OR v.n <= $5) \
         ON CONFLICT (book_id, user_id) DO UPDATE SET held = u.held + excluded.held, \
           day_claims = (CASE WHEN u.day = $3 THEN u.day_claims ELSE 0 END) + excluded.day_claims, day = $3 \
         WHERE ($4::bigint IS NULL OR u.held + excluded.held <= $4) \
           AND ($5::bigint IS NULL OR (CASE WHEN u.day = $3 THEN u.day_claims ELSE 0 END) + excluded.day_claims <= $5) \
         RETURNING user_id",
        &[
            &book.id,
            &users,
            &now.utc_day(),
            &book.policies.max_codes_per_user,
            &book.policies.claims_per_user_per_day,
            &counts,
        ],
    )
    .await?;
    if written.len() != users.len() {
        return Err(StoreError::Conflict("per-user claim limits"));
    }
    Ok(())
}
