-- Wi-Fi controllers (radius-only mode, SPEC §2/§5): the space's UniFi Network, Omada or Meraki
-- that shows Frontdesk as its external captive portal and lets Frontdesk authorize and kick
-- guests through its API. The secret (password or API key) is sealed with the secrets key.
CREATE TABLE controllers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    url TEXT NOT NULL,
    site TEXT,
    username TEXT,
    secret_enc TEXT,
    last_ok_at BIGINT,
    last_error TEXT,
    last_error_at BIGINT,
    created_at BIGINT NOT NULL
);
