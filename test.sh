#!/usr/bin/env bash
# The full test suite: unit, storage (SQLite and PostgreSQL) and cross-process tests.
# PostgreSQL must be reachable at 127.0.0.1:5432 (user postgres, database test), or set
# FRONTDESK_TEST_POSTGRES=postgres://…; outside CI, FRONTDESK_SKIP_POSTGRES=1 skips those tests
# (each prints SKIPPED). Tests needing root skip with a printed reason outside CI and fail in CI.
set -euo pipefail
cd "$(dirname "$0")"
# Doc tests first, so the run ends with nextest's summary of everything.
cargo test --workspace --doc --locked --quiet
cargo nextest run --workspace --locked "$@"
