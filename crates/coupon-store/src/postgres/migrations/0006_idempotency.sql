-- Idempotency keys: the first answer to a request that carried an `Idempotency-Key`, written in
-- the transaction of the request's effect, so a retry is answered from here and never acts twice.
-- Keys belong to the caller (`scope`, the token's subject). `fingerprint` is a digest of what was
-- asked (method, path, query and body): the same key with another request is refused.
CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    key TEXT NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    fingerprint TEXT NOT NULL,
    status BIGINT NOT NULL CHECK (status BETWEEN 100 AND 599),
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);

-- Purging walks keys by age.
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
