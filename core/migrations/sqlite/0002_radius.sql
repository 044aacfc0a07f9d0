-- RADIUS operational data: sessions from accounting (RFC 2866), the auth log, NAS counters.
-- Not audited (they are observations, not changes), not in the changes feed.

CREATE TABLE radius_sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    nas_id BIGINT NOT NULL,
    nas_addr TEXT NOT NULL,
    acct_session_id TEXT NOT NULL,
    user_name TEXT NOT NULL,
    member_id TEXT,
    mac TEXT,
    framed_ip TEXT,
    vlan BIGINT,
    class TEXT,
    started_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    stopped_at BIGINT,
    input_octets BIGINT NOT NULL DEFAULT 0,
    output_octets BIGINT NOT NULL DEFAULT 0,
    session_time BIGINT NOT NULL DEFAULT 0,
    terminate_cause TEXT,
    UNIQUE (nas_id, acct_session_id)
);
CREATE INDEX radius_sessions_online ON radius_sessions(stopped_at, member_id);

CREATE TABLE auth_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at BIGINT NOT NULL,
    nas_id BIGINT,
    user_name TEXT NOT NULL,
    mac TEXT,
    method TEXT NOT NULL,
    accepted BIGINT NOT NULL,
    reason TEXT NOT NULL,
    vlan BIGINT,
    latency_us BIGINT NOT NULL
);
CREATE INDEX auth_log_at ON auth_log(at);

-- Per NAS and cause: requests dropped, last heard, what it sends (for `nas list` / `nas test`).
CREATE TABLE nas_stats (
    nas_id BIGINT NOT NULL,
    counter TEXT NOT NULL,
    value BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (nas_id, counter)
);
