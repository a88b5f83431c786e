//! The text of the statements that read the same in both dialects, with their parameters by name.

use super::columns::{
    after_redemption, aliased, instance_order, lapsed, qualified, state_filter, values_of, BOOK_COLUMNS, CODE_COLUMNS,
    DELIVERY_COLUMNS, HOLDINGS_COLUMNS, REDEMPTION_COLUMNS,
};
use super::Name;

/// The text of `q` where it is the same in both dialects.
pub(crate) fn shared(q: Name) -> Option<String> {
    Some(match q {
        Name::BookInsert => format!(
            "INSERT INTO books ({BOOK_COLUMNS}) VALUES ({})",
            values_of(BOOK_COLUMNS)
        ),
        Name::BookRead => {
            format!("SELECT {BOOK_COLUMNS}, generated, deal_cursor, pool, stock_level FROM books WHERE id = :book_id")
        }
        Name::BumpSupply => "UPDATE books SET generated = generated + :by, pool = pool + :by \
             WHERE id = :book_id AND (total_codes IS NULL OR generated + :by <= total_codes)"
            .into(),
        Name::BookUpdate => "UPDATE books SET name = :name, description = :description, expires_at = :expires_at, \
             status = :status, updated_at = :updated_at, metadata = :metadata, \
             low_stock_threshold = :low_stock_threshold WHERE id = :book_id"
            .into(),
        Name::BookStats => format!(
            "SELECT count(*) AS instances, \
               count(*) FILTER (WHERE status = 'redeemed') AS redeemed, \
               count(*) FILTER (WHERE status = 'active' AND locked_until > :now) AS locked, \
               count(*) FILTER (WHERE status = 'active' AND NOT {}) AS active, \
               (SELECT count(*) FROM redemptions WHERE book_id = :book_id AND rolled_back_at IS NULL) AS redemptions, \
               (SELECT CAST(coalesce(sum(discount_applied), 0) AS BIGINT) FROM redemptions \
                 WHERE book_id = :book_id AND rolled_back_at IS NULL) AS discount_applied \
             FROM codes WHERE book_id = :book_id",
            lapsed("")
        ),
        Name::CodeZero => format!("SELECT {CODE_COLUMNS} FROM codes WHERE code = :code AND instance = 0"),
        Name::FreshCodes => "SELECT id FROM codes WHERE book_id = :book_id AND id >= :from \
             AND status = 'available' ORDER BY book_id, id LIMIT :limit"
            .into(),
        Name::MoveCursor => {
            "UPDATE books SET deal_cursor = :cursor WHERE id = :book_id AND deal_cursor < :cursor".into()
        }
        Name::Stock => format!(
            "SELECT {BOOK_COLUMNS}, \
               EXISTS (SELECT 1 FROM codes WHERE book_id = books.id AND status = 'available' AND id >= deal_cursor) \
               OR EXISTS (SELECT 1 FROM returned_codes WHERE book_id = books.id) \
               OR EXISTS (SELECT 1 FROM codes WHERE book_id = books.id AND {}) AS available, \
               (SELECT min(claim_expires_at) FROM codes \
                 WHERE book_id = books.id AND status = 'active' AND claim_expires_at IS NOT NULL) AS next_lapse \
             FROM books WHERE id = :book_id",
            lapsed("")
        ),
        Name::LockCode => format!(
            "UPDATE codes SET lock_id = :lock_id, locked_until = :until \
             WHERE id = :code_id AND owner = :user AND status = 'active' \
               AND (locked_until IS NULL OR locked_until <= :now) AND NOT {}",
            lapsed("")
        ),
        Name::UnlockCode => "UPDATE codes SET lock_id = NULL, locked_until = NULL \
             WHERE id = :code_id AND owner = :user AND lock_id = :lock_id AND locked_until > :now"
            .into(),
        Name::PriorRedemption => format!(
            "SELECT {REDEMPTION_COLUMNS} FROM redemptions \
             WHERE code = :code AND user_id = :user AND order_id = :order_id AND rolled_back_at IS NULL"
        ),
        // A rolled-back redemption no longer holds its order: the same order may redeem again.
        Name::InsertRedemption => "INSERT INTO redemptions (id, code_id, book_id, code, user_id, order_id, \
               order_amount, discount_applied, final_price, redeemed_at, metadata) \
             VALUES (:id, :code_id, :book_id, :code, :user, :order_id, :order_amount, :discount_applied, \
               :final_price, :redeemed_at, :metadata) \
             ON CONFLICT (user_id, code, order_id) WHERE rolled_back_at IS NULL DO NOTHING"
            .into(),
        Name::UseCode => format!(
            "UPDATE codes SET redemptions = redemptions + 1, \
               status = CASE WHEN redemptions + 1 >= :max_uses THEN 'redeemed' ELSE 'active' END, \
               lock_id = NULL, locked_until = NULL \
             WHERE id = :code_id AND owner = :user AND status = 'active' AND redemptions < :max_uses \
               AND (locked_until IS NULL OR locked_until <= :now OR lock_id = :lock_id) AND NOT {}",
            lapsed("")
        ),
        Name::CountRedemption => "INSERT INTO user_books (book_id, user_id, redeemed) VALUES (:book_id, :user, 1) \
             ON CONFLICT (book_id, user_id) DO UPDATE SET redeemed = user_books.redeemed + 1 \
             WHERE CAST(:max_redemptions AS BIGINT) IS NULL OR user_books.redeemed < :max_redemptions"
            .into(),
        Name::CodeView => format!(
            "SELECT {}, {}, u.held, u.day, u.day_claims, u.redeemed FROM codes c \
               JOIN books b ON b.id = c.book_id \
               LEFT JOIN user_books u ON u.book_id = c.book_id AND u.user_id = :user \
             WHERE c.code = :code AND (c.owner = :user OR c.instance = 0) \
             ORDER BY coalesce(c.owner = :user, false) DESC, {} LIMIT 1",
            qualified(CODE_COLUMNS, "c"),
            aliased(BOOK_COLUMNS, "b", "b_"),
            instance_order("c."),
        ),
        Name::UserCodes => format!(
            "SELECT {}, {} FROM codes c JOIN books b ON b.id = c.book_id \
             WHERE c.owner = :user ORDER BY c.claimed_at DESC, c.id DESC",
            qualified(CODE_COLUMNS, "c"),
            aliased(BOOK_COLUMNS, "b", "b_"),
        ),
        Name::RedemptionRead => {
            format!("SELECT {REDEMPTION_COLUMNS}, code_id FROM redemptions WHERE id = :redemption_id")
        }
        Name::ListCodes => format!(
            "SELECT {CODE_COLUMNS} FROM codes WHERE book_id = :book_id AND id > :after AND {} \
             ORDER BY book_id, id LIMIT :limit",
            state_filter()
        ),
        Name::RollBack => "UPDATE redemptions SET rolled_back_at = :rolled_back_at, rollback_reason = :reason, \
               rollback_metadata = :metadata WHERE id = :redemption_id AND rolled_back_at IS NULL"
            .into(),
        // A claim that would lapse at once starts afresh: the code is the owner's again, to redeem.
        Name::GiveBackUse => "UPDATE codes SET redemptions = redemptions - 1, status = 'active', \
               claim_expires_at = CASE WHEN CAST(:reclaim_until AS BIGINT) IS NULL OR claim_expires_at IS NULL \
                 OR claim_expires_at >= :reclaim_until THEN claim_expires_at ELSE :reclaim_until END \
             WHERE id = :code_id AND owner = :user AND redemptions > 0"
            .into(),
        Name::UncountRedemption => "UPDATE user_books SET redeemed = redeemed - 1 \
             WHERE book_id = :book_id AND user_id = :user AND redeemed > 0"
            .into(),
        Name::BookRedemptions => format!(
            "SELECT {REDEMPTION_COLUMNS} FROM redemptions WHERE book_id = :book_id AND {} \
             ORDER BY redeemed_at DESC, id DESC LIMIT :limit",
            after_redemption()
        ),
        // The live ones through the unique index, the rolled-back ones through their own.
        Name::UserRedemptions => format!(
            "SELECT {REDEMPTION_COLUMNS} FROM redemptions \
               WHERE user_id = :user AND rolled_back_at IS NULL AND {after} \
             UNION ALL SELECT {REDEMPTION_COLUMNS} FROM redemptions \
               WHERE user_id = :user AND rolled_back_at IS NOT NULL AND {after} \
             ORDER BY redeemed_at DESC, id DESC LIMIT :limit",
            after = after_redemption()
        ),
        Name::MovePool => "UPDATE books SET pool = pool + :by WHERE id = :book_id".into(),
        Name::SetStockLevel => "UPDATE books SET stock_level = :level WHERE id = :book_id".into(),
        Name::WebhookInsert => "INSERT INTO webhooks (id, url, events, description, secret, created_at) \
             VALUES (:id, :url, :events, :description, :secret, :created_at)"
            .into(),
        Name::Webhooks => "SELECT id, url, events, description, secret, created_at FROM webhooks \
             ORDER BY created_at, id"
            .into(),
        Name::WebhookRead => "SELECT id, url, events, description, secret, created_at FROM webhooks \
             WHERE id = :webhook_id"
            .into(),
        Name::WebhookDelete => "DELETE FROM webhooks WHERE id = :webhook_id".into(),
        Name::MoveRelayCursor => "UPDATE relay_cursors SET xid = :to_xid, position = :to_position \
             WHERE name = :name AND xid = :from_xid AND position = :from_position"
            .into(),
        Name::AddRelayCursor => "INSERT INTO relay_cursors (name, xid, position) VALUES (:name, 0, 0) \
             ON CONFLICT (name) DO NOTHING"
            .into(),
        Name::SettleDelivered => "UPDATE deliveries SET state = 'delivered', delivered_at = :delivered_at, \
               last_status = :status, last_error = NULL, leased_until = NULL \
             WHERE id = :delivery_id AND state = 'pending'"
            .into(),
        // No next time: the attempts are spent, and the delivery has failed.
        Name::SettleFailed => "UPDATE deliveries SET last_status = :status, last_error = :error, leased_until = NULL, \
               state = CASE WHEN CAST(:next_attempt_at AS BIGINT) IS NULL THEN 'failed' ELSE 'pending' END, \
               next_attempt_at = coalesce(:next_attempt_at, next_attempt_at) \
             WHERE id = :delivery_id AND state = 'pending'"
            .into(),
        Name::Deliveries => format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE webhook_id = :webhook_id \
               AND (CAST(:after_at AS BIGINT) IS NULL OR (created_at, id) < (:after_at, :after_id)) \
             ORDER BY created_at DESC, id DESC LIMIT :limit"
        ),
        Name::DeliveryRead => {
            format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE webhook_id = :webhook_id AND id = :delivery_id")
        }
        Name::RetryDelivery => "UPDATE deliveries SET state = 'pending', next_attempt_at = :now, leased_until = NULL \
             WHERE webhook_id = :webhook_id AND id = :delivery_id"
            .into(),
        // Pruning keeps every event a pending delivery refers to, so the join loses none.
        Name::Backlog => "SELECT count(*) AS pending, min(e.occurred_at) AS oldest FROM deliveries d \
             JOIN events e ON e.xid = d.event_xid AND e.position = d.event_position WHERE d.state = 'pending'"
            .into(),
        Name::Unread => "SELECT r.name, count(e.position) AS unread, min(e.occurred_at) AS oldest \
             FROM relay_cursors r LEFT JOIN events e ON (e.xid, e.position) > (r.xid, r.position) \
             GROUP BY r.name ORDER BY r.name"
            .into(),
        Name::PruneDeliveries => "DELETE FROM deliveries WHERE state <> 'pending' AND created_at < :before".into(),
        Name::PruneEvents => "DELETE FROM events WHERE occurred_at < :before \
             AND NOT EXISTS (SELECT 1 FROM relay_cursors r WHERE (events.xid, events.position) > (r.xid, r.position)) \
             AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.state = 'pending' \
               AND d.event_xid = events.xid AND d.event_position = events.position)"
            .into(),
        Name::RelayPlace => "SELECT xid, position FROM relay_cursors WHERE name = :name".into(),
        Name::FindKey => {
            "SELECT fingerprint, status, body FROM idempotency_keys WHERE scope = :scope AND key = :key".into()
        }
        Name::PurgeKeys => "DELETE FROM idempotency_keys WHERE (scope, key) IN \
             (SELECT scope, key FROM idempotency_keys WHERE created_at < :before LIMIT :limit)"
            .into(),
        Name::Ping => "SELECT 1 AS one".into(),
        Name::BookLock
        | Name::SharedInstances
        | Name::UploadCodes
        | Name::InsertDrawn
        | Name::Search
        | Name::Lapsed
        | Name::FreeCodes
        | Name::QueueCodes
        | Name::ChargeLapsed
        | Name::Counters
        | Name::PopReturned
        | Name::TakeCodes
        | Name::WriteCounters
        | Name::FindOwned
        | Name::Holdings
        | Name::NamedCodes
        | Name::UnqueueCodes
        | Name::DeleteCodes
        | Name::RedemptionLock
        | Name::CodeLock
        | Name::RecordEvents
        | Name::Events
        | Name::EventKeys
        | Name::RelayCursor
        | Name::RecordDeliveries
        | Name::LeaseDeliveries
        | Name::EventsAt
        | Name::RecordKeys => return None,
    })
}

/// Statements that differ only in taking row locks on PostgreSQL: their text without the lock.
pub(crate) fn unlocked(q: Name) -> Option<String> {
    Some(match q {
        Name::BookLock => shared(Name::BookRead)?,
        Name::Lapsed => format!(
            "SELECT id, code, owner FROM codes WHERE book_id = :book_id AND {} ORDER BY id",
            lapsed("")
        ),
        Name::FindOwned => format!(
            "SELECT {CODE_COLUMNS} FROM codes WHERE code = :code AND owner = :user ORDER BY {} LIMIT 1",
            instance_order("")
        ),
        Name::Holdings => {
            format!("SELECT {HOLDINGS_COLUMNS} FROM user_books WHERE book_id = :book_id AND user_id = :user")
        }
        Name::RedemptionLock => shared(Name::RedemptionRead)?,
        Name::CodeLock => format!("SELECT {CODE_COLUMNS} FROM codes WHERE id = :code_id"),
        Name::RelayCursor => shared(Name::RelayPlace)?,
        _ => return None,
    })
}
