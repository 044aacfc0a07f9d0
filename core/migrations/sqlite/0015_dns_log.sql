-- Protective DNS query log (issue 13): every answered query, or only blocked ones for plans
-- configured so ([dns] log_blocked_only), kept [dns] log_days days.
CREATE TABLE dns_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at BIGINT NOT NULL,
    client TEXT NOT NULL,
    plan TEXT,
    member TEXT,
    name TEXT NOT NULL,
    qtype INTEGER NOT NULL,
    -- cached | forwarded | blocked | canary | formerr | notimp | refused | servfail
    result TEXT NOT NULL,
    list TEXT
);
CREATE INDEX dns_log_at ON dns_log(at);
CREATE INDEX dns_log_member ON dns_log(member, id);

-- What the last load of each list found (written by the resolver's reloads and `dns blocklist
-- add`), so `dns blocklist list` need not download and parse every list again.
ALTER TABLE dns_blocklists ADD COLUMN domains BIGINT;
ALTER TABLE dns_blocklists ADD COLUMN loaded_at BIGINT;
ALTER TABLE dns_blocklists ADD COLUMN load_error TEXT;
