#!/usr/bin/env bash
# Benchmark of ferry's OData entity API (issue 2): single-row POST and GET-by-key throughput
# with concurrent clients (against /healthz as reference), and paging through ROWS customers
# (against sqlite3/psql reading the same table), on SQLite and/or PostgreSQL.
#
# Usage: bench/odata.sh [sqlite|postgres|both] [ROWS]          (default: both 1000000)
#
# Environment:
#   BENCH_PROFILE=release|debug       cargo profile to build and run        (release)
#   BENCH_SECONDS=10                  seconds per throughput step
#   BENCH_CONCURRENCY=16              concurrent clients
#   BENCH_PAGE_SIZE=5000              rows per page
#   BENCH_PAGING_LIMIT=300            seconds after which a paging step stops (reported partial)
#   BENCH_SEED_BATCH=2000             rows per Store::insert call when seeding
#   BENCH_ANALYZE=1                   run ANALYZE on the customer table after seeding
#   BENCH_NO_BUILD=1                  use the binaries already built for BENCH_PROFILE
#   BENCH_OUT=target/bench            where odata-<backend>.json and server logs are written
#   BENCH_KEEP=1                      keep temp dirs and the PostgreSQL database
#   FERRY_BENCH_POSTGRES_URL          admin URL of the PostgreSQL server
#                                     (postgres://postgres@127.0.0.1:5432/test)
set -euo pipefail

which_backends=${1:-both}
rows=${2:-1000000}
case "$which_backends" in
  sqlite) backends=(sqlite) ;;
  postgres) backends=(postgres) ;;
  both) backends=(sqlite postgres) ;;
  *) echo "usage: $0 [sqlite|postgres|both] [ROWS]" >&2; exit 2 ;;
esac
[[ "$rows" =~ ^[0-9]+$ ]] || { echo "ROWS must be a number, got '$rows'" >&2; exit 2; }

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
profile=${BENCH_PROFILE:-release}
seconds=${BENCH_SECONDS:-10}
concurrency=${BENCH_CONCURRENCY:-16}
page_size=${BENCH_PAGE_SIZE:-5000}
paging_limit=${BENCH_PAGING_LIMIT:-300}
seed_batch=${BENCH_SEED_BATCH:-2000}
analyze_flag=()
if [[ "${BENCH_ANALYZE:-}" == 1 ]]; then analyze_flag=(--analyze); fi
out=${BENCH_OUT:-$root/target/bench}
pg_admin=${FERRY_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
mkdir -p "$out"

# --- what ran where ----------------------------------------------------------------------------
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n "$(git status --porcelain 2>/dev/null | head -1)" ]]; then commit="$commit (dirty)"; fi
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -1)
mem=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo 2>/dev/null || echo unknown)
echo "== ferry OData benchmark =="
echo "date      $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "commit    $commit"
echo "machine   $(nproc) CPUs (${cpu:-unknown}), $mem memory, $(uname -sr)"
echo "run       backends ${backends[*]}  rows $rows  clients $concurrency  ${seconds}s per step  page $page_size  seed batch $seed_batch  analyze ${BENCH_ANALYZE:-0}  profile $profile"
echo "note      client and server share this machine"

# --- build -------------------------------------------------------------------------------------
case "$profile" in
  release) build_flags=(--release); bin_dir=${CARGO_TARGET_DIR:-$root/target}/release ;;
  debug) build_flags=(); bin_dir=${CARGO_TARGET_DIR:-$root/target}/debug ;;
  *) echo "BENCH_PROFILE must be release or debug, got '$profile'" >&2; exit 2 ;;
esac
if [[ "${BENCH_NO_BUILD:-}" != 1 ]]; then
  cargo build --quiet ${build_flags[@]+"${build_flags[@]}"} -p ferry -p ferry-odata-bench
fi
ferry=$bin_dir/ferry
bench=$bin_dir/ferry-odata-bench
for b in "$ferry" "$bench"; do [[ -x "$b" ]] || { echo "missing $b (build it or unset BENCH_NO_BUILD)" >&2; exit 2; }; done

# --- clean-up of everything this script started or created ---------------------------------------
server_pid=""
tmp_dirs=()
pg_dbs=()
stop_server() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  server_pid=""
}
cleanup() {
  stop_server
  if [[ "${BENCH_KEEP:-}" != 1 ]]; then
    for db in ${pg_dbs[@]+"${pg_dbs[@]}"}; do
      psql "$pg_admin" -X -q -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 ||
        echo "warning: could not drop database $db" >&2
    done
    for d in ${tmp_dirs[@]+"${tmp_dirs[@]}"}; do rm -rf "$d"; done
  else
    echo "kept: ${tmp_dirs[*]:-} ${pg_dbs[*]:-}" >&2
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# URL of database $2 on the server of admin URL $1 (keeps any ?query).
database_url() {
  local admin=$1 db=$2 last query=""
  last=${admin##*/}
  if [[ "$last" == *\?* ]]; then query="?${last#*\?}"; fi
  echo "${admin%/*}/$db$query"
}

# --- one backend ---------------------------------------------------------------------------------
run_backend() {
  local backend=$1 dir url port log
  dir=$(mktemp -d "${TMPDIR:-/tmp}/ferry-bench-$backend.XXXXXX")
  tmp_dirs+=("$dir")
  if [[ "$backend" == sqlite ]]; then
    url="sqlite://$dir/data/ferry.db"
    echo "database  sqlite $(sqlite3 --version | cut -d' ' -f1) at $dir/data/ferry.db"
  else
    local db="ferry_bench_$(date +%s)_$RANDOM"
    psql "$pg_admin" -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $db" >/dev/null
    pg_dbs+=("$db")
    url=$(database_url "$pg_admin" "$db")
    echo "database  $(psql "$url" -X -At -c 'SHOW server_version' | sed 's/^/PostgreSQL /') database $db"
  fi
  cat >"$dir/ferry.toml" <<'EOF'
[odata]
max_page_size = 10000

[[apps]]
client_id = "bench"
secret = "env:BENCH_SECRET"
roles = ["writer"]
default_company = "usmf"
EOF
  export BENCH_SECRET="bench-$RANDOM-$RANDOM-$RANDOM"
  port=$(free_port)
  log="$out/server-$backend.log"
  "$ferry" serve --config "$dir/ferry.toml" --listen "127.0.0.1:$port" --data-dir "$dir/data" \
    --database "$url" --log-level warn >"$log" 2>&1 &
  server_pid=$!
  local up=""
  for _ in $(seq 1 300); do
    if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
    if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then up=1; break; fi
    sleep 0.1
  done
  if [[ -z "$up" ]]; then
    echo "ferry did not come up on port $port; its log ($log):" >&2
    tail -n 30 "$log" >&2
    stop_server
    return 1
  fi
  echo "--- $backend: ferry pid $server_pid on http://127.0.0.1:$port"
  local status=0
  "$bench" --base "http://127.0.0.1:$port" --client-id bench --database "$url" \
    --rows "$rows" --concurrency "$concurrency" --seconds "$seconds" --page-size "$page_size" \
    --paging-limit-secs "$paging_limit" --seed-batch "$seed_batch" ${analyze_flag[@]+"${analyze_flag[@]}"} --json-out "$out/odata-$backend.json" || status=$?
  stop_server
  if [[ -s "$log" ]]; then
    echo "server log ($log, warnings and errors): $(wc -l <"$log") lines; last ones:"
    tail -n 5 "$log" | cut -c1-300
  fi
  return "$status"
}

failed=0
for backend in "${backends[@]}"; do
  run_backend "$backend" || { echo "!!! $backend run failed" >&2; failed=1; }
done
echo "json      $out/odata-*.json"
exit "$failed"
