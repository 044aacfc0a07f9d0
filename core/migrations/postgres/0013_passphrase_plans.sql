-- Identity PSK, second step: a passphrase may belong to a plan instead of a member or team (a
-- shared "join" passphrase for devices nobody has bound yet, landing on that plan's VLAN), and
-- the PMK (PBKDF2 of passphrase and SSID, 4096 rounds) is kept sealed next to it so RADIUS need
-- not spend ~5 ms a passphrase deriving it at every start.
ALTER TABLE passphrases ADD COLUMN plan_id BIGINT REFERENCES plans(id) ON DELETE CASCADE;
ALTER TABLE passphrases ADD COLUMN pmk_enc TEXT;
ALTER TABLE passphrases DROP CONSTRAINT passphrases_check;
ALTER TABLE passphrases ADD CONSTRAINT passphrases_one_owner
    CHECK ((member_id IS NOT NULL)::int + (team_id IS NOT NULL)::int + (plan_id IS NOT NULL)::int = 1);
