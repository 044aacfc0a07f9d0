-- Sponsored guests: a guest on the portal names a member, who approves by a link in a mail.
-- The link's secret is stored only as its SHA-256; the request id is what the guest's waiting
-- page polls.
CREATE TABLE sponsor_requests (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    member_id TEXT NOT NULL REFERENCES members(id) ON DELETE CASCADE,
    guest_mac TEXT NOT NULL,
    guest_ip TEXT,
    network TEXT,
    guest_name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    decided_at BIGINT,
    approved BIGINT,
    valid_until BIGINT
);
CREATE INDEX sponsor_requests_member ON sponsor_requests(member_id, created_at);
