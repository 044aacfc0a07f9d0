-- Operator console sessions. The cookie holds a random token; only its SHA-256 is stored, so a
-- database leak does not hand out live sessions. `csrf` is the per-session form token.
CREATE TABLE console_sessions (
    token_hash TEXT PRIMARY KEY,
    admin_id BIGINT NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    ip TEXT
);
CREATE INDEX console_sessions_admin ON console_sessions(admin_id);
-- A member's timeline on the console reads the audit by object.
CREATE INDEX audit_object ON audit(object, id);
