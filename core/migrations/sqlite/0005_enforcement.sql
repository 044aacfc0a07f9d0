-- Enforcement state of a session: when Frontdesk started ending it and how that went
-- ('pending', 'acked', 'failed: <why>'), shown by `sessions --online`.
ALTER TABLE radius_sessions ADD COLUMN disconnect TEXT;
ALTER TABLE radius_sessions ADD COLUMN disconnect_at BIGINT;
