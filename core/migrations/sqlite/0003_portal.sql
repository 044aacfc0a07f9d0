-- Captive portal (gateway and controller modes): which devices used a voucher (vouchers count
-- devices), and the clients currently let out with their end, so a restart or a firewall reload
-- re-authorizes them with their remaining time instead of logging everyone out.

CREATE TABLE voucher_devices (
    code TEXT NOT NULL REFERENCES vouchers(code) ON DELETE CASCADE,
    mac TEXT NOT NULL,
    first_at BIGINT NOT NULL,
    PRIMARY KEY (code, mac)
);

CREATE TABLE portal_clients (
    mac TEXT PRIMARY KEY,
    ip TEXT,
    network TEXT,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    authorized_at BIGINT NOT NULL,
    valid_until BIGINT NOT NULL
);
CREATE INDEX portal_clients_until ON portal_clients(valid_until);
