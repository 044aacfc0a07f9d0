-- Member self-service (/me). A member may set a password of their own for it (argon2id; the
-- Wi-Fi password is a different secret). Sign-in links by mail and sessions are stored as the
-- SHA-256 of their token only, like operator sessions.
ALTER TABLE members ADD COLUMN login_hash TEXT;
CREATE TABLE member_links (
    token_hash TEXT PRIMARY KEY,
    member_id TEXT NOT NULL REFERENCES members(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX member_links_member ON member_links(member_id);
CREATE TABLE member_sessions (
    token_hash TEXT PRIMARY KEY,
    member_id TEXT NOT NULL REFERENCES members(id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    ip TEXT
);
CREATE INDEX member_sessions_member ON member_sessions(member_id);

-- The dashboard's alerts look for unanswered Disconnect-Requests of the last day.
CREATE INDEX radius_sessions_disconnect ON radius_sessions(disconnect_at);
