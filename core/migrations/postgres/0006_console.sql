-- Operator console sessions. The cookie holds a random token; only its SHA-256 is stored, so a
-- database leak does not hand out live sessions. `csrf` is the per-session form token.
CREATE TABLE console_sessions (
    token_hash TEXT PRIMARY KEY,
    admin_id BIGINT NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    ip TEXT,
    -- Password checked, second factor not yet: the session opens only the code page.
    mfa_pending BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX console_sessions_admin ON console_sessions(admin_id);
-- A member's timeline on the console reads the audit by object.
CREATE INDEX audit_object ON audit(object, id);

-- Two-factor (TOTP): the secret sealed with the secrets key; the last step used (a code is good
-- once); a secret being enrolled; recovery codes stored as SHA-256.
ALTER TABLE admins ADD COLUMN totp_secret_enc TEXT;
ALTER TABLE admins ADD COLUMN totp_pending_enc TEXT;
ALTER TABLE admins ADD COLUMN totp_last_step BIGINT NOT NULL DEFAULT 0;
CREATE TABLE admin_recovery_codes (
    admin_id BIGINT NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    PRIMARY KEY (admin_id, code_hash)
);
