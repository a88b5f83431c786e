//! The named statements the scripts run, and the text of those that read the same in both
//! dialects (written with `?N` placeholders; PostgreSQL's `$N` are derived). A statement whose
//! text differs (row locks, arrays, full-text search, series) is written by each backend in its
//! `sql.rs`; every statement has exactly one text per dialect, which a test checks.

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

macro_rules! statements {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// A statement the scripts run, by what it does.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub(crate) enum Q {
            $($(#[$doc])* $name,)*
        }

        impl Q {
            /// Every statement, in declaration order (`q as usize` indexes it).
            pub(crate) const ALL: &'static [Q] = &[$(Q::$name,)*];
        }
    };
}

statements! {
    /// A new book's row.
    BookInsert,
    /// A book with its supply counter, deal cursor, pool counter and the stock level last announced.
    BookRead,
    /// `BookRead`, the row locked until the transaction ends.
    BookLock,
    /// A shared book's instances 0..n of its code.
    SharedInstances,
    /// Moves the supply counter (down too), never past `total_codes`.
    BumpSupply,
    /// Uploaded codes that exist nowhere yet; returns those inserted.
    UploadCodes,
    /// Drawn codes that exist nowhere yet, in the order given (sorted: the index is written in order).
    InsertDrawn,
    /// The fields an admin may change.
    BookUpdate,
    /// Counts over a book's codes at a given time.
    BookStats,
    /// Books in a status (or any) and, for customers, inside their window, a page at a time.
    Search,
    /// Instance 0 of the named codes of a book, with whether any redemption refers to them.
    NamedCodes,
    /// Takes codes off a book's returned queue.
    UnqueueCodes,
    /// Deletes codes that are in the pool.
    DeleteCodes,
    /// A page of a book's codes in id order, in a derived state (or any) at a given time.
    ListCodes,
    /// Instance 0 of a code text.
    CodeZero,
    /// A book's lapsed claims, with their holders (rows another transaction holds are skipped).
    Lapsed,
    /// Puts codes back in the pool.
    FreeCodes,
    /// Queues codes of a book to be dealt before the cursor moves on.
    QueueCodes,
    /// Takes lapsed codes off their holders' counts.
    ChargeLapsed,
    /// The counters of a batch's users in a book, locked in user-id order.
    Counters,
    /// Takes queued codes off the queue; says which are still free.
    PopReturned,
    /// Free codes from the cursor on, in id order.
    FreshCodes,
    /// Moves the deal cursor forward.
    MoveCursor,
    /// Gives free codes to their claimers; returns the codes taken.
    TakeCodes,
    /// Counts granted claims, creating missing counters, never past a limit; returns the users.
    WriteCounters,
    /// Whether a book has a code to deal, and the earliest claim expiry among its held codes.
    Stock,
    /// The instance of a code a user owns that they would act on, locked.
    FindOwned,
    /// One user's counters in a book, locked.
    Holdings,
    /// Puts a checkout lock on an owned, active, unlocked code.
    LockCode,
    /// Releases a live lock.
    UnlockCode,
    /// The redemption of a code by a user for an order, if any.
    PriorRedemption,
    /// Records a redemption once per (code, user, order).
    InsertRedemption,
    /// Uses the code once, within its limit and its lock.
    UseCode,
    /// Counts a redemption for its user, creating the counter, never past the book's limit.
    CountRedemption,
    /// A redemption with the id of its code instance.
    RedemptionRead,
    /// `RedemptionRead`, the row locked.
    RedemptionLock,
    /// A code instance by id, locked.
    CodeLock,
    /// Marks a live redemption rolled back.
    RollBack,
    /// Gives a use back to the code, which is active for its owner again.
    GiveBackUse,
    /// Takes a redemption off its user's count.
    UncountRedemption,
    /// A book's redemptions, newest first, a page at a time.
    BookRedemptions,
    /// A user's redemptions, newest first, a page at a time.
    UserRedemptions,
    /// A code as one user sees it, with its book and that user's counters.
    CodeView,
    /// Every code a user has owned, with its book.
    UserCodes,
    /// Moves a book's pool counter by the codes a claim batch took and gave back.
    MovePool,
    /// Records the stock level announced.
    SetStockLevel,
    /// Writes a transaction's events, given as a list of each field.
    RecordEvents,
    /// Committed events after a cursor, in feed order, of some types (or any).
    Events,
    /// `Events` without their objects: the keys the fan-out needs.
    EventKeys,
    /// A new webhook endpoint.
    WebhookInsert,
    /// Every endpoint, with its secret, oldest first.
    Webhooks,
    /// One endpoint.
    WebhookRead,
    /// Deletes an endpoint and its deliveries.
    WebhookDelete,
    /// How far a consumer inside coupond has read the feed.
    RelayPlace,
    /// `RelayPlace`, the row locked.
    RelayCursor,
    /// Moves a consumer's place in the feed, if it is still where it was read.
    MoveRelayCursor,
    /// A consumer's place at the start of the feed, unless it has one.
    AddRelayCursor,
    /// Records deliveries, given as a list of each field; one per event and endpoint.
    RecordDeliveries,
    /// Leases an endpoint's due deliveries, in feed order, skipping rows another instance holds.
    LeaseDeliveries,
    /// Events by their places in the feed.
    EventsAt,
    /// Marks a leased delivery delivered.
    SettleDelivered,
    /// Records a failed attempt: due again at a time, or failed for good.
    SettleFailed,
    /// An endpoint's deliveries, newest first, a page at a time.
    Deliveries,
    /// One delivery of an endpoint.
    DeliveryRead,
    /// Makes a delivery due again now.
    RetryDelivery,
    /// Pending deliveries and when the oldest one's event occurred.
    Backlog,
    /// For each consumer's place in the feed, the events after it and when the oldest occurred.
    Unread,
    /// Deletes finished deliveries written before a time.
    PruneDeliveries,
    /// Deletes events before a time that the relay has passed and no pending delivery needs.
    PruneEvents,
    /// Whether the database answers.
    Ping,
}

/// The lapsed-claim predicate, matching `CodeInstance::is_lapsed`: `now` is a placeholder, `t`
/// qualifies the columns (`""` or `"c."`).
pub(crate) fn lapsed(t: &str, now: &str) -> String {
    format!(
        "({t}status = 'active' AND {t}redemptions = 0 AND {t}claim_expires_at IS NOT NULL \
         AND {t}claim_expires_at <= {now} AND ({t}locked_until IS NULL OR {t}locked_until <= {now}))"
    )
}

/// The order in which a user's instances of one code are tried: an active one first, the one under
/// the given lock (a placeholder) first among those, the latest claim first.
fn instance_order(t: &str, lock: &str) -> String {
    format!("{t}status = 'active' DESC, coalesce({t}lock_id = {lock}, false) DESC, {t}claimed_at DESC")
}

/// The text of `q` where it is the same in both dialects, with `?N` placeholders.
pub(crate) fn shared(q: Q) -> Option<String> {
    let values = |n: usize| (1..=n).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ");
    Some(match q {
        Q::BookInsert => format!("INSERT INTO books ({BOOK_COLUMNS}) VALUES ({})", values(27)),
        Q::BookRead => {
            format!("SELECT {BOOK_COLUMNS}, generated, deal_cursor, pool, stock_level FROM books WHERE id = ?1")
        }
        Q::BumpSupply => "UPDATE books SET generated = generated + ?2, pool = pool + ?2 \
             WHERE id = ?1 AND (total_codes IS NULL OR generated + ?2 <= total_codes)"
            .into(),
        Q::BookUpdate => "UPDATE books SET name = ?2, description = ?3, expires_at = ?4, status = ?5, \
             updated_at = ?6, metadata = ?7, low_stock_threshold = ?8 WHERE id = ?1"
            .into(),
        Q::BookStats => format!(
            "SELECT count(*) AS instances, \
               count(*) FILTER (WHERE status = 'redeemed') AS redeemed, \
               count(*) FILTER (WHERE status = 'active' AND locked_until > ?2) AS locked, \
               count(*) FILTER (WHERE status = 'active' AND NOT {}) AS active, \
               (SELECT count(*) FROM redemptions WHERE book_id = ?1 AND rolled_back_at IS NULL) AS redemptions, \
               (SELECT CAST(coalesce(sum(discount_applied), 0) AS BIGINT) FROM redemptions \
                 WHERE book_id = ?1 AND rolled_back_at IS NULL) AS discount_applied \
             FROM codes WHERE book_id = ?1",
            lapsed("", "?2")
        ),
        Q::CodeZero => format!("SELECT {CODE_COLUMNS} FROM codes WHERE code = ?1 AND instance = 0"),
        Q::FreshCodes => "SELECT id FROM codes WHERE book_id = ?1 AND id >= ?2 AND status = 'available' \
             ORDER BY book_id, id LIMIT ?3"
            .into(),
        Q::MoveCursor => "UPDATE books SET deal_cursor = ?2 WHERE id = ?1 AND deal_cursor < ?2".into(),
        Q::Stock => format!(
            "SELECT {BOOK_COLUMNS}, \
               EXISTS (SELECT 1 FROM codes WHERE book_id = books.id AND status = 'available' AND id >= deal_cursor) \
               OR EXISTS (SELECT 1 FROM returned_codes WHERE book_id = books.id) \
               OR EXISTS (SELECT 1 FROM codes WHERE book_id = books.id AND {}) AS available, \
               (SELECT min(claim_expires_at) FROM codes \
                 WHERE book_id = books.id AND status = 'active' AND claim_expires_at IS NOT NULL) AS next_lapse \
             FROM books WHERE id = ?1",
            lapsed("", "?2")
        ),
        Q::LockCode => format!(
            "UPDATE codes SET lock_id = ?3, locked_until = ?4 \
             WHERE id = ?1 AND owner = ?2 AND status = 'active' \
               AND (locked_until IS NULL OR locked_until <= ?5) AND NOT {}",
            lapsed("", "?5")
        ),
        Q::UnlockCode => "UPDATE codes SET lock_id = NULL, locked_until = NULL \
             WHERE id = ?1 AND owner = ?2 AND lock_id = ?3 AND locked_until > ?4"
            .into(),
        Q::PriorRedemption => format!(
            "SELECT {REDEMPTION_COLUMNS} FROM redemptions \
             WHERE code = ?1 AND user_id = ?2 AND order_id = ?3 AND rolled_back_at IS NULL"
        ),
        // A rolled-back redemption no longer holds its order: the same order may redeem again.
        Q::InsertRedemption => format!(
            "INSERT INTO redemptions (id, code_id, book_id, code, user_id, order_id, order_amount, \
               discount_applied, final_price, redeemed_at, metadata) VALUES ({}) \
             ON CONFLICT (user_id, code, order_id) WHERE rolled_back_at IS NULL DO NOTHING",
            values(11)
        ),
        Q::UseCode => format!(
            "UPDATE codes SET redemptions = redemptions + 1, \
               status = CASE WHEN redemptions + 1 >= ?3 THEN 'redeemed' ELSE 'active' END, \
               lock_id = NULL, locked_until = NULL \
             WHERE id = ?1 AND owner = ?2 AND status = 'active' AND redemptions < ?3 \
               AND (locked_until IS NULL OR locked_until <= ?4 OR lock_id = ?5) AND NOT {}",
            lapsed("", "?4")
        ),
        Q::CountRedemption => "INSERT INTO user_books (book_id, user_id, redeemed) VALUES (?1, ?2, 1) \
             ON CONFLICT (book_id, user_id) DO UPDATE SET redeemed = user_books.redeemed + 1 \
             WHERE CAST(?3 AS BIGINT) IS NULL OR user_books.redeemed < ?3"
            .into(),
        Q::CodeView => format!(
            "SELECT {}, {}, u.held, u.day, u.day_claims, u.redeemed FROM codes c \
               JOIN books b ON b.id = c.book_id \
               LEFT JOIN user_books u ON u.book_id = c.book_id AND u.user_id = ?2 \
             WHERE c.code = ?1 AND (c.owner = ?2 OR c.instance = 0) \
             ORDER BY coalesce(c.owner = ?2, false) DESC, {} LIMIT 1",
            qualified(CODE_COLUMNS, "c"),
            aliased(BOOK_COLUMNS, "b", "b_"),
            instance_order("c.", "?3"),
        ),
        Q::UserCodes => format!(
            "SELECT {}, {} FROM codes c JOIN books b ON b.id = c.book_id \
             WHERE c.owner = ?1 ORDER BY c.claimed_at DESC, c.id DESC",
            qualified(CODE_COLUMNS, "c"),
            aliased(BOOK_COLUMNS, "b", "b_"),
        ),
        Q::RedemptionRead => format!("SELECT {REDEMPTION_COLUMNS}, code_id FROM redemptions WHERE id = ?1"),
        Q::ListCodes => format!(
            "SELECT {CODE_COLUMNS} FROM codes WHERE book_id = ?1 AND id > ?2 AND {} \
             ORDER BY book_id, id LIMIT ?3",
            state_filter("?4", "?5")
        ),
        Q::RollBack => "UPDATE redemptions SET rolled_back_at = ?2, rollback_reason = ?3, rollback_metadata = ?4 \
             WHERE id = ?1 AND rolled_back_at IS NULL"
            .into(),
        // A claim that would lapse at once starts afresh: the code is the owner's again, to redeem.
        Q::GiveBackUse => "UPDATE codes SET redemptions = redemptions - 1, status = 'active', \
               claim_expires_at = CASE WHEN CAST(?3 AS BIGINT) IS NULL OR claim_expires_at IS NULL \
                 OR claim_expires_at >= ?3 THEN claim_expires_at ELSE ?3 END \
             WHERE id = ?1 AND owner = ?2 AND redemptions > 0"
            .into(),
        Q::UncountRedemption => "UPDATE user_books SET redeemed = redeemed - 1 \
             WHERE book_id = ?1 AND user_id = ?2 AND redeemed > 0"
            .into(),
        Q::BookRedemptions => format!(
            "SELECT {REDEMPTION_COLUMNS} FROM redemptions WHERE book_id = ?1 AND {} \
             ORDER BY redeemed_at DESC, id DESC LIMIT ?4",
            after_redemption("?2", "?3")
        ),
        // The live ones through the unique index, the rolled-back ones through their own.
        Q::UserRedemptions => format!(
            "SELECT {REDEMPTION_COLUMNS} FROM redemptions \
               WHERE user_id = ?1 AND rolled_back_at IS NULL AND {after} \
             UNION ALL SELECT {REDEMPTION_COLUMNS} FROM redemptions \
               WHERE user_id = ?1 AND rolled_back_at IS NOT NULL AND {after} \
             ORDER BY redeemed_at DESC, id DESC LIMIT ?4",
            after = after_redemption("?2", "?3")
        ),
        Q::MovePool => "UPDATE books SET pool = pool + ?2 WHERE id = ?1".into(),
        Q::SetStockLevel => "UPDATE books SET stock_level = ?2 WHERE id = ?1".into(),
        Q::WebhookInsert => "INSERT INTO webhooks (id, url, events, description, secret, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
            .into(),
        Q::Webhooks => "SELECT id, url, events, description, secret, created_at FROM webhooks \
             ORDER BY created_at, id"
            .into(),
        Q::WebhookRead => "SELECT id, url, events, description, secret, created_at FROM webhooks WHERE id = ?1".into(),
        Q::WebhookDelete => "DELETE FROM webhooks WHERE id = ?1".into(),
        Q::MoveRelayCursor => "UPDATE relay_cursors SET xid = ?4, position = ?5 \
             WHERE name = ?1 AND xid = ?2 AND position = ?3"
            .into(),
        Q::AddRelayCursor => "INSERT INTO relay_cursors (name, xid, position) VALUES (?1, 0, 0) \
             ON CONFLICT (name) DO NOTHING"
            .into(),
        Q::SettleDelivered => "UPDATE deliveries SET state = 'delivered', delivered_at = ?2, last_status = ?3, \
               last_error = NULL, leased_until = NULL WHERE id = ?1 AND state = 'pending'"
            .into(),
        // No next time: the attempts are spent, and the delivery has failed.
        Q::SettleFailed => "UPDATE deliveries SET last_status = ?2, last_error = ?3, leased_until = NULL, \
               state = CASE WHEN CAST(?4 AS BIGINT) IS NULL THEN 'failed' ELSE 'pending' END, \
               next_attempt_at = coalesce(?4, next_attempt_at) WHERE id = ?1 AND state = 'pending'"
            .into(),
        Q::Deliveries => format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE webhook_id = ?1 \
               AND (CAST(?2 AS BIGINT) IS NULL OR (created_at, id) < (?2, ?3)) \
             ORDER BY created_at DESC, id DESC LIMIT ?4"
        ),
        Q::DeliveryRead => format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE webhook_id = ?1 AND id = ?2"),
        Q::RetryDelivery => "UPDATE deliveries SET state = 'pending', next_attempt_at = ?3, leased_until = NULL \
             WHERE webhook_id = ?1 AND id = ?2"
            .into(),
        // Pruning keeps every event a pending delivery refers to, so the join loses none.
        Q::Backlog => "SELECT count(*) AS pending, min(e.occurred_at) AS oldest FROM deliveries d \
             JOIN events e ON e.xid = d.event_xid AND e.position = d.event_position WHERE d.state = 'pending'"
            .into(),
        Q::Unread => "SELECT r.name, count(e.position) AS unread, min(e.occurred_at) AS oldest \
             FROM relay_cursors r LEFT JOIN events e ON (e.xid, e.position) > (r.xid, r.position) \
             GROUP BY r.name ORDER BY r.name"
            .into(),
        Q::PruneDeliveries => "DELETE FROM deliveries WHERE state <> 'pending' AND created_at < ?1".into(),
        Q::PruneEvents => "DELETE FROM events WHERE occurred_at < ?1 \
             AND NOT EXISTS (SELECT 1 FROM relay_cursors r WHERE (events.xid, events.position) > (r.xid, r.position)) \
             AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.state = 'pending' \
               AND d.event_xid = events.xid AND d.event_position = events.position)"
            .into(),
        Q::RelayPlace => "SELECT xid, position FROM relay_cursors WHERE name = ?1".into(),
        Q::Ping => "SELECT 1 AS one".into(),
        Q::BookLock
        | Q::SharedInstances
        | Q::UploadCodes
        | Q::InsertDrawn
        | Q::Search
        | Q::Lapsed
        | Q::FreeCodes
        | Q::QueueCodes
        | Q::ChargeLapsed
        | Q::Counters
        | Q::PopReturned
        | Q::TakeCodes
        | Q::WriteCounters
        | Q::FindOwned
        | Q::Holdings
        | Q::NamedCodes
        | Q::UnqueueCodes
        | Q::DeleteCodes
        | Q::RedemptionLock
        | Q::CodeLock
        | Q::RecordEvents
        | Q::Events
        | Q::EventKeys
        | Q::RelayCursor
        | Q::RecordDeliveries
        | Q::LeaseDeliveries
        | Q::EventsAt => return None,
    })
}

/// Redemptions after a (redeemed_at, id) page cursor in newest-first order, when one is given.
fn after_redemption(at: &str, id: &str) -> String {
    format!("(CAST({at} AS BIGINT) IS NULL OR (redeemed_at, id) < ({at}, {id}))")
}

/// Codes in the stored form of a derived state (a placeholder: `available`, `active`, `locked`,
/// `redeemed`, `unredeemed`, or null for any) at `now`, matching `CodeInstance::state` for a book
/// inside its window. An expired book's states are mapped by the caller.
fn state_filter(state: &str, now: &str) -> String {
    let lapsed = lapsed("", now);
    format!(
        "(CAST({state} AS TEXT) IS NULL \
          OR (CAST({state} AS TEXT) = 'available' AND (status = 'available' OR {lapsed})) \
          OR (CAST({state} AS TEXT) = 'active' AND status = 'active' AND NOT {lapsed} \
              AND (locked_until IS NULL OR locked_until <= {now})) \
          OR (CAST({state} AS TEXT) = 'locked' AND status = 'active' AND locked_until > {now}) \
          OR (CAST({state} AS TEXT) = 'redeemed' AND status = 'redeemed') \
          OR (CAST({state} AS TEXT) = 'unredeemed' AND status <> 'redeemed'))"
    )
}

/// Statements that differ only in taking row locks on PostgreSQL: their text without the lock.
pub(crate) fn unlocked(q: Q) -> Option<String> {
    Some(match q {
        Q::BookLock => shared(Q::BookRead)?,
        Q::Lapsed => format!(
            "SELECT id, code, owner FROM codes WHERE book_id = ?1 AND {} ORDER BY id",
            lapsed("", "?2")
        ),
        Q::FindOwned => format!(
            "SELECT {CODE_COLUMNS} FROM codes WHERE code = ?1 AND owner = ?2 ORDER BY {} LIMIT 1",
            instance_order("", "?3")
        ),
        Q::Holdings => format!("SELECT {HOLDINGS_COLUMNS} FROM user_books WHERE book_id = ?1 AND user_id = ?2"),
        Q::RedemptionLock => shared(Q::RedemptionRead)?,
        Q::CodeLock => format!("SELECT {CODE_COLUMNS} FROM codes WHERE id = ?1"),
        Q::RelayCursor => shared(Q::RelayPlace)?,
        _ => return None,
    })
}

/// `?N` placeholders as PostgreSQL's `$N`.
pub(crate) fn dollar_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_statement_in_order() {
        for (i, q) in Q::ALL.iter().enumerate() {
            assert_eq!(*q as usize, i, "{q:?}");
        }
    }

    #[test]
    fn every_statement_has_one_text_per_dialect() {
        for q in Q::ALL {
            let (pg, sqlite) = (crate::postgres::sql::sql(*q), crate::sqlite::sql::sql(*q));
            assert!(!pg.contains('?'), "{q:?} keeps ?N placeholders on PostgreSQL: {pg}");
            let dollar = sqlite
                .as_bytes()
                .windows(2)
                .any(|w| w[0] == b'$' && w[1].is_ascii_digit());
            assert!(!dollar, "{q:?} has $N placeholders on SQLite: {sqlite}");
            assert!(
                !sqlite.contains("FOR UPDATE"),
                "{q:?} takes a row lock on SQLite: {sqlite}"
            );
        }
    }

    #[test]
    fn placeholders_become_dollars() {
        assert_eq!(
            dollar_placeholders("a = ?1 AND b = ?12 OR ?"),
            "a = $1 AND b = $12 OR ?"
        );
    }
}
