#!/usr/bin/env bash
# Benchmark of ferry's replication (data export, issue 4): the initial copy of ROWS customers
# into PostgreSQL and/or MariaDB beside the database's own bulk load of the same rows from a CSV
# (psql \copy / LOAD DATA LOCAL INFILE), and the latency of changes made through the OData API
# at a paced rate until they are visible in the target.
#
# Usage: bench/replication.sh [postgres|mysql|both] [ROWS]          (default: both 1000000)
#
# Environment:
#   BENCH_PROFILE=release|debug       cargo profile to build and run         (release)
#   BENCH_NO_BUILD=1                  use the binaries already built for BENCH_PROFILE
#   BENCH_SOURCE=sqlite|postgres      ferry's own database                    (sqlite)
#   BENCH_RATE=1000                   changes per second in the delta step (0 skips it)
#   BENCH_SECONDS=10                  seconds of paced changes
#   BENCH_TASKS=16                    concurrent writer tasks
#   BENCH_POLL_MS=10                  milliseconds between two polls of the target
#   BENCH_SEED_BATCH=2000             rows per Store::insert call when seeding
#   BENCH_LOG_LEVEL                   the server's log filter              (warn,ferry_replicate=info)
#   BENCH_OUT=target/bench            where replication-<target>.json, the CSVs and logs go
#   BENCH_KEEP=1                      keep the temp dir and the databases
#   FERRY_BENCH_POSTGRES_URL          admin URL of the PostgreSQL server
#                                     (postgres://postgres@127.0.0.1:5432/test)
#   FERRY_BENCH_MYSQL_URL             MariaDB server, no database (mysql://root@127.0.0.1:3306)
set -euo pipefail

which_targets=${1:-both}
rows=${2:-1000000}
case "$which_targets" in
  postgres) targets=(postgres) ;;
  mysql) targets=(mysql) ;;
  both) targets=(postgres mysql) ;;
  *) echo "usage: $0 [postgres|mysql|both] [ROWS]" >&2; exit 2 ;;
esac
[[ "$rows" =~ ^[0-9]+$ && "$rows" -gt 0 ]] || { echo "ROWS must be a positive number, got '$rows'" >&2; exit 2; }

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
profile=${BENCH_PROFILE:-release}
source_kind=${BENCH_SOURCE:-sqlite}
rate=${BENCH_RATE:-1000}
seconds=${BENCH_SECONDS:-10}
tasks=${BENCH_TASKS:-16}
poll_ms=${BENCH_POLL_MS:-10}
seed_batch=${BENCH_SEED_BATCH:-2000}
out=${BENCH_OUT:-$root/target/bench}
pg_admin=${FERRY_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
my_server=${FERRY_BENCH_MYSQL_URL:-mysql://root@127.0.0.1:3306}
my_server=${my_server%/}
mkdir -p "$out"

# The mysql client's connection options, from FERRY_BENCH_MYSQL_URL (mysql://user[:pw]@host[:port]).
my_auth=${my_server#*://}
my_hostport=${my_auth##*@}
my_userpw=root
if [[ "$my_auth" == *@* ]]; then my_userpw=${my_auth%@*}; fi
my_user=${my_userpw%%:*}
if [[ "$my_userpw" == *:* ]]; then export MYSQL_PWD=${my_userpw#*:}; fi
my_host=${my_hostport%%:*}
my_port=3306
if [[ "$my_hostport" == *:* ]]; then my_port=${my_hostport##*:}; fi
my() { mysql -h"$my_host" -P"$my_port" -u"$my_user" "$@"; }

# --- what ran where ----------------------------------------------------------------------------
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n "$(git status --porcelain 2>/dev/null | head -1)" ]]; then commit="$commit (dirty)"; fi
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -1)
mem=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo 2>/dev/null || echo unknown)
echo "== ferry replication benchmark =="
echo "date      $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "commit    $commit"
echo "machine   $(nproc) CPUs (${cpu:-unknown}), $mem memory, $(uname -sr)"
echo "run       targets ${targets[*]}  rows $rows  source $source_kind  delta ${rate}/s x ${seconds}s over $tasks tasks  poll ${poll_ms}ms  profile $profile"
echo "note      ferry, the tool and PostgreSQL share this machine; the load average shows other work on it"
echo "load      $(cut -d' ' -f1-3 /proc/loadavg)"

# --- build -------------------------------------------------------------------------------------
case "$profile" in
  release) build_flags=(--release); bin_dir=${CARGO_TARGET_DIR:-$root/target}/release ;;
  debug) build_flags=(); bin_dir=${CARGO_TARGET_DIR:-$root/target}/debug ;;
  *) echo "BENCH_PROFILE must be release or debug, got '$profile'" >&2; exit 2 ;;
esac
if [[ "${BENCH_NO_BUILD:-}" != 1 ]]; then
  cargo build --quiet ${build_flags[@]+"${build_flags[@]}"} -p ferry -p ferry-replication-bench
fi
ferry=$bin_dir/ferry
bench=$bin_dir/ferry-replication-bench
for b in "$ferry" "$bench"; do [[ -x "$b" ]] || { echo "missing $b (build it or unset BENCH_NO_BUILD)" >&2; exit 2; }; done
if [[ "${BENCH_NO_BUILD:-}" == 1 ]]; then
  echo "binaries  not rebuilt (BENCH_NO_BUILD=1): ferry built $(date -u -r "$ferry" +%Y-%m-%dT%H:%M:%SZ), may not match the commit"
fi

# --- clean-up of everything this script started or created ---------------------------------------
server_pid=""
tmp_dir=""
pg_dbs=()
my_dbs=()
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
        echo "warning: could not drop PostgreSQL database $db" >&2
    done
    for db in ${my_dbs[@]+"${my_dbs[@]}"}; do
      my -e "DROP DATABASE IF EXISTS \`$db\`" >/dev/null 2>&1 || echo "warning: could not drop MariaDB database $db" >&2
    done
    if [[ -n "$tmp_dir" ]]; then rm -rf "$tmp_dir"; fi
    rm -f "$out"/replication-*.csv
  else
    echo "kept: $tmp_dir ${pg_dbs[*]:-} ${my_dbs[*]:-} $out/replication-*.csv" >&2
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

new_name() { echo "ferry_bench_$(date +%s)_$RANDOM"; }

# --- the source: ferry's database, seeded while no server runs ----------------------------------
tmp_dir=$(mktemp -d "${TMPDIR:-/tmp}/ferry-replication-bench.XXXXXX")
mkdir -p "$tmp_dir/data"
case "$source_kind" in
  sqlite) source_url="sqlite://$tmp_dir/data/ferry.db"
    echo "source    SQLite $(sqlite3 --version | cut -d' ' -f1) at $tmp_dir/data/ferry.db" ;;
  postgres) db=$(new_name)_src
    psql "$pg_admin" -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $db" >/dev/null
    pg_dbs+=("$db")
    source_url=$(database_url "$pg_admin" "$db")
    echo "source    PostgreSQL database $db" ;;
  *) echo "BENCH_SOURCE must be sqlite or postgres, got '$source_kind'" >&2; exit 2 ;;
esac
"$bench" seed --database "$source_url" --rows "$rows" --batch "$seed_batch"

export BENCH_SECRET="bench-$RANDOM-$RANDOM-$RANDOM"
export BENCH_WRITER_SECRET="writer-$RANDOM-$RANDOM-$RANDOM"
cat >"$tmp_dir/ferry.toml" <<'EOF'
[[apps]]
client_id = "bench"
secret = "env:BENCH_SECRET"
roles = ["admin"]
default_company = "usmf"

[[apps]]
client_id = "writer"
secret = "env:BENCH_WRITER_SECRET"
roles = ["writer"]
default_company = "usmf"
EOF

# --- one target ----------------------------------------------------------------------------------
run_target() {
  local target=$1 db url port log status=0
  db=$(new_name)
  if [[ "$target" == postgres ]]; then
    psql "$pg_admin" -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $db" >/dev/null
    pg_dbs+=("$db")
    url=$(database_url "$pg_admin" "$db")
    echo "--- postgres: $(psql "$url" -X -At -c 'SHOW server_version' | sed 's/^/PostgreSQL /'), target database $db"
  else
    my -e "SET GLOBAL local_infile = 1; CREATE DATABASE \`$db\`"
    my_dbs+=("$db" "${db}_ref")
    url="$my_server/$db"
    echo "--- mysql: MariaDB $(my -N -B -e 'SELECT VERSION()'), target database $db"
  fi
  port=$(free_port)
  log="$out/replication-server-$target.log"
  "$ferry" serve --config "$tmp_dir/ferry.toml" --listen "127.0.0.1:$port" --data-dir "$tmp_dir/data" \
    --database "$source_url" --log-level "${BENCH_LOG_LEVEL:-warn,ferry_replicate=info}" >"$log" 2>&1 &
  server_pid=$!
  local up=""
  for _ in $(seq 1 600); do
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
  echo "ferry     pid $server_pid on http://127.0.0.1:$port"
  local ref_schema=ferry_ref
  if [[ "$target" == mysql ]]; then ref_schema="${db}_ref"; fi
  "$bench" run --base "http://127.0.0.1:$port" --target "$target" --target-url "$url" \
    --reference-schema "$ref_schema" --csv "$out/replication-$target.csv" \
    --rate "$rate" --seconds "$seconds" --tasks "$tasks" --poll-ms "$poll_ms" --server-pid "$server_pid" \
    --json-out "$out/replication-$target.json" || status=$?
  stop_server
  if [[ -s "$log" ]]; then
    echo "server log ($log): $(wc -l <"$log") lines; warnings and errors: $(grep -cE ' (WARN|ERROR) ' "$log" || true); last lines:"
    tail -n 5 "$log" | cut -c1-300
  fi
  rm -f "$out/replication-$target.csv"
  return "$status"
}

failed=0
jsons=()
for target in "${targets[@]}"; do
  rm -f "$out/replication-$target.json"
  run_target "$target" || { echo "!!! $target run failed" >&2; failed=1; }
  if [[ -s "$out/replication-$target.json" ]]; then jsons+=("$out/replication-$target.json"); fi
done
echo
echo "== figures ($rows rows, commit $commit, $(nproc) CPUs, $mem) =="
if [[ ${#jsons[@]} -gt 0 ]]; then "$bench" table "${jsons[@]}"; fi
echo "json      ${jsons[*]:-none}"
exit "$failed"
