#!/usr/bin/env bash
# Protective DNS: Frontdesk vs dnsmasq vs unbound on this machine, same run, same upstream,
# same query mix, driven by dnsperf. The upstream is a dnsmasq answering every *.bench.test
# name itself (so the upstream is never the bottleneck). Frontdesk filters with a 1,000,000-
# domain blocklist loaded (none of the queried names is on it: this measures the filter's cost,
# not its savings).
#   cached:   10,000 distinct names asked over and over (after a warm-up pass)
#   uncached: 200,000 distinct names asked once each (every query goes upstream)
# dnsmasq and unbound log no queries here, so Frontdesk's query log is off too unless
# FD_DNS_LOG=all (or blocked) is given: that measures the log's cost.
# Usage: [FD_DNS_LOG=off|all|blocked] bench/dns-vs-dnsmasq.sh [SECONDS]   (root: apt install)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
up=5301; fd=5310; dm=5320; ub=5330

for pkg in dnsperf:dnsperf dnsmasq:dnsmasq-base unbound:unbound; do
    command -v "${pkg%%:*}" >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${pkg#*:}" >/dev/null
done
cargo build --release --quiet -p frontdesk -p frontdesk-bench
bin=$PWD/target/release/frontdesk

work=$(mktemp -d /tmp/dns-bench.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

echo "== query files and a 1,000,000-domain blocklist"
python3 - "$work" <<'PY'
import random, string, sys
w = sys.argv[1]
with open(f"{w}/cached.txt", "w") as f:
    for i in range(10_000):
        f.write(f"www{i}.bench.test A\n")
with open(f"{w}/uncached.txt", "w") as f:
    for i in range(200_000):
        f.write(f"u{i}-{random.randrange(10**9)}.bench.test A\n")
r = random.Random(7)
with open(f"{w}/block.hosts", "w") as f:
    for i in range(1_000_000):
        f.write("0.0.0.0 " + "".join(r.choices(string.ascii_lowercase, k=10)) + f"{i}.example\n")
PY

echo "== upstream (dnsmasq answering *.bench.test itself) on 127.0.0.1:$up"
dnsmasq -k -C /dev/null -p "$up" -a 127.0.0.1 --bind-interfaces --no-resolv --no-hosts \
    --address=/bench.test/192.0.2.1 --cache-size=0 --local-ttl=300 --dns-forward-max=10000 -u root &
pids+=($!)

echo "== Frontdesk on 127.0.0.1:$fd"
export FRONTDESK_DATABASE_URL="sqlite:$work/fd.db" STATE_DIRECTORY="$work"
"$bin" init --site Bench --timezone UTC >/dev/null
"$bin" dns blocklist add --name big --source "$work/block.hosts" >/dev/null
# state_dir: backups, spool and outbox go to the scratch directory, not the checkout.
printf 'state_dir = "%s"\n[dns]\nlog = "%s"\n' "$work" "${FD_DNS_LOG:-off}" > "$work/fd.toml"
RUST_LOG=warn "$bin" --config "$work/fd.toml" serve --radius-auth 127.0.0.1:0 --radius-acct 127.0.0.1:0 --http 127.0.0.1:0 \
    --portal 127.0.0.1:0 --dns "127.0.0.1:$fd" --dns-upstream "127.0.0.1:$up" 2>"$work/fd.log" &
pids+=($!)

echo "== dnsmasq (resolver under test) on 127.0.0.1:$dm"
dnsmasq -k -C /dev/null -p "$dm" -a 127.0.0.1 --bind-interfaces --no-resolv --no-hosts \
    --server="127.0.0.1#$up" --cache-size=100000 --dns-forward-max=10000 -u root &
pids+=($!)

echo "== unbound on 127.0.0.1:$ub"
cat > "$work/unbound.conf" <<CONF
server:
    interface: 127.0.0.1
    port: $ub
    do-not-query-localhost: no
    username: ""
    chroot: ""
    use-syslog: no
    num-threads: 2
    msg-cache-size: 64m
    rrset-cache-size: 128m
    module-config: "iterator"
    access-control: 127.0.0.0/8 allow
    domain-insecure: "bench.test"
    # unbound answers .test itself by default (RFC 6761 local zone): forward it like any name.
    local-zone: "test." nodefault
forward-zone:
    name: "."
    forward-addr: 127.0.0.1@$up
CONF
unbound -d -c "$work/unbound.conf" &
pids+=($!)

for _ in $(seq 1 60); do
    dig +short +time=1 +tries=1 -p "$fd" @127.0.0.1 probe.bench.test A 2>/dev/null | grep -q 192.0.2.1 && break
    sleep 1
done

run() { # name port file mode
    local out
    out=$(dnsperf -s 127.0.0.1 -p "$2" -d "$3" -l "$secs" -c 20 -T 2 -q 1000 $4 2>&1)
    local qps lat lat_sd lost
    qps=$(echo "$out" | awk '/Queries per second/ {print $4}')
    lat=$(echo "$out" | awk '/Average Latency/ {print $4}')
    lost=$(echo "$out" | awk '/Queries lost/ {print $3}')
    codes=$(echo "$out" | awk -F: '/Response codes/ {print $2}')
    printf "%-10s %-9s %10s q/s  avg latency %8s s  lost %-6s codes %s\n" "$1" "$5" "$qps" "$lat" "$lost" "$codes"
}

for mode in cached uncached; do
    echo "== $mode"
    for target in frontdesk:$fd dnsmasq:$dm unbound:$ub; do
        name=${target%%:*}; port=${target#*:}
        if [ "$mode" = cached ]; then
            dnsperf -s 127.0.0.1 -p "$port" -d "$work/cached.txt" -n 1 -c 4 >/dev/null 2>&1 || true
            run "$name" "$port" "$work/cached.txt" "" "$mode"
        else
            run "$name" "$port" "$work/uncached.txt" "-n 1" "$mode"
        fi
    done
done
grep -i "blocklist" "$work/fd.log" || true
