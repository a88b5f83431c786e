-- Metadata: the shop's own notes, JSON objects of strings, on books, on claims (kept while the code
-- is held) and on redemptions and their rollbacks.
ALTER TABLE books ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}';
ALTER TABLE codes ADD COLUMN metadata TEXT;

-- A redemption can be rolled back: it stays in the history, and its use goes back to the code and
-- the user. Only a live redemption holds its order, so the same order may redeem again after.
ALTER TABLE redemptions
    ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}',
    ADD COLUMN rolled_back_at BIGINT,
    ADD COLUMN rollback_reason TEXT,
    ADD COLUMN rollback_metadata TEXT,
    ADD CHECK (rolled_back_at IS NOT NULL OR (rollback_reason IS NULL AND rollback_metadata IS NULL));
ALTER TABLE redemptions DROP CONSTRAINT redemptions_code_user_id_order_id_key;
CREATE UNIQUE INDEX redemptions_live_order ON redemptions (code, user_id, order_id)
    WHERE rolled_back_at IS NULL;

-- The history pages newest first, by book and by user; removing a code asks whether any
-- redemption refers to it.
DROP INDEX redemptions_book;
CREATE INDEX redemptions_book_newest ON redemptions (book_id, redeemed_at DESC, id DESC);
CREATE INDEX redemptions_user_newest ON redemptions (user_id, redeemed_at DESC, id DESC);
CREATE INDEX redemptions_code ON redemptions (code_id);
