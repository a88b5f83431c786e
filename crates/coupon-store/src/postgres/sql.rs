//! PostgreSQL's text of the statements whose text is its own: row locks, arrays bound as
//! parameters (`unnest`), `generate_series`, and full-text search over the `search` tsvector.
//! Everything else is the shared text of `crate::statements`. Texts name their parameters
//! (`:book_id`, never mistaken for a `::type` cast); the table built once per process holds them
//! with `$N` by each statement's declared order.

use std::sync::LazyLock;

use crate::statements::{
    dollar_placeholders, positional, qualified, shared, unlocked, Name, BOOK_COLUMNS, CODE_COLUMNS, EVENT_COLUMNS,
    EVENT_KEYS, NO_HISTORY,
};

/// The text of every statement with positional parameters, built once per process.
static TEXT: LazyLock<Vec<String>> = LazyLock::new(|| {
    Name::ALL
        .iter()
        .map(|q| dollar_placeholders(&positional(&named(*q), q.params())))
        .collect()
});

pub(crate) fn sql(q: Name) -> &'static str {
    &TEXT[q as usize]
}

/// The text of `q` with its parameters by name.
pub(crate) fn named(q: Name) -> String {
    if let Some(own) = own(q) {
        return own;
    }
    let locked = |suffix: &str| unlocked(q).map(|sql| format!("{sql} {suffix}"));
    let sql = match q {
        // Not FOR UPDATE: that would also hold off the key-share lock every insert referring to the
        // book takes (a redemption, a user's counter), and a redeem holding its user's counter
        // while a claim batch holding the book waits for that counter to charge a lapsed claim is a
        // deadlock. A book's id never changes, so NO KEY UPDATE serializes what needs it.
        Name::BookLock => locked("FOR NO KEY UPDATE"),
        Name::FindOwned | Name::Holdings | Name::RedemptionLock | Name::CodeLock | Name::RelayCursor => {
            locked("FOR UPDATE")
        }
        // A redemption racing the lapse holds its code: skip it until the next claim.
        Name::Lapsed => locked("FOR UPDATE SKIP LOCKED"),
        _ => shared(q),
    };
    sql.unwrap_or_else(|| panic!("no PostgreSQL text for {q:?}"))
}

fn own(q: Name) -> Option<String> {
    Some(match q {
        Name::SharedInstances => "INSERT INTO codes (book_id, code, instance, status) \
             SELECT :book_id, :code, i, 'available' FROM generate_series(0::bigint, :instances::bigint - 1) AS i \
             ON CONFLICT (code, instance) DO NOTHING"
            .into(),
        Name::UploadCodes => "INSERT INTO codes (book_id, code, instance, status) \
             SELECT :book_id, c, 0, 'available' FROM unnest(:codes::text[]) AS c \
             ON CONFLICT (code, instance) DO NOTHING RETURNING code"
            .into(),
        Name::InsertDrawn => "INSERT INTO codes (book_id, code, instance, status) \
             SELECT :book_id, c, 0, 'available' FROM unnest(:codes::text[]) AS c \
             ON CONFLICT (code, instance) DO NOTHING"
            .into(),
        Name::Search => format!(
            "SELECT {BOOK_COLUMNS} FROM books \
             WHERE (:status::text IS NULL OR status = :status) \
               AND (:in_window::bigint = 0 OR ((starts_at IS NULL OR starts_at <= :now) \
                 AND (expires_at IS NULL OR expires_at >= :now))) \
               AND (:category::text IS NULL OR category = :category) \
               AND (:discount_type::text IS NULL OR discount_type = :discount_type) \
               AND (:after_at::bigint IS NULL OR (created_at, id) < (:after_at, :after_id::uuid)) \
               AND (:text::text IS NULL OR search @@ plainto_tsquery('english', :text)) \
             ORDER BY created_at DESC, id DESC LIMIT :limit"
        ),
        Name::FreeCodes => "UPDATE codes SET status = 'available', owner = NULL, claimed_at = NULL, \
               claim_expires_at = NULL, lock_id = NULL, locked_until = NULL, metadata = NULL \
             WHERE id = ANY(:code_ids::bigint[])"
            .into(),
        Name::NamedCodes => "SELECT id, code, status, \
               EXISTS (SELECT 1 FROM redemptions r \
                 WHERE r.code_id = codes.id AND r.rolled_back_at IS NOT NULL) AS has_history \
             FROM codes WHERE book_id = :book_id AND instance = 0 AND code = ANY(:codes::text[])"
            .into(),
        Name::UnqueueCodes => {
            "DELETE FROM returned_codes WHERE book_id = :book_id AND code_id = ANY(:code_ids::bigint[])".into()
        }
        Name::DeleteCodes => format!("DELETE FROM codes WHERE id = ANY(:code_ids::bigint[]) AND {NO_HISTORY}"),
        Name::QueueCodes => "INSERT INTO returned_codes (book_id, code_id) \
             SELECT :book_id, unnest(:code_ids::bigint[]) ON CONFLICT DO NOTHING"
            .into(),
        Name::ChargeLapsed => "UPDATE user_books u SET held = u.held - v.n \
             FROM unnest(:users::text[], :lapsed::bigint[]) AS v(user_id, n) \
             WHERE u.book_id = :book_id AND u.user_id = v.user_id"
            .into(),
        // One primary-key probe per user, whatever the statistics say: a join would let the planner
        // hash every counter of the book when it has not seen the book yet. Rows are locked in the
        // order of the array, which the script sorts.
        Name::Counters => "SELECT u.user_id, u.held, u.day, u.day_claims, u.redeemed \
             FROM unnest(:users::text[]) AS v(user_id) CROSS JOIN LATERAL \
               (SELECT user_id, held, day, day_claims, redeemed FROM user_books \
                WHERE book_id = :book_id AND user_id = v.user_id FOR UPDATE) AS u"
            .into(),
        Name::PopReturned => "WITH popped AS (DELETE FROM returned_codes WHERE (book_id, code_id) IN \
               (SELECT book_id, code_id FROM returned_codes WHERE book_id = :book_id \
                ORDER BY book_id, code_id LIMIT :limit) RETURNING code_id) \
             SELECT p.code_id, c.status = 'available' AS free FROM popped p JOIN codes c ON c.id = p.code_id"
            .into(),
        Name::TakeCodes => format!(
            "UPDATE codes SET status = 'active', owner = v.claimer, claimed_at = :claimed_at, \
               claim_expires_at = :claim_expires_at, metadata = v.claim_metadata \
             FROM unnest(:code_ids::bigint[], :owners::text[], :metadata::text[]) \
               AS v(code_id, claimer, claim_metadata) \
             WHERE id = v.code_id AND status = 'available' RETURNING {CODE_COLUMNS}"
        ),
        Name::WriteCounters => "INSERT INTO user_books AS u (book_id, user_id, held, day, day_claims) \
             SELECT :book_id, v.user_id, v.n, :day::bigint, v.n \
               FROM unnest(:users::text[], :claims::bigint[]) AS v(user_id, n) \
             WHERE (:max_codes_per_user::bigint IS NULL OR v.n <= :max_codes_per_user) \
               AND (:claims_per_user_per_day::bigint IS NULL OR v.n <= :claims_per_user_per_day) \
             ON CONFLICT (book_id, user_id) DO UPDATE SET held = u.held + excluded.held, \
               day_claims = (CASE WHEN u.day = :day THEN u.day_claims ELSE 0 END) + excluded.day_claims, \
               day = :day \
             WHERE (:max_codes_per_user::bigint IS NULL OR u.held + excluded.held <= :max_codes_per_user) \
               AND (:claims_per_user_per_day::bigint IS NULL OR (CASE WHEN u.day = :day THEN u.day_claims ELSE 0 END) \
                 + excluded.day_claims <= :claims_per_user_per_day) \
             RETURNING user_id"
            .into(),
        // The transaction's id comes from the column's default.
        Name::RecordEvents => "INSERT INTO events (id, type, occurred_at, book_id, code, user_id, data) \
             SELECT * FROM unnest(:ids::uuid[], :types::text[], :occurred_at::bigint[], :book_ids::uuid[], \
               :codes::text[], :user_ids::text[], :data::text[])"
            .into(),
        Name::RecordKeys => "INSERT INTO idempotency_keys (scope, key, fingerprint, status, body, created_at) \
             SELECT * FROM unnest(:scopes::text[], :keys::text[], :fingerprints::text[], :statuses::bigint[], \
               :bodies::text[], :created_at::bigint[]) \
             ON CONFLICT (scope, key) DO NOTHING"
            .into(),
        Name::Events => feed(EVENT_COLUMNS),
        Name::EventKeys => feed(EVENT_KEYS),
        Name::RecordDeliveries => "INSERT INTO deliveries (id, webhook_id, event_xid, event_position, event_id, \
               event_type, state, next_attempt_at, created_at) \
             SELECT d.id, d.webhook_id, d.event_xid, d.event_position, d.event_id, d.event_type, 'pending', \
               :now, :now \
             FROM unnest(:ids::uuid[], :webhook_ids::uuid[], :event_xids::bigint[], :event_positions::bigint[], \
               :event_ids::uuid[], :event_types::text[]) \
               AS d(id, webhook_id, event_xid, event_position, event_id, event_type) \
             ON CONFLICT (webhook_id, event_xid, event_position) DO NOTHING"
            .into(),
        // Another instance's leased rows are skipped, not waited for.
        Name::LeaseDeliveries => "UPDATE deliveries d SET leased_until = :until, attempts = d.attempts + 1, \
               last_attempt_at = :now \
             FROM (SELECT id FROM deliveries WHERE webhook_id = :webhook_id AND state = 'pending' \
                     AND next_attempt_at <= :now AND (leased_until IS NULL OR leased_until <= :now) \
                   ORDER BY webhook_id, event_xid, event_position LIMIT :limit FOR UPDATE SKIP LOCKED) AS due \
             WHERE d.id = due.id RETURNING d.id, d.attempts, d.event_xid, d.event_position"
            .into(),
        Name::EventsAt => format!(
            "SELECT e.xid, e.position, {} FROM unnest(:xids::bigint[], :positions::bigint[]) AS k(xid, position) \
             JOIN events e ON e.xid = k.xid AND e.position = k.position",
            qualified(EVENT_COLUMNS, "e")
        ),
        _ => return None,
    })
}

/// The feed's page after a cursor, of `columns`: only transactions older than every one still
/// running, none of which can commit later.
fn feed(columns: &str) -> String {
    format!(
        "SELECT xid, position, {columns} FROM events \
         WHERE (xid, position) > (:after_xid, :after_position) \
           AND xid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint \
           AND (cardinality(:types::text[]) = 0 OR type = ANY(:types::text[])) \
         ORDER BY xid, position LIMIT :limit"
    )
}
