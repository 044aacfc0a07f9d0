-- Protective DNS (issue 13): blocklists per plan and exceptions (requested by members on the
-- block page, approved by operators for a member, a plan or everyone, with an expiry).
CREATE TABLE dns_blocklists (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    -- Comma-separated plan names; empty = every plan.
    plans TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL
);
CREATE TABLE dns_exceptions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    domain TEXT NOT NULL,
    -- 'everyone' | 'plan' | 'member'
    scope TEXT NOT NULL,
    scope_value TEXT,
    valid_until TEXT,
    -- 'pending' | 'approved' | 'denied'
    status TEXT NOT NULL,
    requester TEXT,
    reason TEXT NOT NULL DEFAULT '',
    list TEXT,
    created_at BIGINT NOT NULL,
    decided_at BIGINT,
    decided_by TEXT
);
CREATE INDEX dns_exceptions_status ON dns_exceptions(status);
