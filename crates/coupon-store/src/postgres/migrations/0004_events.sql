-- Low-stock and sold-out alerts. `pool` counts the book's codes nobody holds, moved in the same
-- statements (and transactions) that move codes in and out of the pool; `stock_level` is how far
-- it had fallen when last looked at, so each level is announced once on the way down.
ALTER TABLE books
    ADD COLUMN low_stock_threshold BIGINT CHECK (low_stock_threshold >= 0),
    ADD COLUMN pool BIGINT NOT NULL DEFAULT 0 CHECK (pool >= 0),
    ADD COLUMN stock_level TEXT NOT NULL DEFAULT 'plenty' CHECK (stock_level IN ('plenty', 'low', 'sold_out'));
UPDATE books SET pool = (SELECT count(*) FROM codes WHERE codes.book_id = books.id AND codes.status = 'available');

-- The outbox: every change's events, written by the change's own transaction. Positions are
-- handed out in insert order but transactions commit in any order, so the feed orders by the
-- writing transaction's id first and shows only transactions older than every one still running
-- (below the snapshot's xmin): nothing can commit later with a lower (xid, position).
CREATE TABLE events (
    xid BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    position BIGINT GENERATED ALWAYS AS IDENTITY,
    id UUID NOT NULL,
    type TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    book_id UUID,
    code TEXT,
    user_id TEXT,
    data TEXT NOT NULL,
    PRIMARY KEY (xid, position)
);
