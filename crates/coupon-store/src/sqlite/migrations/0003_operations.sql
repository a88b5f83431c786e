-- Metadata: the shop's own notes, JSON objects of strings, on books, on claims (kept while the code
-- is held) and on redemptions and their rollbacks.
ALTER TABLE books ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}';
ALTER TABLE codes ADD COLUMN metadata TEXT;

-- A redemption can be rolled back: it stays in the history, and its use goes back to the code and
-- the user. Only a live redemption holds its order, so the same order may redeem again after.
-- SQLite cannot drop a table's UNIQUE constraint: the table is rebuilt.
-- Codes that nobody ever held may now be deleted from a pool. A foreign key from the history to
-- its code would make each such delete look for redemptions by code, which takes an index written
-- at a random page on every redemption; instead the delete itself refuses a code with any history
-- (a live redemption keeps its code out of the pool; a rolled-back one is found by the partial
-- index below).
CREATE TABLE redemptions_rebuilt (
    id TEXT PRIMARY KEY,
    code_id INTEGER NOT NULL,
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
CREATE UNIQUE INDEX redemptions_live_order ON redemptions (user_id, code, order_id)
    WHERE rolled_back_at IS NULL;

-- The history pages newest first: a book's by its own index (its redemptions arrive in time
-- order, so the index grows at one end). A user's are found through the unique index above and,
-- for the rolled-back ones, the partial index below, then sorted: a user has few, and an index of
-- every redemption by user would be written at a random page on every redemption (measured as
-- half again the cost of a redemption's insert on SQLite). Removing a code asks whether a rolled
-- back redemption refers to it (a code in the pool has no live one).
CREATE INDEX redemptions_book_newest ON redemptions (book_id, redeemed_at DESC, id DESC);
CREATE INDEX redemptions_rolled_back_user ON redemptions (user_id) WHERE rolled_back_at IS NOT NULL;
CREATE INDEX redemptions_rolled_back_code ON redemptions (code_id) WHERE rolled_back_at IS NOT NULL;
