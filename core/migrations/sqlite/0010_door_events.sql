-- Door events in (issue 9): a door system's webhooks (Kisi, UniFi Access) are verified with
-- the backend's events secret (sealed with the secrets key), then recorded once per event id.
ALTER TABLE door_backends ADD COLUMN events_secret_enc TEXT;
CREATE TABLE door_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    backend_id BIGINT NOT NULL REFERENCES door_backends(id) ON DELETE CASCADE,
    event_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    -- unlock, denied, held_open, forced, other
    kind TEXT NOT NULL,
    door TEXT NOT NULL,
    -- The member behind the door system's user, when Frontdesk linked them.
    member_id TEXT,
    -- The door system's name for who it was.
    actor TEXT,
    UNIQUE (backend_id, event_id)
);
CREATE INDEX door_events_at ON door_events (at);
