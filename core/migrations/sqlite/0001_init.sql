-- Frontdesk schema, SQLite flavour. Instants are Unix seconds (BIGINT); dates are local
-- YYYY-MM-DD text; booleans are 0/1 so the same queries read both backends.

CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE sites (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    timezone TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE opening_hours (
    site_id BIGINT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    weekday BIGINT NOT NULL CHECK (weekday BETWEEN 0 AND 6),
    open_at TEXT NOT NULL,
    close_at TEXT NOT NULL
);

CREATE TABLE closures (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    site_id BIGINT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    from_date TEXT NOT NULL,
    to_date TEXT NOT NULL,
    reason TEXT NOT NULL,
    all_windows BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE plans (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    vlan BIGINT,
    wifi_window TEXT NOT NULL,
    door_window TEXT NOT NULL,
    device_limit BIGINT,
    door_groups TEXT NOT NULL,
    ssids TEXT NOT NULL,
    mac_only BIGINT NOT NULL DEFAULT 0,
    validity_days BIGINT,
    created_at BIGINT NOT NULL
);

CREATE TABLE teams (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    vlan BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE members (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    team_id BIGINT REFERENCES teams(id),
    wifi_username TEXT NOT NULL UNIQUE,
    nt_hash TEXT NOT NULL,
    password_enc TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE assignments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    member_id TEXT NOT NULL REFERENCES members(id) ON DELETE CASCADE,
    plan_id BIGINT NOT NULL REFERENCES plans(id),
    valid_from TEXT NOT NULL,
    valid_until TEXT
);
CREATE INDEX assignments_member ON assignments(member_id);

CREATE TABLE devices (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    mac TEXT NOT NULL UNIQUE,
    member_id TEXT REFERENCES members(id) ON DELETE CASCADE,
    plan_id BIGINT NOT NULL REFERENCES plans(id),
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE vouchers (
    code TEXT PRIMARY KEY,
    plan_id BIGINT NOT NULL REFERENCES plans(id),
    valid_secs BIGINT NOT NULL,
    devices BIGINT NOT NULL,
    sponsor_id TEXT REFERENCES members(id),
    created_at BIGINT NOT NULL,
    first_used_at BIGINT
);

CREATE TABLE nas (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    address TEXT NOT NULL,
    secret_enc TEXT NOT NULL,
    vendor TEXT NOT NULL,
    disconnect_port BIGINT NOT NULL,
    coa_port BIGINT NOT NULL,
    require_message_authenticator BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE admins (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    email TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    must_change_password BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL
);

CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    source TEXT NOT NULL,
    action TEXT NOT NULL,
    object TEXT NOT NULL,
    before_summary TEXT,
    after_summary TEXT
);

-- The audit log is append-only.
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;

CREATE TABLE changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    object TEXT NOT NULL
);
