-- Coupon books. `generated` counts the book's code instances; the CHECK keeps it within the
-- supply cap, and every insert of codes moves it in the same transaction.
CREATE TABLE books (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    category TEXT,
    tags TEXT NOT NULL,
    discount_type TEXT NOT NULL CHECK (discount_type IN ('percentage', 'fixed_amount')),
    discount_value INTEGER NOT NULL CHECK (discount_value > 0),
    currency TEXT NOT NULL,
    max_discount INTEGER CHECK (max_discount >= 0),
    min_order_amount INTEGER CHECK (min_order_amount >= 0),
    starts_at INTEGER,
    expires_at INTEGER,
    status TEXT NOT NULL CHECK (status IN ('active', 'paused', 'archived')),
    code_mode TEXT NOT NULL CHECK (code_mode IN ('unique', 'shared')),
    shared_code TEXT,
    code_pattern TEXT,
    total_codes INTEGER CHECK (total_codes > 0),
    generated INTEGER NOT NULL DEFAULT 0
        CHECK (generated >= 0 AND (total_codes IS NULL OR generated <= total_codes)),
    max_codes_per_user INTEGER CHECK (max_codes_per_user > 0),
    max_redemptions_per_user INTEGER CHECK (max_redemptions_per_user > 0),
    max_redemptions_per_code INTEGER NOT NULL CHECK (max_redemptions_per_code > 0),
    claims_per_user_per_day INTEGER CHECK (claims_per_user_per_day > 0),
    claim_ttl_seconds INTEGER CHECK (claim_ttl_seconds > 0),
    lock_ttl_seconds INTEGER NOT NULL CHECK (lock_ttl_seconds > 0),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX books_newest ON books (created_at DESC, id DESC);

CREATE VIRTUAL TABLE books_fts USING fts5(
    name, description, tags, content = 'books', content_rowid = 'seq', tokenize = 'porter unicode61'
);
CREATE TRIGGER books_fts_insert AFTER INSERT ON books BEGIN
    INSERT INTO books_fts (rowid, name, description, tags)
    VALUES (new.seq, new.name, new.description, new.tags);
END;
CREATE TRIGGER books_fts_update AFTER UPDATE OF name, description, tags ON books BEGIN
    INSERT INTO books_fts (books_fts, rowid, name, description, tags)
    VALUES ('delete', old.seq, old.name, old.description, old.tags);
    INSERT INTO books_fts (rowid, name, description, tags)
    VALUES (new.seq, new.name, new.description, new.tags);
END;

-- Code instances. A code text is unique across the service (instance 0 always exists), a row has
-- one owner column, and an owner exactly when the code is out of the pool.
CREATE TABLE codes (
    id INTEGER PRIMARY KEY,
    book_id TEXT NOT NULL REFERENCES books (id),
    code TEXT NOT NULL,
    instance INTEGER NOT NULL CHECK (instance >= 0),
    status TEXT NOT NULL CHECK (status IN ('available', 'active', 'redeemed')),
    owner TEXT,
    claimed_at INTEGER,
    claim_expires_at INTEGER,
    lock_id TEXT,
    locked_until INTEGER,
    redemptions INTEGER NOT NULL DEFAULT 0 CHECK (redemptions >= 0),
    UNIQUE (code, instance),
    CHECK ((status = 'available') = (owner IS NULL)),
    CHECK ((lock_id IS NULL) = (locked_until IS NULL))
);
CREATE INDEX codes_pool ON codes (book_id, id) WHERE status = 'available';
CREATE INDEX codes_owner ON codes (owner, code) WHERE owner IS NOT NULL;
CREATE INDEX codes_claim_expiry ON codes (book_id, claim_expires_at)
    WHERE status = 'active' AND claim_expires_at IS NOT NULL;

-- Each user's counters within a book; per-user limits are conditional updates of this row.
CREATE TABLE user_books (
    book_id TEXT NOT NULL REFERENCES books (id),
    user_id TEXT NOT NULL,
    held INTEGER NOT NULL DEFAULT 0 CHECK (held >= 0),
    day INTEGER NOT NULL DEFAULT 0,
    day_claims INTEGER NOT NULL DEFAULT 0 CHECK (day_claims >= 0),
    redeemed INTEGER NOT NULL DEFAULT 0 CHECK (redeemed >= 0),
    PRIMARY KEY (book_id, user_id)
);

-- The redemption history. The unique key makes a repeated redeem of one order count once.
CREATE TABLE redemptions (
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
    UNIQUE (code, user_id, order_id)
);
CREATE INDEX redemptions_book ON redemptions (book_id);
