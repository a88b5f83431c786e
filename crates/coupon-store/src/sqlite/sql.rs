//! SQLite's text of the statements whose text is its own: lists arrive as JSON arrays read with
//! `json_each`, a shared book's instances come from a recursive CTE, search goes through the FTS5
//! table, and nothing takes row locks (the one writer serializes every write transaction).
//! Everything else is the shared text of `crate::statements`. Texts name their parameters
//! (`:book_id`; a JSON path such as `'$[' || x.key || ']'` names none); the table built once per
//! process holds them with `?N` by each statement's declared order.

use std::sync::LazyLock;

use crate::statements::{
    positional, shared, unlocked, Name, BOOK_COLUMNS, CODE_COLUMNS, EVENT_COLUMNS, EVENT_KEYS, NO_HISTORY,
};

/// The text of every statement with positional parameters, built once per process.
static TEXT: LazyLock<Vec<String>> =
    LazyLock::new(|| Name::ALL.iter().map(|q| positional(&named(*q), q.params())).collect());

pub(crate) fn sql(q: Name) -> &'static str {
    &TEXT[q as usize]
}

/// The text of `q` with its parameters by name.
pub(crate) fn named(q: Name) -> String {
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

fn own(q: Name) -> Option<String> {
    Some(match q {
        Name::SharedInstances => "WITH RECURSIVE n(i) AS \
               (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < :instances) \
             INSERT OR IGNORE INTO codes (book_id, code, instance, status) \
             SELECT :book_id, :code, i, 'available' FROM n"
            .into(),
        // `WHERE true`: an INSERT … SELECT followed by ON CONFLICT needs a WHERE to parse.
        Name::UploadCodes => "INSERT INTO codes (book_id, code, instance, status) \
             SELECT :book_id, value, 0, 'available' FROM json_each(:codes) WHERE true \
             ON CONFLICT (code, instance) DO NOTHING RETURNING code"
            .into(),
        Name::InsertDrawn => "INSERT INTO codes (book_id, code, instance, status) \
             SELECT :book_id, value, 0, 'available' FROM json_each(:codes) WHERE true \
             ON CONFLICT (code, instance) DO NOTHING"
            .into(),
        Name::Search => format!(
            "SELECT {BOOK_COLUMNS} FROM books \
             WHERE (:status IS NULL OR status = :status) \
               AND (:in_window = 0 OR ((starts_at IS NULL OR starts_at <= :now) \
                 AND (expires_at IS NULL OR expires_at >= :now))) \
               AND (:category IS NULL OR category = :category) \
               AND (:discount_type IS NULL OR discount_type = :discount_type) \
               AND (:after_at IS NULL OR (created_at, id) < (:after_at, :after_id)) \
               AND (:text IS NULL OR seq IN (SELECT rowid FROM books_fts WHERE books_fts MATCH :text)) \
             ORDER BY created_at DESC, id DESC LIMIT :limit"
        ),
        Name::FreeCodes => "UPDATE codes SET status = 'available', owner = NULL, claimed_at = NULL, \
               claim_expires_at = NULL, lock_id = NULL, locked_until = NULL, metadata = NULL \
             WHERE id IN (SELECT value FROM json_each(:code_ids))"
            .into(),
        Name::NamedCodes => "SELECT id, code, status, \
               EXISTS (SELECT 1 FROM redemptions r \
                 WHERE r.code_id = codes.id AND r.rolled_back_at IS NOT NULL) AS has_history \
             FROM codes WHERE book_id = :book_id AND instance = 0 \
               AND code IN (SELECT value FROM json_each(:codes))"
            .into(),
        Name::UnqueueCodes => "DELETE FROM returned_codes \
             WHERE book_id = :book_id AND code_id IN (SELECT value FROM json_each(:code_ids))"
            .into(),
        Name::DeleteCodes => {
            format!("DELETE FROM codes WHERE id IN (SELECT value FROM json_each(:code_ids)) AND {NO_HISTORY}")
        }
        Name::QueueCodes => "INSERT INTO returned_codes (book_id, code_id) \
             SELECT :book_id, value FROM json_each(:code_ids) WHERE true ON CONFLICT DO NOTHING"
            .into(),
        Name::ChargeLapsed => format!(
            "UPDATE user_books SET held = held - v.n FROM {} AS v \
             WHERE user_books.book_id = :book_id AND user_books.user_id = v.user_id",
            pairs(":users", ":lapsed", "user_id", "n")
        ),
        Name::Counters => "SELECT user_id, held, day, day_claims, redeemed FROM user_books \
             WHERE book_id = :book_id AND user_id IN (SELECT value FROM json_each(:users))"
            .into(),
        Name::PopReturned => "DELETE FROM returned_codes WHERE book_id = :book_id AND code_id IN \
               (SELECT code_id FROM returned_codes WHERE book_id = :book_id ORDER BY code_id LIMIT :limit) \
             RETURNING code_id, \
               (SELECT status = 'available' FROM codes WHERE codes.id = returned_codes.code_id) AS free"
            .into(),
        Name::TakeCodes => format!(
            "UPDATE codes SET status = 'active', owner = v.claimer, claimed_at = :claimed_at, \
               claim_expires_at = :claim_expires_at, metadata = v.claim_metadata \
             FROM {} AS v WHERE codes.id = v.code_id AND codes.status = 'available' RETURNING {CODE_COLUMNS}",
            rows_of(&[
                (":code_ids", "code_id"),
                (":owners", "claimer"),
                (":metadata", "claim_metadata")
            ])
        ),
        Name::WriteCounters => format!(
            "INSERT INTO user_books (book_id, user_id, held, day, day_claims) \
             SELECT :book_id, v.user_id, v.n, :day, v.n FROM {} AS v \
             WHERE (:max_codes_per_user IS NULL OR v.n <= :max_codes_per_user) \
               AND (:claims_per_user_per_day IS NULL OR v.n <= :claims_per_user_per_day) \
             ON CONFLICT (book_id, user_id) DO UPDATE SET held = held + excluded.held, \
               day_claims = (CASE WHEN day = excluded.day THEN day_claims ELSE 0 END) + excluded.day_claims, \
               day = excluded.day \
             WHERE (:max_codes_per_user IS NULL OR held + excluded.held <= :max_codes_per_user) \
               AND (:claims_per_user_per_day IS NULL OR (CASE WHEN day = excluded.day THEN day_claims ELSE 0 END) \
                 + excluded.day_claims <= :claims_per_user_per_day) \
             RETURNING user_id",
            pairs(":users", ":claims", "user_id", "n")
        ),
        Name::RecordEvents => format!(
            "INSERT INTO events (id, type, occurred_at, book_id, code, user_id, data) \
             SELECT id, type, occurred_at, book_id, code, user_id, data FROM {}",
            rows_of(&[
                (":ids", "id"),
                (":types", "type"),
                (":occurred_at", "occurred_at"),
                (":book_ids", "book_id"),
                (":codes", "code"),
                (":user_ids", "user_id"),
                (":data", "data"),
            ])
        ),
        Name::RecordKeys => format!(
            "INSERT INTO idempotency_keys (scope, key, fingerprint, status, body, created_at) \
             SELECT scope, key, fingerprint, status, body, created_at FROM {} WHERE true \
             ON CONFLICT (scope, key) DO NOTHING",
            rows_of(&[
                (":scopes", "scope"),
                (":keys", "key"),
                (":fingerprints", "fingerprint"),
                (":statuses", "status"),
                (":bodies", "body"),
                (":created_at", "created_at"),
            ])
        ),
        Name::Events => feed(EVENT_COLUMNS),
        Name::EventKeys => feed(EVENT_KEYS),
        Name::RecordDeliveries => format!(
            "INSERT INTO deliveries (id, webhook_id, event_xid, event_position, event_id, \
               event_type, state, next_attempt_at, created_at) \
             SELECT id, webhook_id, event_xid, event_position, event_id, event_type, 'pending', :now, :now \
             FROM {} WHERE true \
             ON CONFLICT (webhook_id, event_xid, event_position) DO NOTHING",
            rows_of(&[
                (":ids", "id"),
                (":webhook_ids", "webhook_id"),
                (":event_xids", "event_xid"),
                (":event_positions", "event_position"),
                (":event_ids", "event_id"),
                (":event_types", "event_type"),
            ])
        ),
        Name::LeaseDeliveries => "UPDATE deliveries SET leased_until = :until, attempts = attempts + 1, \
               last_attempt_at = :now \
             WHERE id IN (SELECT id FROM deliveries WHERE webhook_id = :webhook_id AND state = 'pending' \
               AND next_attempt_at <= :now AND (leased_until IS NULL OR leased_until <= :now) \
               ORDER BY webhook_id, event_xid, event_position LIMIT :limit) \
             RETURNING id, attempts, event_xid, event_position"
            .into(),
        // `xid` is always 0 here: the place is the position.
        Name::EventsAt => format!(
            "SELECT xid, position, {EVENT_COLUMNS} FROM events WHERE :xids IS NOT NULL \
               AND position IN (SELECT value FROM json_each(:positions))"
        ),
        _ => return None,
    })
}

/// The feed's page after a cursor, of `columns`. One writer commits in write order, so every
/// position is final: `xid` is always 0.
fn feed(columns: &str) -> String {
    format!(
        "SELECT xid, position, {columns} FROM events \
         WHERE position > :after_position AND :after_xid >= 0 \
           AND (json_array_length(:types) = 0 OR type IN (SELECT value FROM json_each(:types))) \
         ORDER BY position LIMIT :limit"
    )
}
