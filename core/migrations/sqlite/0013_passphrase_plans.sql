-- Identity PSK, second step: a passphrase may belong to a plan instead of a member or team (a
-- shared "join" passphrase for devices nobody has bound yet, landing on that plan's VLAN), and
-- the PMK (PBKDF2 of passphrase and SSID, 4096 rounds) is kept sealed next to it so RADIUS need
-- not spend ~5 ms a passphrase deriving it at every start (unbound mode checks handshakes
-- against every PMK of an SSID).
-- SQLite cannot change a CHECK constraint: the table is rebuilt. Devices learned so far are
-- kept.
CREATE TABLE passphrase_devices_keep AS SELECT * FROM passphrase_devices;
DROP TABLE passphrase_devices;
CREATE TABLE passphrases_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ssid TEXT NOT NULL,
    member_id TEXT REFERENCES members(id) ON DELETE CASCADE,
    team_id BIGINT REFERENCES teams(id) ON DELETE CASCADE,
    plan_id BIGINT REFERENCES plans(id) ON DELETE CASCADE,
    secret_enc TEXT NOT NULL,
    pmk_enc TEXT,
    valid_until TEXT,
    max_devices BIGINT,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT,
    CHECK ((member_id IS NOT NULL) + (team_id IS NOT NULL) + (plan_id IS NOT NULL) = 1)
);
INSERT INTO passphrases_new (id, ssid, member_id, team_id, secret_enc, valid_until, max_devices, created_at, revoked_at)
    SELECT id, ssid, member_id, team_id, secret_enc, valid_until, max_devices, created_at, revoked_at FROM passphrases;
DROP TABLE passphrases;
ALTER TABLE passphrases_new RENAME TO passphrases;
CREATE INDEX passphrases_ssid ON passphrases(ssid);
CREATE TABLE passphrase_devices (
    passphrase_id BIGINT NOT NULL REFERENCES passphrases(id) ON DELETE CASCADE,
    mac TEXT NOT NULL,
    first_at BIGINT NOT NULL,
    last_at BIGINT NOT NULL,
    PRIMARY KEY (passphrase_id, mac)
);
INSERT INTO passphrase_devices SELECT * FROM passphrase_devices_keep;
DROP TABLE passphrase_devices_keep;
