//! Column lists and the SQL fragments that several statements share, in both dialects. A fragment
//! that compares against the clock or a page cursor names the parameter it reads (`:now`,
//! `:after_at`), which every statement using it declares.

/// The columns of a book, as `rows::book` reads them.
pub(crate) const BOOK_COLUMNS: &str = "id, name, description, category, tags, discount_type, \
    discount_value, currency, max_discount, min_order_amount, starts_at, expires_at, status, \
    code_mode, shared_code, code_pattern, total_codes, max_codes_per_user, max_redemptions_per_user, \
    max_redemptions_per_code, claims_per_user_per_day, claim_ttl_seconds, lock_ttl_seconds, \
    metadata, created_at, updated_at, low_stock_threshold";

pub(crate) const CODE_COLUMNS: &str = "id, book_id, code, instance, status, owner, claimed_at, \
    claim_expires_at, lock_id, locked_until, redemptions, metadata";

pub(crate) const DELIVERY_COLUMNS: &str = "id, webhook_id, event_id, event_type, state, attempts, \
    next_attempt_at, last_attempt_at, last_status, last_error, delivered_at, created_at";

pub(crate) const EVENT_COLUMNS: &str = "id, type, occurred_at, book_id, code, user_id, data";
/// An event's columns that the fan-out reads.
pub(crate) const EVENT_KEYS: &str = "id, type, occurred_at";

pub(crate) const HOLDINGS_COLUMNS: &str = "held, day, day_claims, redeemed";

pub(crate) const REDEMPTION_COLUMNS: &str = "id, code, book_id, user_id, order_id, order_amount, \
    discount_applied, final_price, redeemed_at, metadata, rolled_back_at, rollback_reason, rollback_metadata";

/// A code in the pool that no redemption refers to, the guard of deleting it: a live redemption
/// keeps its code out of the pool (used, it cannot lapse), and rolled-back ones are indexed by code.
pub(crate) const NO_HISTORY: &str = "codes.status = 'available' AND codes.redemptions = 0 \
    AND NOT EXISTS (SELECT 1 FROM redemptions r WHERE r.code_id = codes.id AND r.rolled_back_at IS NOT NULL)";

/// A column list with each column qualified by a table alias, for joins.
pub(crate) fn qualified(columns: &str, alias: &str) -> String {
    columns
        .split(", ")
        .map(|c| format!("{alias}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A column list qualified by a table alias and renamed with a prefix, so a join's columns keep
/// distinct names (`b.id AS b_id`).
pub(crate) fn aliased(columns: &str, alias: &str, prefix: &str) -> String {
    columns
        .split(", ")
        .map(|c| format!("{alias}.{c} AS {prefix}{c}", c = c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The lapsed-claim predicate at `:now`, matching `CodeInstance::is_lapsed`: `t` qualifies the
/// columns (`""` or `"c."`).
pub(crate) fn lapsed(t: &str) -> String {
    format!(
        "({t}status = 'active' AND {t}redemptions = 0 AND {t}claim_expires_at IS NOT NULL \
         AND {t}claim_expires_at <= :now AND ({t}locked_until IS NULL OR {t}locked_until <= :now))"
    )
}

/// The order in which a user's instances of one code are tried: an active one first, the one under
/// `:lock_id` first among those, the latest claim first.
pub(crate) fn instance_order(t: &str) -> String {
    format!("{t}status = 'active' DESC, coalesce({t}lock_id = :lock_id, false) DESC, {t}claimed_at DESC")
}

/// Redemptions after the (`:after_at`, `:after_id`) page cursor in newest-first order, when one is
/// given.
pub(crate) fn after_redemption() -> &'static str {
    "(CAST(:after_at AS BIGINT) IS NULL OR (redeemed_at, id) < (:after_at, :after_id))"
}

/// Codes in the stored form of a derived state (`:state`: `available`, `active`, `locked`,
/// `redeemed`, `unredeemed`, or null for any) at `:now`, matching `CodeInstance::state` for a book
/// inside its window. An expired book's states are mapped by the caller.
pub(crate) fn state_filter() -> String {
    let lapsed = lapsed("");
    format!(
        "(CAST(:state AS TEXT) IS NULL \
          OR (CAST(:state AS TEXT) = 'available' AND (status = 'available' OR {lapsed})) \
          OR (CAST(:state AS TEXT) = 'active' AND status = 'active' AND NOT {lapsed} \
              AND (locked_until IS NULL OR locked_until <= :now)) \
          OR (CAST(:state AS TEXT) = 'locked' AND status = 'active' AND locked_until > :now) \
          OR (CAST(:state AS TEXT) = 'redeemed' AND status = 'redeemed') \
          OR (CAST(:state AS TEXT) = 'unredeemed' AND status <> 'redeemed'))"
    )
}

/// The values of an insert of `columns`, each the parameter of the column's name (`:id, :name`).
pub(crate) fn values_of(columns: &str) -> String {
    columns
        .split(", ")
        .map(|c| format!(":{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}
