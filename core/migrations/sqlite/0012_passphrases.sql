-- Identity PSK (private passphrases): one WPA2-Personal SSID, a passphrase per member or team
-- that lands them on their own VLAN (the owner's plan or team decides it at login time).
-- The passphrase is sealed with the secrets key; it must be recoverable (the AP needs it).
CREATE TABLE passphrases (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ssid TEXT NOT NULL,
    member_id TEXT REFERENCES members(id) ON DELETE CASCADE,
    team_id BIGINT REFERENCES teams(id) ON DELETE CASCADE,
    secret_enc TEXT NOT NULL,
    valid_until TEXT,
    max_devices BIGINT,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT,
    CHECK ((member_id IS NULL) <> (team_id IS NULL))
);
CREATE INDEX passphrases_ssid ON passphrases(ssid);
-- Devices seen with a passphrase (learned from MAC authentication or the 4-way handshake).
CREATE TABLE passphrase_devices (
    passphrase_id BIGINT NOT NULL REFERENCES passphrases(id) ON DELETE CASCADE,
    mac TEXT NOT NULL,
    first_at BIGINT NOT NULL,
    last_at BIGINT NOT NULL,
    PRIMARY KEY (passphrase_id, mac)
);
