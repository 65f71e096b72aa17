#!/usr/bin/env bash
# Every figure of README's performance table, in one command:
#
#   bash benches/run.sh
#
# 1. `cargo bench --bench sync` at N = 100,000 and 1,000,000 Stripe charges: SQLite and
#    (when SCOREKEEPER_BENCH_POSTGRES_URL is set, or a server answers on 127.0.0.1:5432)
#    PostgreSQL, each beside the floor client; a re-sync without change; one changed
#    period recomputed; the daemon's start to ready, idle RSS and SIGTERM exit.
# 2. `cargo bench --bench ratelimit`: a long sync against Shopify's leaky bucket.
# 3. `benches/load.sh` (if wrk is installed): the HTTP API under load while syncs run.
#
# Each prints its own table and PASS/MISS per budget; copy the figures into README.md
# with the machine they ran on. Needs GNU /usr/bin/time and about 3 GB free under $TMPDIR.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${SCOREKEEPER_BENCH_POSTGRES_URL:-}" ] && command -v pg_isready >/dev/null \
    && pg_isready -h 127.0.0.1 -p 5432 -q; then
    export SCOREKEEPER_BENCH_POSTGRES_URL="postgres://postgres@127.0.0.1:5432/postgres"
fi
echo "== machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== PostgreSQL: ${SCOREKEEPER_BENCH_POSTGRES_URL:-not used (set SCOREKEEPER_BENCH_POSTGRES_URL)}"

cargo bench --bench sync -- 100000 1000000
cargo bench --bench ratelimit
if command -v wrk >/dev/null; then
    bash benches/load.sh
else
    echo "== skipped benches/load.sh: wrk is not installed (apt-get install wrk)"
fi
