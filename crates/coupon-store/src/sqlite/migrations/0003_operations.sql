-- Metadata: the shop's own notes, JSON objects of strings, on books, on claims (kept while the code
-- is held) and on redemptions and their rollbacks.
ALTER TABLE books ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}';
ALTER TABLE codes ADD COLUMN metadata TEXT;

-- A redemption can be rolled back: it stays in the history, and its use goes back to the code and
-- the user. Only a live redemption holds its order, so the same order may redeem again after.
-- SQLite cannot drop a table's UNIQUE constraint: the table is rebuilt.
CREATE TABLE redemptions_rebuilt (
    id TEXT PRIMARY KEY,
    code_id INTEGER NOT NULL REFERENCES codes (id),
    book_id TEXT NOT NULL REFERENCES books (id),
    code TEXT NOT NULL,
    user_id TEXT NOT NULL,
    order_id TEXT,
    order_amount INTEGER CHECK (order_amount >= 0),
    discount_applied INTEGER CHECK (discount_applied >= 0),
    final_price INTEGER CHECK (final_price >= 0),
    redeemed_at INTEGER NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    rolled_back_at INTEGER,
    rollback_reason TEXT,
    rollback_metadata TEXT,
    CHECK (rolled_back_at IS NOT NULL OR (rollback_reason IS NULL AND rollback_metadata IS NULL))
);
INSERT INTO redemptions_rebuilt (id, code_id, book_id, code, user_id, order_id, order_amount,
    discount_applied, final_price, redeemed_at)
SELECT id, code_id, book_id, code, user_id, order_id, order_amount, discount_applied, final_price,
    redeemed_at FROM redemptions;
DROP TABLE redemptions;
ALTER TABLE redemptions_rebuilt RENAME TO redemptions;
CREATE UNIQUE INDEX redemptions_live_order ON redemptions (code, user_id, order_id)
    WHERE rolled_back_at IS NULL;

-- The history pages newest first, by book and by user; removing a code asks whether any
-- redemption refers to it.
CREATE INDEX redemptions_book_newest ON redemptions (book_id, redeemed_at DESC, id DESC);
CREATE INDEX redemptions_user_newest ON redemptions (user_id, redeemed_at DESC, id DESC);
CREATE INDEX redemptions_code ON redemptions (code_id);
