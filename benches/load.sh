#!/usr/bin/env bash
# Load benchmark of the HTTP API: the daemon with 50 daily measures over 3 years of
# history, `GET /api/v1/scorecard` and `GET /api/v1/measures/{id}/series` under
# concurrent load from wrk (a second process on loopback), while syncs keep running (a
# CSV source re-read every 5 seconds, with a row appended every 2 seconds).
#
#   bash benches/load.sh            # 20 s per endpoint
#   DURATION=60 bash benches/load.sh
#
# Needs wrk (`apt-get install wrk`) and python3. Prints wrk's requests/s and latency
# distribution (p50 … p99) per endpoint. Everything runs on 127.0.0.1 in a temp folder.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-20}"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }

cargo build --release --quiet
BIN="${CARGO_TARGET_DIR:-$PWD/target}/release/scorekeeper"
DIR="$(mktemp -d)"
trap 'kill $DAEMON $APPENDER 2>/dev/null || true; rm -rf "$DIR"' EXIT

# Three years of daily sales rows for 5 shops (5,480 rows).
python3 - "$DIR" <<'PY'
import datetime, random, sys
random.seed(7)
start = datetime.date.today() - datetime.timedelta(days=3 * 365)
with open(f"{sys.argv[1]}/sales.csv", "w") as out:
    out.write("id,day,shop,revenue,orders,tickets,rating\n")
    n = 0
    for d in range(3 * 365):
        day = start + datetime.timedelta(days=d)
        for shop in range(5):
            n += 1
            out.write(f"{n},{day},{shop},{random.uniform(100, 900):.2f},{random.randint(5, 60)},{random.randint(0, 9)},{random.uniform(3, 5):.2f}\n")
PY

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
{
  cat <<EOF
[database]
url = "sqlite://$DIR/load.db"

[server]
listen = "127.0.0.1:$PORT"

[scorecard]
name = "Load"
timezone = "Europe/Berlin"

[sources.sales]
kind = "csv"
schedule = "*/5 * * * * *"
path = "$DIR/sales.csv"
key = ["id"]
columns = { day = "date", shop = "integer", revenue = "number", orders = "integer", tickets = "integer", rating = "number" }
EOF
  perspectives=(financial customer internal learning)
  for i in $(seq -w 1 50); do
    shop=$(( 10#$i % 5 ))
    case $(( 10#$i % 5 )) in
      0) value='value = "revenue"'; aggregate=sum ;;
      1) value='value = "orders"'; aggregate=sum ;;
      2) value=''; aggregate=count ;;
      3) value='value = "rating"'; aggregate=avg ;;
      4) value='value = "tickets"'; aggregate=max ;;
    esac
    cat <<EOF

[measures.m$i]
perspective = "${perspectives[$(( 10#$i % 4 ))]}"
period = "day"
from = "sales.rows"
time = "day"
where = "shop == $shop"
$value
aggregate = "$aggregate"
target = { value = 10, direction = "up", warn = 5 }
EOF
  done
} > "$DIR/load.toml"

echo "seeding: $(wc -l < "$DIR/sales.csv") rows, 50 daily measures"
"$BIN" --config "$DIR/load.toml" sync >/dev/null 2>&1
RUST_LOG=warn "$BIN" --config "$DIR/load.toml" run 2>"$DIR/daemon.log" &
DAEMON=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
# Keep syncs doing work during the load: a new row every 2 s.
( n=100000; while sleep 2; do n=$((n + 1)); echo "$n,$(date +%F),0,500.00,10,1,4.50" >> "$DIR/sales.csv"; done ) &
APPENDER=$!

FROM="$(date -d '3 years ago' +%F)"
TO="$(date +%F)"
for path in "/api/v1/scorecard" "/api/v1/measures/m07/series?from=$FROM&to=$TO"; do
  echo
  echo "== GET $path (wrk: 2 threads, 16 connections, ${DURATION}s)"
  wrk -t2 -c16 -d"${DURATION}s" --latency "http://127.0.0.1:$PORT$path" | grep -E "Requests/sec|Latency|50%|75%|90%|99%|requests in|Non-2xx"
done
echo
echo "syncs during the run: $(grep -c 'Stream sync failed' "$DIR/daemon.log" || true) failed (see $DIR/daemon.log while it exists)"
