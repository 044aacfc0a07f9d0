-- JSON API bearer tokens. The token is shown once; only its SHA-256 is stored. `scopes` is a
-- space-separated list (members:read members:write ...). Revoked tokens stay for the audit.
CREATE TABLE api_tokens (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT
);

-- Membership webhooks already applied (by the sender's event id): a retried delivery is
-- acknowledged without being applied twice.
CREATE TABLE webhook_events (
    event_id TEXT PRIMARY KEY,
    received_at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    member_id TEXT
);
