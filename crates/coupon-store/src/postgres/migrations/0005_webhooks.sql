-- Webhook endpoints and their deliveries. A delivery is one event for one endpoint; its state
-- lives here, so delivery survives a restart, and an instance leases the deliveries it sends
-- (`leased_until`, taken with SKIP LOCKED), so two instances never send one attempt at once.
CREATE TABLE webhooks (
    id UUID PRIMARY KEY,
    url TEXT NOT NULL,
    -- A JSON array of event types, or ["*"].
    events TEXT NOT NULL,
    description TEXT,
    secret TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE deliveries (
    id UUID PRIMARY KEY,
    webhook_id UUID NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_xid BIGINT NOT NULL,
    event_position BIGINT NOT NULL,
    event_id UUID NOT NULL,
    event_type TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts BIGINT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at BIGINT NOT NULL,
    leased_until BIGINT,
    last_attempt_at BIGINT,
    last_status BIGINT,
    last_error TEXT,
    delivered_at BIGINT,
    created_at BIGINT NOT NULL,
    UNIQUE (webhook_id, event_xid, event_position)
);
CREATE INDEX deliveries_due ON deliveries (webhook_id, event_xid, event_position) WHERE state = 'pending';
CREATE INDEX deliveries_newest ON deliveries (webhook_id, created_at DESC, id DESC);

-- How far each consumer inside coupond has read the feed: the webhooks' fan-out, and NATS once
-- it was configured. Events behind every cursor may be pruned.
CREATE TABLE relay_cursors (
    name TEXT PRIMARY KEY,
    xid BIGINT NOT NULL,
    position BIGINT NOT NULL
);
INSERT INTO relay_cursors (name, xid, position) VALUES ('webhooks', 0, 0);
