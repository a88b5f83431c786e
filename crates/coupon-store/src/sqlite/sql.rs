//! SQLite's text of the statements whose text is its own: lists arrive as JSON arrays read with
//! `json_each`, a shared book's instances come from a recursive CTE, search goes through the FTS5
//! table, and nothing takes row locks (the one writer serializes every write transaction).
//! Everything else is the shared text of `crate::statements`.

use std::sync::LazyLock;

use crate::statements::{shared, unlocked, BOOK_COLUMNS, CODE_COLUMNS, EVENT_COLUMNS, EVENT_KEYS, Q};

/// The text of every statement, built once per process.
static TEXT: LazyLock<Vec<String>> = LazyLock::new(|| Q::ALL.iter().map(|q| text(*q)).collect());

pub(crate) fn sql(q: Q) -> &'static str {
    &TEXT[q as usize]
}

fn text(q: Q) -> String {
    own(q)
        .or_else(|| unlocked(q))
        .or_else(|| shared(q))
        .unwrap_or_else(|| panic!("no SQLite text for {q:?}"))
}

/// How many parsed JSON documents SQLite keeps per statement (`JSON_CACHE_SIZE`).
const JSON_CACHE: usize = 4;

/// JSON arrays of the same length as rows of columns, `(array, column)` each. The arrays after
/// the first are indexed by position (their parse is cached): joining `json_each` on their keys
/// scans one for every row of the other, 7 ms for 500 pairs against 0.2 ms. Past the cache's
/// size each indexed array would be parsed again for every row: those are read once each into a
/// table SQLite indexes by position, and joined to the first in order.
fn rows_of(columns: &[(&str, &str)]) -> String {
    let (first, name) = columns[0];
    let others = &columns[1..];
    if others.len() <= JSON_CACHE {
        let others: String = others
            .iter()
            .map(|(array, column)| format!(", json_extract({array}, '$[' || x.key || ']') AS {column}"))
            .collect();
        return format!("(SELECT x.value AS {name}{others} FROM json_each({first}) AS x)");
    }
    let tables: Vec<String> = others
        .iter()
        .map(|(array, column)| format!("c_{column}(k, v) AS MATERIALIZED (SELECT key, value FROM json_each({array}))"))
        .collect();
    let values: String = others
        .iter()
        .map(|(_, column)| format!(", c_{column}.v AS {column}"))
        .collect();
    let joins: String = others
        .iter()
        .map(|(_, column)| format!(" CROSS JOIN c_{column} ON c_{column}.k = x.key"))
        .collect();
    format!(
        "(WITH {} SELECT x.value AS {name}{values} FROM json_each({first}) AS x{joins})",
        tables.join(", ")
    )
}

fn pairs(a: &str, b: &str, first: &str, second: &str) -> String {
    rows_of(&[(a, first), (b, second)])
}

fn own(q: Q) -> Option<String> {
    Some(match q {
        Q::SharedInstances => "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?3) \
             INSERT OR IGNORE INTO codes (book_id, code, instance, status) \
             SELECT ?1, ?2, i, 'available' FROM n"
            .into(),
        // `WHERE true`: an INSERT … SELECT followed by ON CONFLICT needs a WHERE to parse.
        Q::UploadCodes => "INSERT INTO codes (book_id, code, instance, status) \
             SELECT ?1, value, 0, 'available' FROM json_each(?2) WHERE true \
             ON CONFLICT (code, instance) DO NOTHING RETURNING code"
            .into(),
        Q::InsertDrawn => "INSERT INTO codes (book_id, code, instance, status) \
             SELECT ?1, value, 0, 'available' FROM json_each(?2) WHERE true \
             ON CONFLICT (code, instance) DO NOTHING"
            .into(),
        Q::Search => format!(
            "SELECT {BOOK_COLUMNS} FROM books \
             WHERE (?8 IS NULL OR status = ?8) \
               AND (?9 = 0 OR ((starts_at IS NULL OR starts_at <= ?1) AND (expires_at IS NULL OR expires_at >= ?1))) \
               AND (?2 IS NULL OR category = ?2) AND (?3 IS NULL OR discount_type = ?3) \
               AND (?4 IS NULL OR (created_at, id) < (?4, ?5)) \
               AND (?6 IS NULL OR seq IN (SELECT rowid FROM books_fts WHERE books_fts MATCH ?6)) \
             ORDER BY created_at DESC, id DESC LIMIT ?7"
        ),
        Q::FreeCodes => "UPDATE codes SET status = 'available', owner = NULL, claimed_at = NULL, \
               claim_expires_at = NULL, lock_id = NULL, locked_until = NULL, metadata = NULL \
             WHERE id IN (SELECT value FROM json_each(?1))"
            .into(),
        Q::NamedCodes => "SELECT id, code, status, \
               EXISTS (SELECT 1 FROM redemptions r \
                 WHERE r.code_id = codes.id AND r.rolled_back_at IS NOT NULL) AS has_history \
             FROM codes WHERE book_id = ?1 AND instance = 0 AND code IN (SELECT value FROM json_each(?2))"
            .into(),
        Q::UnqueueCodes => "DELETE FROM returned_codes \
             WHERE book_id = ?1 AND code_id IN (SELECT value FROM json_each(?2))"
            .into(),
        Q::DeleteCodes => format!(
            "DELETE FROM codes WHERE id IN (SELECT value FROM json_each(?1)) AND {}",
            crate::statements::NO_HISTORY
        ),
        Q::QueueCodes => "INSERT INTO returned_codes (book_id, code_id) \
             SELECT ?1, value FROM json_each(?2) WHERE true ON CONFLICT DO NOTHING"
            .into(),
        Q::ChargeLapsed => format!(
            "UPDATE user_books SET held = held - v.n FROM {} AS v \
             WHERE user_books.book_id = ?1 AND user_books.user_id = v.user_id",
            pairs("?2", "?3", "user_id", "n")
        ),
        Q::Counters => "SELECT user_id, held, day, day_claims, redeemed FROM user_books \
             WHERE book_id = ?1 AND user_id IN (SELECT value FROM json_each(?2))"
            .into(),
        Q::PopReturned => "DELETE FROM returned_codes WHERE book_id = ?1 AND code_id IN \
               (SELECT code_id FROM returned_codes WHERE book_id = ?1 ORDER BY code_id LIMIT ?2) \
             RETURNING code_id, \
               (SELECT status = 'available' FROM codes WHERE codes.id = returned_codes.code_id) AS free"
            .into(),
        Q::TakeCodes => format!(
            "UPDATE codes SET status = 'active', owner = v.claimer, claimed_at = ?3, claim_expires_at = ?4, \
               metadata = v.claim_metadata \
             FROM {} AS v WHERE codes.id = v.code_id AND codes.status = 'available' RETURNING {CODE_COLUMNS}",
            rows_of(&[("?1", "code_id"), ("?2", "claimer"), ("?5", "claim_metadata")])
        ),
        Q::WriteCounters => format!(
            "INSERT INTO user_books (book_id, user_id, held, day, day_claims) \
             SELECT ?1, v.user_id, v.n, ?3, v.n FROM {} AS v \
             WHERE (?4 IS NULL OR v.n <= ?4) AND (?5 IS NULL OR v.n <= ?5) \
             ON CONFLICT (book_id, user_id) DO UPDATE SET held = held + excluded.held, \
               day_claims = (CASE WHEN day = excluded.day THEN day_claims ELSE 0 END) + excluded.day_claims, \
               day = excluded.day \
             WHERE (?4 IS NULL OR held + excluded.held <= ?4) \
               AND (?5 IS NULL OR (CASE WHEN day = excluded.day THEN day_claims ELSE 0 END) \
                 + excluded.day_claims <= ?5) \
             RETURNING user_id",
            pairs("?2", "?6", "user_id", "n")
        ),
        Q::RecordEvents => format!(
            "INSERT INTO events (id, type, occurred_at, book_id, code, user_id, data) \
             SELECT id, type, occurred_at, book_id, code, user_id, data FROM {}",
            rows_of(&[
                ("?1", "id"),
                ("?2", "type"),
                ("?3", "occurred_at"),
                ("?4", "book_id"),
                ("?5", "code"),
                ("?6", "user_id"),
                ("?7", "data"),
            ])
        ),
        Q::Events => feed(EVENT_COLUMNS),
        Q::EventKeys => feed(EVENT_KEYS),
        Q::RecordDeliveries => format!(
            "INSERT INTO deliveries (id, webhook_id, event_xid, event_position, event_id, \
               event_type, state, next_attempt_at, created_at) \
             SELECT id, webhook_id, event_xid, event_position, event_id, event_type, 'pending', ?7, ?7 \
             FROM {} WHERE true \
             ON CONFLICT (webhook_id, event_xid, event_position) DO NOTHING",
            rows_of(&[
                ("?1", "id"),
                ("?2", "webhook_id"),
                ("?3", "event_xid"),
                ("?4", "event_position"),
                ("?5", "event_id"),
                ("?6", "event_type"),
            ])
        ),
        Q::LeaseDeliveries => "UPDATE deliveries SET leased_until = ?3, attempts = attempts + 1, last_attempt_at = ?2 \
             WHERE id IN (SELECT id FROM deliveries WHERE webhook_id = ?1 AND state = 'pending' \
               AND next_attempt_at <= ?2 AND (leased_until IS NULL OR leased_until <= ?2) \
               ORDER BY webhook_id, event_xid, event_position LIMIT ?4) \
             RETURNING id, attempts, event_xid, event_position"
            .into(),
        // `xid` is always 0 here: the place is the position.
        Q::EventsAt => format!(
            "SELECT xid, position, {EVENT_COLUMNS} FROM events WHERE ?1 IS NOT NULL \
               AND position IN (SELECT value FROM json_each(?2))"
        ),
        _ => return None,
    })
}

/// The feed's page after a cursor, of `columns`. One writer commits in write order, so every
/// position is final: `xid` is always 0.
fn feed(columns: &str) -> String {
    format!(
        "SELECT xid, position, {columns} FROM events \
         WHERE position > ?2 AND ?1 >= 0 \
           AND (json_array_length(?3) = 0 OR type IN (SELECT value FROM json_each(?3))) \
         ORDER BY position LIMIT ?4"
    )
}
