-- Low-stock and sold-out alerts. `pool` counts the book's codes nobody holds, moved in the same
-- statements (and transactions) that move codes in and out of the pool; `stock_level` is how far
-- it had fallen when last looked at, so each level is announced once on the way down.
ALTER TABLE books ADD COLUMN low_stock_threshold INTEGER CHECK (low_stock_threshold >= 0);
ALTER TABLE books ADD COLUMN pool INTEGER NOT NULL DEFAULT 0 CHECK (pool >= 0);
ALTER TABLE books ADD COLUMN stock_level TEXT NOT NULL DEFAULT 'plenty'
    CHECK (stock_level IN ('plenty', 'low', 'sold_out'));
UPDATE books SET pool = (SELECT count(*) FROM codes WHERE codes.book_id = books.id AND codes.status = 'available');

-- The outbox: every change's events, written by the change's own transaction. SQLite's one writer
-- commits transactions in the order they run, so positions are commit order; AUTOINCREMENT never
-- hands out a position again, even once pruning has emptied the table. `xid` is always 0: it is
-- there so the feed's place reads as on PostgreSQL.
CREATE TABLE events (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    xid INTEGER NOT NULL DEFAULT 0,
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    occurred_at INTEGER NOT NULL,
    book_id TEXT,
    code TEXT,
    user_id TEXT,
    data TEXT NOT NULL
);
