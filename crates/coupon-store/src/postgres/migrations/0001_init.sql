-- Coupon books. `generated` counts the book's code instances; the CHECK keeps it within the
-- supply cap, and every insert of codes moves it in the same transaction.
CREATE TABLE books (
    id UUID PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    category TEXT,
    tags TEXT NOT NULL,
    discount_type TEXT NOT NULL CHECK (discount_type IN ('percentage', 'fixed_amount')),
    discount_value BIGINT NOT NULL CHECK (discount_value > 0),
    currency TEXT NOT NULL,
    max_discount BIGINT CHECK (max_discount >= 0),
    min_order_amount BIGINT CHECK (min_order_amount >= 0),
    starts_at BIGINT,
    expires_at BIGINT,
    status TEXT NOT NULL CHECK (status IN ('active', 'paused', 'archived')),
    code_mode TEXT NOT NULL CHECK (code_mode IN ('unique', 'shared')),
    shared_code TEXT,
    code_pattern TEXT,
    total_codes BIGINT CHECK (total_codes > 0),
    generated BIGINT NOT NULL DEFAULT 0
        CHECK (generated >= 0 AND (total_codes IS NULL OR generated <= total_codes)),
    max_codes_per_user BIGINT CHECK (max_codes_per_user > 0),
    max_redemptions_per_user BIGINT CHECK (max_redemptions_per_user > 0),
    max_redemptions_per_code BIGINT NOT NULL CHECK (max_redemptions_per_code > 0),
    claims_per_user_per_day BIGINT CHECK (claims_per_user_per_day > 0),
    claim_ttl_seconds BIGINT CHECK (claim_ttl_seconds > 0),
    lock_ttl_seconds BIGINT NOT NULL CHECK (lock_ttl_seconds > 0),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    -- Tags are stored as JSON text; the parser drops its punctuation, leaving the words.
    search TSVECTOR GENERATED ALWAYS AS
        (to_tsvector('english', name || ' ' || description || ' ' || tags)) STORED
);
CREATE INDEX books_newest ON books (created_at DESC, id DESC);
CREATE INDEX books_search ON books USING GIN (search);

-- Code instances. A code text is unique across the service (instance 0 always exists), a row has
-- one owner column, and an owner exactly when the code is out of the pool.
CREATE TABLE codes (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    book_id UUID NOT NULL REFERENCES books (id),
    code TEXT NOT NULL,
    instance BIGINT NOT NULL CHECK (instance >= 0),
    status TEXT NOT NULL CHECK (status IN ('available', 'active', 'redeemed')),
    owner TEXT,
    claimed_at BIGINT,
    claim_expires_at BIGINT,
    lock_id UUID,
    locked_until BIGINT,
    redemptions BIGINT NOT NULL DEFAULT 0 CHECK (redemptions >= 0),
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
    book_id UUID NOT NULL REFERENCES books (id),
    user_id TEXT NOT NULL,
    held BIGINT NOT NULL DEFAULT 0 CHECK (held >= 0),
    day BIGINT NOT NULL DEFAULT 0,
    day_claims BIGINT NOT NULL DEFAULT 0 CHECK (day_claims >= 0),
    redeemed BIGINT NOT NULL DEFAULT 0 CHECK (redeemed >= 0),
    PRIMARY KEY (book_id, user_id)
);

-- The redemption history. The unique key makes a repeated redeem of one order count once.
CREATE TABLE redemptions (
    id UUID PRIMARY KEY,
    code_id BIGINT NOT NULL REFERENCES codes (id),
    book_id UUID NOT NULL REFERENCES books (id),
    code TEXT NOT NULL,
    user_id TEXT NOT NULL,
    order_id TEXT,
    order_amount BIGINT CHECK (order_amount >= 0),
    discount_applied BIGINT CHECK (discount_applied >= 0),
    final_price BIGINT CHECK (final_price >= 0),
    redeemed_at BIGINT NOT NULL,
    UNIQUE (code, user_id, order_id)
);
CREATE INDEX redemptions_book ON redemptions (book_id);
