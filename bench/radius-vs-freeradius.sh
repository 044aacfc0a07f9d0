#!/usr/bin/env bash
# Frontdesk vs FreeRADIUS 3.2 on this machine, same run: the same 100,000 users (PAP, VLAN reply
# attributes), a client for 127.0.0.1 that must send Message-Authenticator, the same load
# generator (bench/src/main.rs) for the same duration. Prints both results and the ratio.
# Usage: bench/radius-vs-freeradius.sh [USERS] [SECONDS]      (run as root for the apt install)
set -euo pipefail
cd "$(dirname "$0")/.."
users=${1:-100000}
secs=${2:-10}
fr_port=18121
fd_port=18122

if ! command -v freeradius >/dev/null; then
    echo "== installing FreeRADIUS (Debian package freeradius)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q freeradius >/dev/null
fi
cargo build --release --quiet -p frontdesk -p frontdesk-bench
fd=target/release/frontdesk
load=target/release/frontdesk-bench

work=$(mktemp -d /tmp/radius-bench.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

echo "== $users users"
python3 - "$users" "$work/users.csv" "$work/authorize" <<'PY'
import sys
n, csv_path, fr_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
with open(csv_path, "w") as c, open(fr_path, "w") as f:
    c.write("name,email,plan,wifi_username,wifi_password\n")
    for i in range(n):
        user, pw = f"user{i}@bench.example", f"pw-{i:07d}-secret"
        c.write(f"User {i},{user},full-time,{user},{pw}\n")
        # Same reply as Frontdesk's full-time plan: VLAN 10 and a Session-Timeout.
        f.write(f'{user} Cleartext-Password := "{pw}"\n'
                '\tTunnel-Type = VLAN, Tunnel-Medium-Type = IEEE-802, Tunnel-Private-Group-Id = "10",\n'
                '\tSession-Timeout = 43200, Termination-Action = RADIUS-Request\n')
PY

echo "== FreeRADIUS $(freeradius -v | head -1 | grep -o 'Version [0-9.]*')"
fr=$work/freeradius
cp -a /etc/freeradius/3.0 "$fr"
rm -f "$fr"/sites-enabled/* "$fr"/mods-enabled/*
for m in always pap files; do ln -s ../mods-available/$m "$fr/mods-enabled/$m"; done
cp "$work/authorize" "$fr/mods-config/files/authorize"
cat > "$fr/sites-enabled/bench" <<CONF
server bench {
    listen {
        type = auth
        ipaddr = 127.0.0.1
        port = $fr_port
    }
    authorize {
        files
        pap
    }
    authenticate {
        Auth-Type PAP {
            pap
        }
    }
    post-auth {
    }
}
CONF
cat > "$fr/clients.conf" <<CONF
client localhost {
    ipaddr = 127.0.0.1
    secret = testing123
    require_message_authenticator = yes
}
CONF
# A small fixed thread pool, no auth logging, no request debugging.
python3 - "$fr/radiusd.conf" <<'PY'
import re, sys
p = sys.argv[1]; s = open(p).read()
s = re.sub(r"start_servers = \d+", "start_servers = 4", s)
s = re.sub(r"max_servers = \d+", "max_servers = 4", s)
s = re.sub(r"min_spare_servers = \d+", "min_spare_servers = 4", s)
s = re.sub(r"max_spare_servers = \d+", "max_spare_servers = 4", s)
s = re.sub(r"\n\s*auth = yes", "\n\tauth = no", s)
open(p, "w").write(s)
PY
chmod -R a+rX "$fr"
freeradius -C -d "$fr" >/dev/null || { freeradius -XC -d "$fr" | tail -20; exit 1; }
# Cores: the servers on CPU 1, the load generator on CPU 0, so neither steals from the other.
taskset -c 1 freeradius -f -d "$fr" -l "$work/freeradius.log" &
pids+=($!)
fr_pid=$!

echo "== Frontdesk"
db="sqlite:$work/frontdesk.db"
# FreeRADIUS has no per-client rate limit by default; lift Frontdesk's (20k/s) for a fair run.
printf '[radius]\nnas_rate_limit = 0\n' > "$work/frontdesk.toml"
$fd --database "$db" init --site Bench --timezone UTC >/dev/null
$fd --database "$db" member import --csv "$work/users.csv" >/dev/null
$fd --database "$db" nas add --name localhost --address 127.0.0.1 --secret testing123 >/dev/null
RUST_LOG=warn taskset -c 1 $fd --config "$work/frontdesk.toml" --database "$db" serve --radius-auth 127.0.0.1:$fd_port --radius-acct 127.0.0.1:0 \
    --http 127.0.0.1:0 --portal 127.0.0.1:0 2>"$work/frontdesk.log" &
pids+=($!)
fd_pid=$!

# Wait until both answer.
for _ in $(seq 1 60); do
    a=$(echo "Message-Authenticator=0x00" | radclient -r 1 -t 1 127.0.0.1:$fr_port status testing123 2>/dev/null | grep -c Received || true)
    b=$(echo "Message-Authenticator=0x00" | radclient -r 1 -t 1 127.0.0.1:$fd_port status testing123 2>/dev/null | grep -c Received || true)
    # FreeRADIUS without a status listener: probe with a real login instead.
    a=$(printf 'User-Name=user0@bench.example,User-Password=pw-0000000-secret,Message-Authenticator=0x00' | radclient -r 1 -t 1 127.0.0.1:$fr_port auth testing123 2>/dev/null | grep -c Access-Accept || true)
    [ "$a" -ge 1 ] && [ "$b" -ge 1 ] && break
    sleep 1
done

run() { # label port seconds extra-args...
    local label=$1 port=$2 duration=$3; shift 3
    taskset -c 0 $load radius --target 127.0.0.1:$port --secret testing123 --users "$work/users.csv" \
        --duration "${duration}s" --label "$label" "$@"
}
rss() { echo "$(( $(ps -o rss= -p "$1") / 1024 )) MB"; }
echo "== RSS idle after start: FreeRADIUS $(rss $fr_pid), Frontdesk $(rss $fd_pid)"

echo "== warm-up"
run warmup-fr $fr_port 2 --concurrency 32 >/dev/null
run warmup-fd $fd_port 2 --concurrency 32 >/dev/null

echo "== maximum throughput (64 clients, one request outstanding each)"
fr_max=$(run FreeRADIUS $fr_port "$secs" --concurrency 64 --json)
fd_max=$(run Frontdesk $fd_port "$secs" --concurrency 64 --json)
# Frontdesk stores every decision in the auth log; let the backlog of the maximum-throughput
# run drain so the fixed-rate run measures steady state, not the tail of the storm.
sleep 20
echo "== fixed 10,000 requests/s"
# One busy-polling generator thread: no wake-up delay on the generator's side in the latency.
fr_fixed=$(run FreeRADIUS $fr_port "$secs" --concurrency 64 --rate 10000 --threads 1 --spin --json)
fd_fixed=$(run Frontdesk $fd_port "$secs" --concurrency 64 --rate 10000 --threads 1 --spin --json)

python3 - "$fr_max" "$fd_max" "$fr_fixed" "$fd_fixed" "$(rss $fr_pid)" "$(rss $fd_pid)" <<'PY'
import json, sys
fr, fd, frf, fdf = (json.loads(a) for a in sys.argv[1:5])
fr_rss, fd_rss = sys.argv[5], sys.argv[6]
def line(r):
    return (f"{r['answers_per_second']:>9.0f}/s  accepts {r['accepts']:>8}  invalid {r['invalid']}  timeouts {r['timeouts']}  "
            f"p50 {r['p50_ms']:.3f} ms  p99 {r['p99_ms']:.3f} ms  p99.9 {r['p999_ms']:.3f} ms")
print(f"max throughput  FreeRADIUS {line(fr)}")
print(f"max throughput  Frontdesk  {line(fd)}")
print(f"fixed 10k/s     FreeRADIUS {line(frf)}")
print(f"fixed 10k/s     Frontdesk  {line(fdf)}")
print(f"RSS right after the runs: FreeRADIUS {fr_rss}, Frontdesk {fd_rss}")
print(f"ratio (Frontdesk / FreeRADIUS) requests/s: {fd['answers_per_second'] / fr['answers_per_second']:.2f}x; "
      f"p99 at 10k/s: {fdf['p99_ms'] / frf['p99_ms']:.2f}x")
PY
sleep 12
echo "== RSS 12 s after the load stopped: FreeRADIUS $(rss $fr_pid), Frontdesk $(rss $fd_pid)"
