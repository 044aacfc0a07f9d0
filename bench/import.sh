#!/usr/bin/env bash
# Benchmark: `member import --csv` of N members (default 100000) into a fresh SQLite database
# and, if reachable, a fresh PostgreSQL schema. Usage: bench/import.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
cargo build --release --quiet
bin=target/release/frontdesk
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
{
    echo "name,email,plan,team,valid_until"
    awk -v n="$n" 'BEGIN { split("flex full-time day-pass guest", p, " ");
        for (i = 1; i <= n; i++) printf "Member %d,member%d@example.com,%s,,%s\n", i, i, p[i % 4 + 1], (i % 3 ? "2027-12-31" : "") }'
} > "$work/members.csv"

run() {
    local label=$1 url=$2
    STATE_DIRECTORY=$work $bin --database "$url" init --site Bench --timezone Europe/Berlin >/dev/null
    local start end
    start=$(date +%s.%N)
    STATE_DIRECTORY=$work $bin --database "$url" member import --csv "$work/members.csv" >/dev/null
    end=$(date +%s.%N)
    printf '%-10s %7d rows  %6.2f s\n' "$label" "$n" "$(echo "$end - $start" | bc)"
    # Re-import of the same file (all unchanged).
    start=$(date +%s.%N)
    STATE_DIRECTORY=$work $bin --database "$url" member import --csv "$work/members.csv" >/dev/null
    end=$(date +%s.%N)
    printf '%-10s %7d rows  %6.2f s  (re-import, unchanged)\n' "$label" "$n" "$(echo "$end - $start" | bc)"
}

run sqlite "sqlite:$work/bench.db"
pg=${FRONTDESK_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/test}
if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    schema=fd_bench_$$
    psql -q "$pg" -c "CREATE SCHEMA $schema"
    run postgres "$pg?options=-c%20search_path%3D$schema"
    psql -q "$pg" -c "SET client_min_messages = warning; DROP SCHEMA $schema CASCADE"
fi
