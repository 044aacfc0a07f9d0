-- Door sync (SPEC §6). A backend is a door-access system (kisi, unifi-access, salto-ks,
-- webhook) with its API base URL and secret (sealed with the secrets key).
CREATE TABLE door_backends (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    url TEXT NOT NULL,
    secret_enc TEXT,
    created_at BIGINT NOT NULL
);
-- Plan -> door group in a backend, with its own schedule (NULL: the plan's door window).
CREATE TABLE door_maps (
    id BIGSERIAL PRIMARY KEY,
    backend_id BIGINT NOT NULL REFERENCES door_backends(id) ON DELETE CASCADE,
    plan_id BIGINT NOT NULL REFERENCES plans(id) ON DELETE CASCADE,
    door_group TEXT NOT NULL,
    schedule TEXT,
    UNIQUE (backend_id, plan_id, door_group)
);
-- Per backend and member: where the sync stands. `synced` is what was last written (the
-- webhook backend cannot read the receiver back); failures back off and quarantine.
CREATE TABLE door_sync_items (
    backend_id BIGINT NOT NULL REFERENCES door_backends(id) ON DELETE CASCADE,
    member_id TEXT NOT NULL,
    state TEXT NOT NULL,
    failures BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,
    last_error TEXT,
    synced TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (backend_id, member_id)
);
-- The last full reconcile per backend.
CREATE TABLE door_sync_runs (
    backend_id BIGINT PRIMARY KEY REFERENCES door_backends(id) ON DELETE CASCADE,
    started_at BIGINT NOT NULL,
    finished_at BIGINT,
    operations BIGINT NOT NULL DEFAULT 0,
    failed BIGINT NOT NULL DEFAULT 0,
    error TEXT
);
