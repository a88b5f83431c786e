//! The named statements the scripts run. Each is declared once, in `statements!` below, with the
//! names of its parameters in the order they are bound; a script passes its arguments by those
//! names (`Q::UseCode { code_id, user, .. }`), so a missing or misspelt one does not compile.
//!
//! Every statement has exactly one text per dialect: the shared one (`statements/shared.rs`) where
//! both read the same, else each backend's own in its `sql.rs` (row locks, arrays, full-text
//! search, series), built from the column lists and fragments of `statements/columns.rs`. Texts
//! refer to parameters by name (`:code_id`) and become positional (`?N`, and PostgreSQL's `$N`
//! from those) once per process, by the declared order (`statements/placeholders.rs`). A test
//! checks that each text names exactly its statement's parameters.

mod columns;
mod placeholders;
mod shared;

pub(crate) use columns::{qualified, BOOK_COLUMNS, CODE_COLUMNS, EVENT_COLUMNS, EVENT_KEYS, NO_HISTORY};
pub(crate) use placeholders::{dollar_placeholders, positional};
pub(crate) use shared::{shared, unlocked};

use crate::backend::Arg;

macro_rules! statements {
    ($($(#[$doc:meta])* $name:ident { $($param:ident),* $(,)? },)*) => {
        /// A statement by what it does, without its arguments: what its text is looked up by.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub(crate) enum Name {
            $($(#[$doc])* $name,)*
        }

        impl Name {
            /// Every statement, in declaration order (`q as usize` indexes it).
            pub(crate) const ALL: &'static [Name] = &[$(Name::$name,)*];

            /// The names of its parameters, in the order they are bound.
            pub(crate) fn params(self) -> &'static [&'static str] {
                match self {
                    $(Name::$name => &[$(stringify!($param)),*],)*
                }
            }
        }

        /// A statement with its arguments, each under its parameter's name.
        // Built at its call and taken apart there by the backend, never kept: the size of the
        // widest (a book's insert) costs nothing.
        #[allow(clippy::large_enum_variant)]
        #[derive(Debug, Clone, Copy)]
        pub(crate) enum Q<'a> {
            $($(#[$doc])* $name { $($param: Arg<'a>),* },)*
        }

        impl<'a> Q<'a> {
            pub(crate) fn name(&self) -> Name {
                match self {
                    $(Q::$name { .. } => Name::$name,)*
                }
            }

            /// Hands `bind` the arguments in declared order, the order of the positions their
            /// names became in the text.
            pub(crate) fn args<R>(&self, bind: impl FnOnce(&[Arg<'a>]) -> R) -> R {
                match *self {
                    $(Q::$name { $($param),* } => bind(&[$($param),*]),)*
                }
            }
        }
    };
}

statements! {
    /// A new book's row.
    BookInsert {
        id, name, description, category, tags, discount_type, discount_value, currency, max_discount,
        min_order_amount, starts_at, expires_at, status, code_mode, shared_code, code_pattern, total_codes,
        max_codes_per_user, max_redemptions_per_user, max_redemptions_per_code, claims_per_user_per_day,
        claim_ttl_seconds, lock_ttl_seconds, metadata, created_at, updated_at, low_stock_threshold,
    },
    /// A book with its supply counter, deal cursor, pool counter and the stock level last announced.
    BookRead { book_id },
    /// `BookRead`, the row locked until the transaction ends.
    BookLock { book_id },
    /// A shared book's instances 0..n of its code.
    SharedInstances { book_id, code, instances },
    /// Moves the supply counter (down too), never past `total_codes`.
    BumpSupply { book_id, by },
    /// Uploaded codes that exist nowhere yet; returns those inserted.
    UploadCodes { book_id, codes },
    /// Drawn codes that exist nowhere yet, in the order given (sorted: the index is written in order).
    InsertDrawn { book_id, codes },
    /// The fields an admin may change.
    BookUpdate { book_id, name, description, expires_at, status, updated_at, metadata, low_stock_threshold },
    /// Counts over a book's codes at a given time.
    BookStats { book_id, now },
    /// Books in a status (or any) and, for customers, inside their window, a page at a time.
    Search { now, category, discount_type, after_at, after_id, text, limit, status, in_window },
    /// Instance 0 of the named codes of a book, with whether any redemption refers to them.
    NamedCodes { book_id, codes },
    /// Takes codes off a book's returned queue.
    UnqueueCodes { book_id, code_ids },
    /// Deletes codes that are in the pool.
    DeleteCodes { code_ids },
    /// A page of a book's codes in id order, in a derived state (or any) at a given time.
    ListCodes { book_id, after, limit, state, now },
    /// Instance 0 of a code text.
    CodeZero { code },
    /// A book's lapsed claims, with their holders (rows another transaction holds are skipped).
    Lapsed { book_id, now },
    /// Puts codes back in the pool.
    FreeCodes { code_ids },
    /// Queues codes of a book to be dealt before the cursor moves on.
    QueueCodes { book_id, code_ids },
    /// Takes lapsed codes off their holders' counts.
    ChargeLapsed { book_id, users, lapsed },
    /// The counters of a batch's users in a book, locked in user-id order.
    Counters { book_id, users },
    /// Takes queued codes off the queue; says which are still free.
    PopReturned { book_id, limit },
    /// Free codes from the cursor on, in id order.
    FreshCodes { book_id, from, limit },
    /// Moves the deal cursor forward.
    MoveCursor { book_id, cursor },
    /// Gives free codes to their claimers; returns the codes taken.
    TakeCodes { code_ids, owners, claimed_at, claim_expires_at, metadata },
    /// Counts granted claims, creating missing counters, never past a limit; returns the users.
    WriteCounters { book_id, users, day, max_codes_per_user, claims_per_user_per_day, claims },
    /// Whether a book has a code to deal, and the earliest claim expiry among its held codes.
    Stock { book_id, now },
    /// The instance of a code a user owns that they would act on, locked.
    FindOwned { code, user, lock_id },
    /// One user's counters in a book, locked.
    Holdings { book_id, user },
    /// Puts a checkout lock on an owned, active, unlocked code.
    LockCode { code_id, user, lock_id, until, now },
    /// Releases a live lock.
    UnlockCode { code_id, user, lock_id, now },
    /// The redemption of a code by a user for an order, if any.
    PriorRedemption { code, user, order_id },
    /// Records a redemption once per (code, user, order).
    InsertRedemption {
        id, code_id, book_id, code, user, order_id, order_amount, discount_applied, final_price, redeemed_at,
        metadata,
    },
    /// Uses the code once, within its limit and its lock.
    UseCode { code_id, user, max_uses, now, lock_id },
    /// Counts a redemption for its user, creating the counter, never past the book's limit.
    CountRedemption { book_id, user, max_redemptions },
    /// A redemption with the id of its code instance.
    RedemptionRead { redemption_id },
    /// `RedemptionRead`, the row locked.
    RedemptionLock { redemption_id },
    /// A code instance by id, locked.
    CodeLock { code_id },
    /// Marks a live redemption rolled back.
    RollBack { redemption_id, rolled_back_at, reason, metadata },
    /// Gives a use back to the code, which is active for its owner again.
    GiveBackUse { code_id, user, reclaim_until },
    /// Takes a redemption off its user's count.
    UncountRedemption { book_id, user },
    /// A book's redemptions, newest first, a page at a time.
    BookRedemptions { book_id, after_at, after_id, limit },
    /// A user's redemptions, newest first, a page at a time.
    UserRedemptions { user, after_at, after_id, limit },
    /// A code as one user sees it, with its book and that user's counters.
    CodeView { code, user, lock_id },
    /// Every code a user has owned, with its book.
    UserCodes { user },
    /// Moves a book's pool counter by the codes a claim batch took and gave back.
    MovePool { book_id, by },
    /// Records the stock level announced.
    SetStockLevel { book_id, level },
    /// Writes a transaction's events, given as a list of each field.
    RecordEvents { ids, types, occurred_at, book_ids, codes, user_ids, data },
    /// Committed events after a cursor, in feed order, of some types (or any).
    Events { after_xid, after_position, types, limit },
    /// `Events` without their objects: the keys the fan-out needs.
    EventKeys { after_xid, after_position, types, limit },
    /// A new webhook endpoint.
    WebhookInsert { id, url, events, description, secret, created_at },
    /// Every endpoint, with its secret, oldest first.
    Webhooks {},
    /// One endpoint.
    WebhookRead { webhook_id },
    /// Deletes an endpoint and its deliveries.
    WebhookDelete { webhook_id },
    /// How far a consumer inside coupond has read the feed.
    RelayPlace { name },
    /// `RelayPlace`, the row locked.
    RelayCursor { name },
    /// Moves a consumer's place in the feed, if it is still where it was read.
    MoveRelayCursor { name, from_xid, from_position, to_xid, to_position },
    /// A consumer's place at the start of the feed, unless it has one.
    AddRelayCursor { name },
    /// Records deliveries, given as a list of each field; one per event and endpoint.
    RecordDeliveries { ids, webhook_ids, event_xids, event_positions, event_ids, event_types, now },
    /// Leases an endpoint's due deliveries, in feed order, skipping rows another instance holds.
    LeaseDeliveries { webhook_id, now, until, limit },
    /// Events by their places in the feed.
    EventsAt { xids, positions },
    /// Marks a leased delivery delivered.
    SettleDelivered { delivery_id, delivered_at, status },
    /// Records a failed attempt: due again at a time, or failed for good.
    SettleFailed { delivery_id, status, error, next_attempt_at },
    /// An endpoint's deliveries, newest first, a page at a time.
    Deliveries { webhook_id, after_at, after_id, limit },
    /// One delivery of an endpoint.
    DeliveryRead { webhook_id, delivery_id },
    /// Makes a delivery due again now.
    RetryDelivery { webhook_id, delivery_id, now },
    /// Pending deliveries and when the oldest one's event occurred.
    Backlog {},
    /// For each consumer's place in the feed, the events after it and when the oldest occurred.
    Unread {},
    /// Deletes finished deliveries written before a time.
    PruneDeliveries { before },
    /// Deletes events before a time that the relay has passed and no pending delivery needs.
    PruneEvents { before },
    /// Records the first answers of keyed requests, given as a list of each field (`created_at`
    /// too); a key already
    /// taken records nothing, which the count of rows written tells.
    RecordKeys { scopes, keys, fingerprints, statuses, bodies, created_at },
    /// A key's first answer, and the digest of the request that gave it.
    FindKey { scope, key },
    /// Deletes up to `limit` idempotency keys written before a time.
    PurgeKeys { before, limit },
    /// Whether the database answers.
    Ping {},
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::placeholders::{pieces, Piece};
    use super::*;

    #[test]
    fn all_lists_every_statement_in_order() {
        for (i, q) in Name::ALL.iter().enumerate() {
            assert_eq!(*q as usize, i, "{q:?}");
        }
    }

    #[test]
    fn every_statement_has_one_text_per_dialect() {
        for q in Name::ALL {
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

    /// A `:` that could start a name, anywhere (quoted too): none may be left once positional.
    fn named_placeholder_left(sql: &str) -> bool {
        sql.as_bytes()
            .windows(3)
            .any(|w| w[0] != b':' && w[1] == b':' && (w[2].is_ascii_alphabetic() || w[2] == b'_'))
    }

    #[test]
    fn every_text_names_exactly_its_parameters() {
        for q in Name::ALL {
            let declared: BTreeSet<&str> = q.params().iter().copied().collect();
            let dialects = [
                (
                    "PostgreSQL",
                    crate::postgres::sql::named(*q),
                    crate::postgres::sql::sql(*q),
                ),
                ("SQLite", crate::sqlite::sql::named(*q), crate::sqlite::sql::sql(*q)),
            ];
            for (dialect, named, sql) in dialects {
                let used: BTreeSet<&str> = pieces(&named)
                    .into_iter()
                    .filter_map(|p| match p {
                        Piece::Param(name) => Some(name),
                        Piece::Sql(_) => None,
                    })
                    .collect();
                let missing: Vec<_> = declared.difference(&used).collect();
                let unknown: Vec<_> = used.difference(&declared).collect();
                assert!(
                    missing.is_empty() && unknown.is_empty(),
                    "{q:?} on {dialect}: {missing:?} declared, not in the text; {unknown:?} in it, undeclared: {named}"
                );
                assert!(
                    !named_placeholder_left(sql),
                    "{q:?} keeps a named parameter on {dialect}: {sql}"
                );
            }
        }
    }

    #[test]
    fn names_become_positions() {
        let text = "a = :b::bigint AND c = ':x' AND json_extract(:a, '$[' || k || ']') = :b AND d = :z";
        assert_eq!(
            positional(text, &["a", "b"]),
            "a = ?2::bigint AND c = ':x' AND json_extract(?1, '$[' || k || ']') = ?2 AND d = :z"
        );
        assert_eq!(
            dollar_placeholders(&positional("x::text::bigint < :a", &["a"])),
            "x::text::bigint < $1"
        );
    }

    #[test]
    fn placeholders_become_dollars() {
        assert_eq!(
            dollar_placeholders("a = ?1 AND b = ?12 OR ?"),
            "a = $1 AND b = $12 OR ?"
        );
    }
}
