//! PostgreSQL's text of the statements whose text is its own: row locks, arrays bound as
//! parameters (`unnest`), `generate_series`, and full-text search over the `search` tsvector.
//! Everything else is the shared text of `crate::statements` with `$N` placeholders.

use std::sync::LazyLock;

use crate::statements::{
    dollar_placeholders, shared, unlocked, BOOK_COLUMNS, CODE_COLUMNS, EVENT_COLUMNS, EVENT_KEYS, Q,
};

/// The text of every statement, built once per process.
static TEXT: LazyLock<Vec<String>> = LazyLock::new(|| Q::ALL.iter().map(|q| text(*q)).collect());

pub(crate) fn sql(q: Q) -> &'static str {
    &TEXT[q as usize]
}

fn text(q: Q) -> String {
    if let Some(own) = own(q) {
        return own;
    }
    let locked = |suffix: &str| unlocked(q).map(|sql| format!("{sql} {suffix}"));
    let sql = match q {
        Q::BookLock | Q::FindOwned | Q::Holdings | Q::RedemptionLock | Q::CodeLock | Q::RelayCursor => {
            locked("FOR UPDATE")
        }
        // A redemption racing the lapse holds its code: skip it until the next claim.
        Q::Lapsed => locked("FOR UPDATE SKIP LOCKED"),
        _ => shared(q),
    };
    dollar_placeholders(&sql.unwrap_or_else(|| panic!("no PostgreSQL text for {q:?}")))
}

fn own(q: Q) -> Option<String> {
    Some(match q {
        Q::SharedInstances => "INSERT INTO codes (book_id, code, instance, status) \
             SELECT $1, $2, i, 'available' FROM generate_series(0::bigint, $3::bigint - 1) AS i \
             ON CONFLICT (code, instance) DO NOTHING"
            .into(),
        Q::UploadCodes => "INSERT INTO codes (book_id, code, instance, status) \
             SELECT $1, c, 0, 'available' FROM unnest($2::text[]) AS c \
             ON CONFLICT (code, instance) DO NOTHING RETURNING code"
            .into(),
        Q::InsertDrawn => "INSERT INTO codes (book_id, code, instance, status) \
             SELECT $1, c, 0, 'available' FROM unnest($2::text[]) AS c \
             ON CONFLICT (code, instance) DO NOTHING"
            .into(),
        Q::Search => format!(
            "SELECT {BOOK_COLUMNS} FROM books \
             WHERE ($8::text IS NULL OR status = $8) \
               AND ($9::bigint = 0 OR ((starts_at IS NULL OR starts_at <= $1) \
                 AND (expires_at IS NULL OR expires_at >= $1))) \
               AND ($2::text IS NULL OR category = $2) AND ($3::text IS NULL OR discount_type = $3) \
               AND ($4::bigint IS NULL OR (created_at, id) < ($4, $5::uuid)) \
               AND ($6::text IS NULL OR search @@ plainto_tsquery('english', $6)) \
             ORDER BY created_at DESC, id DESC LIMIT $7"
        ),
        Q::FreeCodes => "UPDATE codes SET status = 'available', owner = NULL, claimed_at = NULL, \
               claim_expires_at = NULL, lock_id = NULL, locked_until = NULL, metadata = NULL \
             WHERE id = ANY($1::bigint[])"
            .into(),
        Q::NamedCodes => "SELECT id, code, status, \
               EXISTS (SELECT 1 FROM redemptions r \
                 WHERE r.code_id = codes.id AND r.rolled_back_at IS NOT NULL) AS has_history \
             FROM codes WHERE book_id = $1 AND instance = 0 AND code = ANY($2::text[])"
            .into(),
        Q::UnqueueCodes => "DELETE FROM returned_codes WHERE book_id = $1 AND code_id = ANY($2::bigint[])".into(),
        Q::DeleteCodes => format!(
            "DELETE FROM codes WHERE id = ANY($1::bigint[]) AND {}",
            crate::statements::NO_HISTORY
        ),
        Q::QueueCodes => "INSERT INTO returned_codes (book_id, code_id) SELECT $1, unnest($2::bigint[]) \
             ON CONFLICT DO NOTHING"
            .into(),
        Q::ChargeLapsed => "UPDATE user_books u SET held = u.held - v.n \
             FROM unnest($2::text[], $3::bigint[]) AS v(user_id, n) \
             WHERE u.book_id = $1 AND u.user_id = v.user_id"
            .into(),
        // One primary-key probe per user, whatever the statistics say: a join would let the planner
        // hash every counter of the book when it has not seen the book yet. Rows are locked in the
        // order of the array, which the script sorts.
        Q::Counters => "SELECT u.user_id, u.held, u.day, u.day_claims, u.redeemed \
             FROM unnest($2::text[]) AS v(user_id) CROSS JOIN LATERAL \
               (SELECT user_id, held, day, day_claims, redeemed FROM user_books \
                WHERE book_id = $1 AND user_id = v.user_id FOR UPDATE) AS u"
            .into(),
        Q::PopReturned => "WITH popped AS (DELETE FROM returned_codes WHERE (book_id, code_id) IN \
               (SELECT book_id, code_id FROM returned_codes WHERE book_id = $1 \
                ORDER BY book_id, code_id LIMIT $2) RETURNING code_id) \
             SELECT p.code_id, c.status = 'available' AS free FROM popped p JOIN codes c ON c.id = p.code_id"
            .into(),
        Q::TakeCodes => format!(
            "UPDATE codes SET status = 'active', owner = v.claimer, claimed_at = $3, claim_expires_at = $4, \
               metadata = v.claim_metadata \
             FROM unnest($1::bigint[], $2::text[], $5::text[]) AS v(code_id, claimer, claim_metadata) \
             WHERE id = v.code_id AND status = 'available' RETURNING {CODE_COLUMNS}"
        ),
        Q::WriteCounters => "INSERT INTO user_books AS u (book_id, user_id, held, day, day_claims) \
             SELECT $1, v.user_id, v.n, $3::bigint, v.n FROM unnest($2::text[], $6::bigint[]) AS v(user_id, n) \
             WHERE ($4::bigint IS NULL OR v.n <= $4) AND ($5::bigint IS NULL OR v.n <= $5) \
             ON CONFLICT (book_id, user_id) DO UPDATE SET held = u.held + excluded.held, \
               day_claims = (CASE WHEN u.day = $3 THEN u.day_claims ELSE 0 END) + excluded.day_claims, day = $3 \
             WHERE ($4::bigint IS NULL OR u.held + excluded.held <= $4) \
               AND ($5::bigint IS NULL OR (CASE WHEN u.day = $3 THEN u.day_claims ELSE 0 END) \
                 + excluded.day_claims <= $5) \
             RETURNING user_id"
            .into(),
        // The transaction's id comes from the column's default.
        Q::RecordEvents => {
            "INSERT INTO events (id, type, occurred_at, book_id, code, user_id, data) \
             SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::uuid[], $5::text[], $6::text[], $7::text[])"
                .into()
        }
        Q::Events => feed(EVENT_COLUMNS),
        Q::EventKeys => feed(EVENT_KEYS),
        Q::RecordDeliveries => "INSERT INTO deliveries (id, webhook_id, event_xid, event_position, event_id, \
               event_type, state, next_attempt_at, created_at) \
             SELECT d.id, d.webhook_id, d.event_xid, d.event_position, d.event_id, d.event_type, 'pending', $7, $7 \
             FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::bigint[], $5::uuid[], $6::text[]) \
               AS d(id, webhook_id, event_xid, event_position, event_id, event_type) \
             ON CONFLICT (webhook_id, event_xid, event_position) DO NOTHING"
            .into(),
        // Another instance's leased rows are skipped, not waited for.
        Q::LeaseDeliveries => {
            "UPDATE deliveries d SET leased_until = $3, attempts = d.attempts + 1, last_attempt_at = $2 \
             FROM (SELECT id FROM deliveries WHERE webhook_id = $1 AND state = 'pending' AND next_attempt_at <= $2 \
                     AND (leased_until IS NULL OR leased_until <= $2) \
                   ORDER BY webhook_id, event_xid, event_position LIMIT $4 FOR UPDATE SKIP LOCKED) AS due \
             WHERE d.id = due.id RETURNING d.id, d.attempts, d.event_xid, d.event_position"
                .into()
        }
        Q::EventsAt => format!(
            "SELECT e.xid, e.position, {} FROM unnest($1::bigint[], $2::bigint[]) AS k(xid, position) \
             JOIN events e ON e.xid = k.xid AND e.position = k.position",
            crate::statements::qualified(EVENT_COLUMNS, "e")
        ),
        _ => return None,
    })
}

/// The feed's page after a cursor, of `columns`: only transactions older than every one still
/// running, none of which can commit later.
fn feed(columns: &str) -> String {
    format!(
        "SELECT xid, position, {columns} FROM events \
         WHERE (xid, position) > ($1, $2) \
           AND xid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint \
           AND (cardinality($3::text[]) = 0 OR type = ANY($3::text[])) \
         ORDER BY xid, position LIMIT $4"
    )
}
