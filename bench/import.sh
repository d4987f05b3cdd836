#!/usr/bin/env bash
# Benchmark of ferry's recurring imports (the connector API): one big Customers V3 CSV enqueued
# through a file job until it is Processed, beside the database's own CSV loader of the same file
# (sqlite3 .import / psql \copy into a plain table), the server's peak RSS, and many one-row
# messages over many entities (messages/s from enqueue to Processed), on SQLite and/or PostgreSQL.
#
# Usage: bench/import.sh [sqlite|postgres|both] [ROWS]          (default: both 1000000)
#        ROWS 0 skips the big import (only the messages step runs).
#
# Environment:
#   BENCH_PROFILE=release|debug       cargo profile to build and run         (release)
#   BENCH_NO_BUILD=1                  use the ferry binary already built for BENCH_PROFILE
#   BENCH_FILE_MB=1024                generate a customers file of about this many MB instead of
#                                     ROWS rows (the peak-RSS check: aim < 256 MiB)
#   BENCH_MESSAGES=10000              one-row messages in the messages step (0 skips it)
#   BENCH_ENTITIES=50                 custom entities the messages go round-robin over (1-999)
#   BENCH_CLIENTS=8                   concurrent curl processes enqueueing the messages
#   BENCH_WORKERS                     [import] workers of the server               (its default, 4)
#   BENCH_BATCH_ROWS                  [import] batch_rows of the server            (its default, 5000)
#   BENCH_TIMEOUT=3600                seconds one wait for Processed may take before the run fails
#   BENCH_POLL_MS=200                 milliseconds between two polls of a message
#   BENCH_LOG_LEVEL=warn              the server's log filter
#   BENCH_OUT=target/bench            where import-<backend>.json and import-server-<backend>.log go
#   BENCH_KEEP=1                      keep the temp dir (CSV files, SQLite data) and the PG database
#   FERRY_BENCH_POSTGRES_URL          admin URL of the PostgreSQL server
#                                     (postgres://postgres@127.0.0.1:5432/test); ferry's own
#                                     database there is ferry_bench_import, dropped and created anew
#   BENCH_PG_DATABASE                 another name for that database (two runs at once need two)
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
file_mb=${BENCH_FILE_MB:-}
messages=${BENCH_MESSAGES:-10000}
entities=${BENCH_ENTITIES:-50}
clients=${BENCH_CLIENTS:-8}
timeout=${BENCH_TIMEOUT:-3600}
poll_ms=${BENCH_POLL_MS:-200}
log_level=${BENCH_LOG_LEVEL:-warn}
out=${BENCH_OUT:-$root/target/bench}
pg_admin=${FERRY_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
pg_db=${BENCH_PG_DATABASE:-ferry_bench_import}
[[ "$pg_db" =~ ^[a-z_][a-z0-9_]*$ ]] || { echo "BENCH_PG_DATABASE must be a plain lower-case name, got '$pg_db'" >&2; exit 2; }
for v in messages entities clients timeout poll_ms; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || { echo "$v must be a number, got '${!v}'" >&2; exit 2; }
done
[[ -z "$file_mb" || "$file_mb" =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_FILE_MB must be a positive number, got '$file_mb'" >&2; exit 2; }
[[ "$entities" -ge 1 && "$entities" -le 999 ]] || { echo "BENCH_ENTITIES must be 1-999, got $entities" >&2; exit 2; }
[[ "$clients" -ge 1 ]] || { echo "BENCH_CLIENTS must be at least 1" >&2; exit 2; }
for tool in curl python3 sqlite3 psql xargs setsid; do
  command -v "$tool" >/dev/null || { echo "$tool is needed on the PATH" >&2; exit 2; }
done
mkdir -p "$out"

# --- what ran where ----------------------------------------------------------------------------
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n "$(git status --porcelain 2>/dev/null | head -1)" ]]; then commit="$commit (dirty)"; fi
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -1)
mem=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo 2>/dev/null || echo unknown)
size_desc="rows $rows"
if [[ -n "$file_mb" ]]; then size_desc="file ~${file_mb} MB"; fi
echo "== ferry import benchmark =="
echo "date      $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "commit    $commit"
echo "machine   $(nproc) CPUs (${cpu:-unknown}), $mem memory, $(uname -sr)"
echo "run       backends ${backends[*]}  $size_desc  messages $messages over $entities entities from $clients clients  workers ${BENCH_WORKERS:-default}  batch_rows ${BENCH_BATCH_ROWS:-default}  profile $profile"
echo "note      ferry, curl, the loaders and PostgreSQL share this machine; the load average shows other work on it"
echo "load      $(cut -d' ' -f1-3 /proc/loadavg)"

# --- build -------------------------------------------------------------------------------------
case "$profile" in
  release) build_flags=(--release); bin_dir=${CARGO_TARGET_DIR:-$root/target}/release ;;
  debug) build_flags=(); bin_dir=${CARGO_TARGET_DIR:-$root/target}/debug ;;
  *) echo "BENCH_PROFILE must be release or debug, got '$profile'" >&2; exit 2 ;;
esac
if [[ "${BENCH_NO_BUILD:-}" != 1 ]]; then
  cargo build --quiet ${build_flags[@]+"${build_flags[@]}"} -p ferry
fi
ferry=$bin_dir/ferry
[[ -x "$ferry" ]] || { echo "missing $ferry (build it or unset BENCH_NO_BUILD)" >&2; exit 2; }
if [[ "${BENCH_NO_BUILD:-}" == 1 ]]; then
  echo "binaries  not rebuilt (BENCH_NO_BUILD=1): ferry built $(date -u -r "$ferry" +%Y-%m-%dT%H:%M:%SZ), may not match the commit"
fi

# --- clean-up of everything this script started or created ---------------------------------------
server_pid=""
bg_pid=""
tmp_dir=""
pg_created=""
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
  if [[ -n "$bg_pid" ]]; then
    kill -TERM -- "-$bg_pid" 2>/dev/null || kill -TERM "$bg_pid" 2>/dev/null || true
    wait "$bg_pid" 2>/dev/null || true
  fi
  stop_server
  if [[ "${BENCH_KEEP:-}" != 1 ]]; then
    if [[ -n "$pg_created" ]]; then
      psql "$pg_admin" -X -q -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1 ||
        echo "warning: could not drop PostgreSQL database $pg_db" >&2
    fi
    if [[ -n "$tmp_dir" ]]; then rm -rf "$tmp_dir"; fi
  else
    echo "kept: ${tmp_dir:-} ${pg_created:+PostgreSQL database $pg_db}" >&2
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

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
per_sec() { awk -v n="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f", n / s; else print "n/a" }'; }
# kB field $2 (VmHWM, VmRSS) of process $1 in MiB.
proc_mib() { awk -v k="$2:" '$1 == k { printf "%.1f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo n/a; }

tmp_dir=$(mktemp -d "${TMPDIR:-/tmp}/ferry-import-bench.XXXXXX")
helper=$tmp_dir/helper.py

# --- the Python helper: data generation, token, polling, JSON and the table ------------------------
cat >"$helper" <<'PY'
import csv, json, os, random, sys, time, urllib.error, urllib.parse, urllib.request
from datetime import datetime

FINAL = ("Processed", "ProcessedWithErrors", "PreProcessingError")
PENDING = ("Enqueued", "Retrying", "Processing")

CURRENCIES = [("USD", "US Dollar", "$"), ("EUR", "Euro", "€"), ("GBP", "Pound sterling", "£"),
              ("JPY", "Japanese yen", "¥"), ("CHF", "Swiss franc", "CHF"), ("SEK", "Swedish krona", "kr"),
              ("DKK", "Danish krone", "kr."), ("NOK", "Norwegian krone", "kr"), ("PLN", "Polish złoty", "zł"),
              ("CAD", "Canadian dollar", "$")]
GROUPS = [("10", "Wholesale customers"), ("20", "Major customers"), ("30", "Retail customers"),
          ("40", "Intercompany, domestic"), ("50", "Intercompany, foreign"), ("60", "Employees"),
          ("70", "Public sector"), ("80", "Distributors – EMEA"), ("90", "Distributors – APAC"),
          ("100", "One-time customers"), ("110", "Online shop"), ("120", "Key accounts, Nordics")]
FIRST = ["Contoso", "Fabrikam", "Adventure Works", "Northwind", "Tailspin", "Wingtip", "Litware", "Proseware",
         "Müller", "Schröder", "Łukasiewicz", "Østergaard", "Ångström", "Café Zürich", "Société Générale de Vins",
         "Núñez", "Çelik", "Dvořák", "Søren Kierkegaard", "東京貿易", "Москва Логистик", "O'Brien", "São Paulo Têxtil",
         "Ünal", "Jönköping Trä", "Kraków Stal", "Fjällräven", "Hernández", "Smith, Jones", "Baker \"Bakes\""]
SECOND = ["Trading", "Supplies", "Logistics", "Manufacturing", "Holdings", "Consulting", "Foods", "Retail",
          "Partners", "& Söhne", "Handels", "Industries", "Services", "Distribution", "Électronique"]
SUFFIX = [" Inc.", " Ltd", ", Inc.", " GmbH", ", S.A.", " AB", " A/S", " Sp. z o.o.", " K.K.", " LLC",
          ", GmbH & Co. KG", " SARL", " OOO", "", ""]
CITIES = [("Seattle", "98052", "USA", "en-us"), ("New York", "10001", "USA", "en-us"),
          ("Zürich", "8001", "CHE", "de-ch"), ("München", "80331", "DEU", "de"), ("Besançon", "25000", "FRA", "fr"),
          ("Kraków", "30-001", "POL", "pl"), ("Malmö", "211 19", "SWE", "sv"), ("København", "1050", "DNK", "da"),
          ("Reykjavík", "101", "ISL", "is"), ("São Paulo", "01000-000", "BRA", "pt-br"), ("東京", "100-0001", "JPN", "ja"),
          ("Москва", "101000", "RUS", "ru"), ("Montréal", "H2X 1Y4", "CAN", "fr-ca"), ("London", "EC1A 1BB", "GBR", "en-gb")]
STREETS = ["Main Street", "Hauptstraße", "Rue de l'Église", "Bahnhofstrasse", "Storgatan", "ul. Floriańska",
           "Avenida Paulista", "Nørregade", "Broadway, Suite 200", "Elm Street, Building B", "Laugavegur"]
CUSTOMER_COLUMNS = ["CUSTOMERACCOUNT", "ORGANIZATIONNAME", "NAMEALIAS", "CUSTOMERGROUPID", "SALESCURRENCYCODE",
                    "CREDITLIMIT", "LANGUAGEID", "ADDRESSSTREET", "ADDRESSCITY", "ADDRESSZIPCODE",
                    "ADDRESSCOUNTRYREGIONID", "PRIMARYCONTACTEMAIL", "PRIMARYCONTACTPHONE"]


def writer(f):
    return csv.writer(f, lineterminator="\r\n")


def gen_customers(directory, rows, target_mb):
    """currencies.csv, groups.csv and customers.csv (ROWS rows, or about target_mb MB); prints rows bytes."""
    rnd = random.Random(20261122)
    with open(os.path.join(directory, "currencies.csv"), "w", encoding="utf-8", newline="") as f:
        w = writer(f)
        w.writerow(["CURRENCYCODE", "NAME", "SYMBOL", "ROUNDINGPRECISION"])
        for code, name, symbol in CURRENCIES:
            w.writerow([code, name, symbol, "0.01"])
    with open(os.path.join(directory, "groups.csv"), "w", encoding="utf-8", newline="") as f:
        w = writer(f)
        w.writerow(["CUSTOMERGROUPID", "DESCRIPTION", "PAYMENTTERMID"])
        for gid, desc in GROUPS:
            w.writerow([gid, desc, rnd.choice(["Net10", "Net30", "Net60", "COD"])])
    target = target_mb * 1_000_000 if target_mb else None
    path = os.path.join(directory, "customers.csv")
    n = 0
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = writer(f)
        w.writerow(CUSTOMER_COLUMNS)
        while (target is None and n < rows) or (target is not None and f.tell() < target):
            chunk = []
            for _ in range(10000 if target is not None else min(10000, rows - n)):
                n += 1
                name = f"{rnd.choice(FIRST)} {rnd.choice(SECOND)}{rnd.choice(SUFFIX)}"
                alias = "".join(c for c in name.upper() if "A" <= c <= "Z" or "0" <= c <= "9")[:20] or f"C{n}"
                city, zipcode, country, lang = rnd.choice(CITIES)
                chunk.append([f"C{n:09d}", name, alias, rnd.choice(GROUPS)[0], rnd.choice(CURRENCIES)[0],
                              f"{rnd.randrange(0, 50_000_000) / 100:.2f}", lang,
                              f"{rnd.randrange(1, 9999)} {rnd.choice(STREETS)}", city, zipcode, country,
                              f"ap{n}@{rnd.choice(['contoso.com', 'fabrikam.de', 'example.co.jp', 'mail.ru'])}",
                              f"+{rnd.randrange(1, 99)} {rnd.randrange(100, 999)} {rnd.randrange(100000, 9999999)}"])
            w.writerows(chunk)
    print(n, os.path.getsize(path))


def gen_entities(path, count):
    with open(path, "w", encoding="utf-8") as f:
        f.write("# Simple company-specific entities for the messages step of bench/import.sh.\n")
        for i in range(1, count + 1):
            f.write(f"""
[[entities]]
label = "Bench message {i:03d}"
public_name = "BenchMessage{i:03d}"
collection = "BenchMessages{i:03d}"
logical_name = "benchmessage{i:03d}"
company_specific = true
key = ["ItemId"]
fields = [
  {{ name = "ItemId", type = "string(20)" }},
  {{ name = "Name", type = "string(60)" }},
  {{ name = "Quantity", type = "int" }},
  {{ name = "Price", type = "decimal(32,6)" }},
]
""")


def gen_project_entities(count):
    for i in range(1, count + 1):
        print(f'[[projects.entities]]\nentity = "Bench message {i:03d}"\nformat = "CSV"\n')


def gen_enqueues(directory, base, activity, token, count, entities, clients):
    """Curl config files, one per client, with one-row messages round-robin over the entities."""
    files = [open(os.path.join(directory, f"enqueue-{c:03d}.cfg"), "w", encoding="utf-8") for c in range(clients)]
    for i in range(count):
        e = i % entities + 1
        entity = urllib.parse.quote(f"Bench message {e:03d}")
        body = f"ITEMID,NAME,QUANTITY,PRICE\\r\\nI{i:08d},Item {i} of entity {e},{i % 97 + 1},{(i % 1000) / 4:.2f}\\r\\n"
        files[i % clients].write(
            f'url = "{base}/api/connector/enqueue/{activity}?entity={entity}&company=usmf"\n'
            f'header = "Authorization: Bearer {token}"\n'
            'header = "Content-Type: application/octet-stream"\n'
            f'data-binary = "{body}"\n'
            'silent\nshow-error\nmax-time = 120\n'
            'write-out = "\\t%{http_code}\\n"\n'
            "next\n")
    for f in files:
        f.close()


class Api:
    def __init__(self, base):
        self.base = base
        self.token = None

    def fetch_token(self):
        data = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": os.environ["BENCH_CLIENT_ID"],
                                       "client_secret": os.environ["BENCH_SECRET"]}).encode()
        try:
            with urllib.request.urlopen(urllib.request.Request(self.base + "/oauth2/token", data=data), timeout=60) as r:
                self.token = json.load(r)["access_token"]
        except urllib.error.HTTPError as e:
            raise SystemExit(f"POST {self.base}/oauth2/token answered {e.code}: {e.read().decode('utf-8', 'replace')[:300]}")
        except (urllib.error.URLError, OSError) as e:
            raise SystemExit(f"POST {self.base}/oauth2/token failed: {e}")
        return self.token

    def metrics(self):
        """The server's queue gauges from /metrics: {state: messages} (all jobs); {} if unavailable."""
        try:
            if self.token is None:
                self.fetch_token()
            req = urllib.request.Request(self.base + "/metrics", headers={"Authorization": "Bearer " + self.token})
            with urllib.request.urlopen(req, timeout=30) as r:
                text = r.read().decode("utf-8", "replace")
        except (urllib.error.URLError, OSError, SystemExit):
            return {}
        out = {}
        for line in text.splitlines():
            if line.startswith('ferry_import_messages{state="'):
                state = line.split('"')[1]
                out[state] = int(float(line.rsplit(" ", 1)[1]))
        return out

    def get(self, url, tries=5):
        if not url.startswith("http"):
            url = self.base + url
        for attempt in range(tries):
            if self.token is None:
                self.fetch_token()
            req = urllib.request.Request(url, headers={"Authorization": "Bearer " + self.token,
                                                       "Accept": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=120) as r:
                    return json.load(r)
            except urllib.error.HTTPError as e:
                body = e.read().decode("utf-8", "replace")[:500]
                if e.code == 401:
                    self.token = None
                elif e.code < 500 or attempt == tries - 1:
                    raise SystemExit(f"GET {url} answered {e.code}: {body}")
            except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
                if attempt == tries - 1:
                    raise SystemExit(f"GET {url} failed: {e}")
            time.sleep(1)
        raise SystemExit(f"GET {url}: no answer after {tries} tries")


def ts(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() if text else None


def rss_mib(pid):
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def wait_message(base, message_id, timeout, poll_ms, t0, pid=None, trace=None):
    """Polls one message until it is final; prints a JSON summary (exit 3 on timeout). With `pid`
    it samples the server's VmRSS at every poll and writes `seconds,rows_read,rss_mib` to `trace`
    every 5 seconds."""
    api = Api(base)
    start = time.time()
    polls = 0
    rss_max = None
    next_note = start + 60
    next_trace = start
    trace_file = open(trace, "w", encoding="ascii") if trace else None
    if trace_file:
        trace_file.write("seconds,rows_read,rss_mib\n")
    while True:
        m = api.get(f"/api/messages/{message_id}")
        polls += 1
        seen = time.time()
        rss = rss_mib(pid) if pid else None
        if rss is not None:
            rss_max = rss if rss_max is None else max(rss_max, rss)
            if trace_file and (seen >= next_trace or m.get("final")):
                trace_file.write(f"{seen - t0:.1f},{(m.get('counters') or {}).get('read')},{rss:.1f}\n")
                trace_file.flush()
                next_trace = seen + 5
        if m.get("final"):
            break
        if seen > next_note:
            c = m.get("counters") or {}
            print(f"           … {m.get('state')} after {seen - t0:.0f} s, read {c.get('read')}", file=sys.stderr)
            next_note = seen + 60
        if seen - start > timeout:
            print(json.dumps({"state": m.get("state"), "timeout": True, "reason": m.get("reason"),
                              "counters": m.get("counters")}))
            sys.exit(3)
        time.sleep(poll_ms / 1000)
    enq, started, finished = ts(m.get("enqueued_at")), ts(m.get("started_at")), ts(m.get("finished_at"))
    result = {
        "state": m.get("state"), "reason": m.get("reason"), "attempts": m.get("attempts"),
        "counters": m.get("counters"), "warnings": m.get("warnings"),
        "entities": [{k: e.get(k) for k in ("entity", "rows_read", "rows_inserted", "rows_updated", "rows_unchanged",
                                            "staging_errors", "target_errors")} for e in m.get("entities", [])],
        "enqueued_at": m.get("enqueued_at"), "started_at": m.get("started_at"), "finished_at": m.get("finished_at"),
        "seen_final_s": round(seen - t0, 3), "polls": polls,
        "rss_max_sampled_mib": round(rss_max, 1) if rss_max is not None else None,
        "end_to_end_s": round(finished - t0, 3) if finished else None,
        "processing_s": round(finished - started, 3) if finished and started else None,
        "queue_wait_s": round(started - enq, 3) if started and enq else None,
    }
    if result["state"] != "Processed":
        try:
            errs = api.get(f"/api/messages/{message_id}/errors?limit=5")
            result["first_errors"] = errs.get("value", errs)
        except SystemExit as e:
            result["first_errors"] = str(e)
    print(json.dumps(result))


def wait_activity(base, activity, expected, timeout, t0):
    """Polls until no message of the job is pending and `expected` are final; prints a JSON summary."""
    api = Api(base)
    start = time.time()
    next_note = start + 30
    while True:
        pending = any(api.get(f"/api/messages?activity={activity}&state={s}&limit=1")["value"] for s in PENDING)
        if not pending:
            # Confirm by reading every message of the job (a state change between two of the
            # queries above could hide one).
            states, first_enq, first_start, last_finish, items = {}, None, None, None, 0
            url = f"/api/messages?activity={activity}&limit=1000"
            while url:
                page = api.get(url)
                for m in page["value"]:
                    items += 1
                    states[m["state"]] = states.get(m["state"], 0) + 1
                    e, s, f = ts(m.get("enqueued_at")), ts(m.get("started_at")), ts(m.get("finished_at"))
                    first_enq = e if first_enq is None or (e and e < first_enq) else first_enq
                    first_start = s if first_start is None or (s and s < first_start) else first_start
                    last_finish = f if last_finish is None or (f and f > last_finish) else last_finish
                url = page.get("next")
            done = sum(n for st, n in states.items() if st in FINAL)
            if done >= expected and not any(st in PENDING for st in states):
                seen = time.time()
                print(json.dumps({"messages": items, "states": states, "seen_final_s": round(seen - t0, 3),
                                  "end_to_end_s": round(last_finish - t0, 3) if last_finish else None,
                                  "first_enqueued_after_s": round(first_enq - t0, 3) if first_enq else None,
                                  "first_started_after_s": round(first_start - t0, 3) if first_start else None}))
                return
        now = time.time()
        if now - start > timeout:
            print(json.dumps({"timeout": True}))
            sys.exit(3)
        if now > next_note:
            gauges = api.metrics()
            shown = "  ".join(f"{s} {gauges[s]}" for s in PENDING + FINAL if gauges.get(s))
            print(f"           … {now - t0:.0f} s  (/metrics, every job: {shown or 'n/a'})", file=sys.stderr)
            next_note = now + 30
        time.sleep(0.5)


def figures_json(path, pairs):
    """Writes key=value pairs (numbers where they parse) as one JSON object."""
    obj = {}
    for pair in pairs:
        k, _, v = pair.partition("=")
        try:
            obj[k] = int(v)
        except ValueError:
            try:
                obj[k] = float(v)
            except ValueError:
                obj[k] = None if v in ("", "n/a") else v
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


ROWS = [
    ("rows", "customers rows"), ("file_mb", "file MB"), ("enqueue_s", "enqueue (upload) s"),
    ("import_e2e_s", "enqueue → Processed s"), ("import_e2e_rows_s", "enqueue → Processed rows/s"),
    ("import_processing_s", "processing (started → finished) s"),
    ("import_processing_rows_s", "processing rows/s"), ("import_state", "final state"),
    ("reference_s", "reference load s"), ("reference_rows_s", "reference rows/s"),
    ("ratio_e2e", "ratio ferry e2e / reference"), ("ratio_processing", "ratio ferry processing / reference"),
    ("rss_start_mib", "RSS after start MiB"), ("rss_refdata_mib", "RSS after the reference data MiB"), ("peak_rss_import_mib", "peak RSS after import MiB (aim < 256)"),
    ("rss_polled_max_mib", "highest RSS polled during import MiB"),
    ("messages", "one-row messages"), ("messages_enqueue_per_s", "enqueue messages/s"),
    ("messages_e2e_s", "enqueue → all final s"), ("messages_e2e_per_s", "end-to-end messages/s"),
    ("messages_processed", "messages Processed"), ("messages_other", "messages in other states"),
    ("peak_rss_end_mib", "peak RSS at the end MiB"), ("log_problems", "server log WARN/ERROR lines"),
]


def table(paths):
    runs = []
    for p in paths:
        with open(p, encoding="utf-8") as f:
            runs.append(json.load(f))
    print("| | " + " | ".join(r.get("backend", "?") for r in runs) + " |")
    print("| --- |" + " --- |" * len(runs))
    for key, label in ROWS:
        if all(r.get(key) is None for r in runs):
            continue
        cells = []
        for r in runs:
            v = r.get(key)
            cells.append("–" if v is None else (f"{v:,.2f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else str(v)))
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "gen-customers":
        gen_customers(args[0], int(args[1]), int(args[2]) if args[2] else 0)
    elif cmd == "gen-entities":
        gen_entities(args[0], int(args[1]))
    elif cmd == "gen-project-entities":
        gen_project_entities(int(args[0]))
    elif cmd == "gen-enqueues":
        gen_enqueues(args[0], args[1], args[2], args[3], int(args[4]), int(args[5]), int(args[6]))
    elif cmd == "token":
        print(Api(args[0]).fetch_token())
    elif cmd == "wait-message":
        wait_message(args[0], args[1], float(args[2]), float(args[3]), float(args[4]),
                     args[5] if len(args) > 5 else None, args[6] if len(args) > 6 else None)
    elif cmd == "wait-activity":
        wait_activity(args[0], args[1], int(args[2]), float(args[3]), float(args[4]))
    elif cmd == "json":
        figures_json(args[0], args[1:])
    elif cmd == "table":
        table(args)
    elif cmd == "field":
        # field KEY: reads one JSON object on stdin, prints obj[KEY] (nested with dots), '' if absent.
        obj = json.load(sys.stdin)
        for part in args[0].split("."):
            obj = obj.get(part) if isinstance(obj, dict) else None
        print("" if obj is None else (json.dumps(obj, ensure_ascii=False) if isinstance(obj, (dict, list)) else obj))
    else:
        raise SystemExit(f"unknown helper command {cmd}")
PY
py() { python3 "$helper" "$@"; }
# Runs a long step (a program, not a function) in the background in a process group of its own and
# waits for it, so that a signal to this script is handled at once (bash runs traps only between
# foreground commands) and the clean-up can stop the whole step; its stdout goes to $tmp_dir/bg.out.
in_bg() {
  local rc=0
  setsid "$@" >"$tmp_dir/bg.out" &
  bg_pid=$!
  wait "$bg_pid" || rc=$?
  bg_pid=""
  return "$rc"
}
field() { python3 "$helper" field "$1"; }

# --- the files, generated once for every backend ----------------------------------------------------
data_dir_files=$tmp_dir/files
mkdir -p "$data_dir_files"
csv=$data_dir_files/customers.csv
if [[ "$rows" -gt 0 || -n "$file_mb" ]]; then
  t=$(now)
  read -r rows csv_bytes < <(py gen-customers "$data_dir_files" "$rows" "$file_mb") || true
  [[ -s "$csv" && "${csv_bytes:-}" =~ ^[0-9]+$ ]] || { echo "generating $csv failed" >&2; exit 1; }
  csv_mb=$(awk -v b="$csv_bytes" 'BEGIN { printf "%.1f", b / 1000000 }')
  echo "file      $csv: $rows rows, $csv_mb MB, $(head -1 "$csv" | tr "," "\n" | wc -l) columns (generated in $(elapsed "$t" "$(now)") s)"
  echo "          $(head -1 "$csv" | tr -d '\r')"
  echo "          $(sed -n 2p "$csv" | tr -d '\r')"
else
  csv_bytes=0; csv_mb=0
  py gen-customers "$data_dir_files" 0 "" >/dev/null
fi
mkdir -p "$tmp_dir/entities"
py gen-entities "$tmp_dir/entities/bench-messages.toml" "$entities"

import_activity=7b1d0c6e-4f3a-4e5b-9a1d-2c3e4f5a6b01
messages_activity=7b1d0c6e-4f3a-4e5b-9a1d-2c3e4f5a6b02
export BENCH_CLIENT_ID=bench
export BENCH_SECRET="bench-$RANDOM-$RANDOM-$RANDOM"
{
  echo "entities_dir = \"$tmp_dir/entities\""
  echo
  echo "[import]"
  if [[ -n "${BENCH_WORKERS:-}" ]]; then echo "workers = $BENCH_WORKERS"; fi
  if [[ -n "${BENCH_BATCH_ROWS:-}" ]]; then echo "batch_rows = $BENCH_BATCH_ROWS"; fi
  cat <<EOF

[[apps]]
client_id = "bench"
secret = "env:BENCH_SECRET"
roles = ["writer"]
default_company = "usmf"

[[projects]]
name = "Bench customers"
description = "bench/import.sh: currencies, customer groups and customers"

[[projects.entities]]
entity = "Currencies"
format = "CSV"

[[projects.entities]]
entity = "Customer groups"
format = "CSV"

[[projects.entities]]
entity = "Customers V3"
format = "CSV"

[[projects]]
name = "Bench messages"
description = "bench/import.sh: $entities simple entities for one-row messages"

EOF
  py gen-project-entities "$entities"
  cat <<EOF
[[jobs]]
activity_id = "$import_activity"
description = "bench/import.sh: customers"
project = "Bench customers"
kind = "file"
apps = [{ client_id = "bench" }]

[[jobs]]
activity_id = "$messages_activity"
description = "bench/import.sh: one-row messages"
project = "Bench messages"
kind = "file"
apps = [{ client_id = "bench" }]
EOF
} >"$tmp_dir/ferry.toml"

# Enqueues file $1 as entity $2 to job $3; prints the message id.
enqueue_file() {
  local file=$1 entity=$2 activity=$3 answer status
  answer=$(curl -sS -X POST -H "Authorization: Bearer $token" -H "Content-Type: application/octet-stream" -H "Expect:" \
    --data-binary "@$file" -w '\n%{http_code}' \
    "$base/api/connector/enqueue/$activity?entity=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$entity")&company=usmf") || {
    echo "enqueue of $file failed (curl)" >&2; return 1; }
  status=${answer##*$'\n'}
  answer=${answer%$'\n'*}
  if [[ "$status" != 200 ]]; then
    echo "enqueue of $file ($entity) answered $status: ${answer:0:500}" >&2
    return 1
  fi
  answer=${answer//\"/}
  echo "$answer"
}

# --- one backend -------------------------------------------------------------------------------------
run_backend() {
  local backend=$1 url port log dir figures=() status=0
  dir=$tmp_dir/$backend
  mkdir -p "$dir/data"
  if [[ "$backend" == sqlite ]]; then
    url="sqlite://$dir/data/ferry.db"
    echo "--- sqlite: SQLite $(sqlite3 --version | cut -d' ' -f1) at $dir/data/ferry.db"
  else
    # Another run (or anything else) connected to the database: leave it alone rather than drop it.
    local users
    users=$(psql "$pg_admin" -X -At -v ON_ERROR_STOP=1 -c "SELECT count(*) FROM pg_stat_activity WHERE datname = '$pg_db'") || {
      echo "cannot reach PostgreSQL at $pg_admin" >&2; return 1; }
    if [[ "$users" != 0 ]]; then
      echo "PostgreSQL database $pg_db has $users connection(s): another run may be using it; stop it or set BENCH_PG_DATABASE" >&2
      return 1
    fi
    psql "$pg_admin" -X -q -v ON_ERROR_STOP=1 -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $pg_db" -c "CREATE DATABASE $pg_db" >/dev/null
    pg_created=1
    url=$(database_url "$pg_admin" "$pg_db")
    echo "--- postgres: $(psql "$url" -X -At -c 'SHOW server_version' | sed 's/^/PostgreSQL /'), database $pg_db"
  fi
  figures+=("backend=$backend" "commit=$commit" "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)" "profile=$profile"
    "cpus=$(nproc)" "rows=$rows" "file_mb=$csv_mb" "entities=$entities" "clients=$clients")
  port=$(free_port)
  base="http://127.0.0.1:$port"
  log="$out/import-server-$backend.log"
  "$ferry" serve --config "$tmp_dir/ferry.toml" --listen "127.0.0.1:$port" --data-dir "$dir/data" \
    --database "$url" --log-level "$log_level" >"$log" 2>&1 &
  server_pid=$!
  local up=""
  for _ in $(seq 1 600); do
    if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
    if curl -fsS "$base/healthz" >/dev/null 2>&1; then up=1; break; fi
    sleep 0.1
  done
  if [[ -z "$up" ]]; then
    echo "ferry did not come up on port $port; its log ($log):" >&2
    tail -n 30 "$log" >&2
    stop_server
    return 1
  fi
  local rss_start
  rss_start=$(proc_mib "$server_pid" VmRSS)
  figures+=("rss_start_mib=$rss_start")
  token=$(py token "$base") || { echo "no token from $base/oauth2/token" >&2; stop_server; return 1; }
  echo "setup     $backend  ferry pid $server_pid on $base  RSS $rss_start MiB  token ok"

  # Reference data first, through the same job: currencies, then customer groups.
  local id res state
  for pair in "currencies.csv:Currencies" "groups.csv:Customer groups"; do
    local f=${pair%%:*} entity=${pair#*:} t
    t=$(now)
    id=$(enqueue_file "$data_dir_files/$f" "$entity" "$import_activity") || { stop_server; return 1; }
    in_bg python3 "$helper" wait-message "$base" "$id" "$timeout" "$poll_ms" "$t" || {
      echo "$entity: $(cat "$tmp_dir/bg.out")" >&2; stop_server; return 1; }
    res=$(cat "$tmp_dir/bg.out")
    state=$(field state <<<"$res")
    echo "refdata   $backend  $entity: $(field counters.read <<<"$res") rows  $state  $(elapsed "$t" "$(now)") s"
    if [[ "$state" != Processed ]]; then
      echo "!!! $entity ended $state: $(field reason <<<"$res") $(field first_errors <<<"$res" | cut -c1-600)" >&2
      status=1
    fi
  done

  local rss_refdata
  rss_refdata=$(proc_mib "$server_pid" VmRSS)
  echo "memory    $backend  RSS $rss_refdata MiB after the reference data (peak so far $(proc_mib "$server_pid" VmHWM) MiB)"
  figures+=("rss_refdata_mib=$rss_refdata")

  # The big file.
  if [[ "$rows" -gt 0 ]]; then
    local t0 t1 e2e proc peak ratio_e2e ratio_proc e2e_rate proc_rate enq_s rss_polled=""
    token=$(py token "$base") || { echo "no token from $base/oauth2/token" >&2; stop_server; return 1; }
    t0=$(now)
    id=$(enqueue_file "$csv" "Customers V3" "$import_activity") || { stop_server; return 1; }
    t1=$(now)
    enq_s=$(elapsed "$t0" "$t1")
    echo "enqueue   $backend  $rows rows  $csv_mb MB  $enq_s s  $(awk -v b="$csv_bytes" -v s="$enq_s" 'BEGIN { if (s > 0) printf "%.0f", b / 1e6 / s; else print "n/a" }') MB/s  message $id"
    local wait_rc=0
    in_bg python3 "$helper" wait-message "$base" "$id" "$timeout" "$poll_ms" "$t0" "$server_pid" "$out/import-rss-$backend.csv" || wait_rc=$?
    res=$(cat "$tmp_dir/bg.out")
    if [[ "$wait_rc" == 3 ]]; then
      echo "!!! customers: no final state within $timeout s: $res" >&2; status=1; res=""
    elif [[ "$wait_rc" != 0 ]]; then
      echo "!!! customers: polling the message failed (above)" >&2; status=1; res=""
    fi
    peak=$(proc_mib "$server_pid" VmHWM)
    if [[ -n "$res" ]]; then
      state=$(field state <<<"$res")
      rss_polled=$(field rss_max_sampled_mib <<<"$res")
      e2e=$(field end_to_end_s <<<"$res")
      proc=$(field processing_s <<<"$res")
      e2e_rate=$(per_sec "$rows" "$e2e")
      proc_rate=$(per_sec "$rows" "$proc")
      echo "import    $backend  $rows rows  $state  enqueue→Processed $e2e s  $e2e_rate rows/s  processing $proc s  $proc_rate rows/s  queue wait $(field queue_wait_s <<<"$res") s  (seen final after $(field seen_final_s <<<"$res") s; attempts $(field attempts <<<"$res"))"
      echo "counters  $backend  $(field counters <<<"$res")"
      if [[ "$state" != Processed ]]; then
        echo "!!! customers ended $state: $(field reason <<<"$res") $(field first_errors <<<"$res" | cut -c1-800)" >&2
        status=1
      fi
      figures+=("enqueue_s=$enq_s" "import_state=$state" "import_e2e_s=$e2e" "import_e2e_rows_s=$e2e_rate"
        "import_processing_s=$proc" "import_processing_rows_s=$proc_rate" "import_queue_wait_s=$(field queue_wait_s <<<"$res")"
        "import_inserted=$(field counters.inserted <<<"$res")" "import_rejected=$(field counters.rejected <<<"$res")")
    fi
    echo "memory    $backend  peak RSS (VmHWM) $peak MiB after the import  (RSS after start $rss_start MiB; highest VmRSS polled during the import ${rss_polled:-n/a} MiB; trace $out/import-rss-$backend.csv; aim < 256 MiB)"
    figures+=("peak_rss_import_mib=$peak" "rss_polled_max_mib=${rss_polled:-}")

    # The reference: the database's own CSV loader, same file, into a plain table; ferry idle.
    local rt0 ref_s ref_rate ref_desc ref_count
    if [[ "$backend" == sqlite ]]; then
      rm -f "$dir/reference.db"
      ref_desc="sqlite3 $dir/reference.db '.mode csv' '.import customers.csv customers' (table made from the header)"
      rt0=$(now)
      sqlite3 "$dir/reference.db" ".mode csv" ".import '$csv' customers"
      ref_s=$(elapsed "$rt0" "$(now)")
      ref_count=$(sqlite3 "$dir/reference.db" "SELECT count(*) FROM customers")
      rm -f "$dir/reference.db"
    else
      local cols
      cols=$(head -1 "$csv" | tr -d '\r' | tr 'A-Z' 'a-z' | sed 's/,/ text, /g; s/$/ text/')
      psql "$url" -X -q -v ON_ERROR_STOP=1 -c "CREATE SCHEMA ferry_ref" -c "CREATE TABLE ferry_ref.customers ($cols)" >/dev/null
      ref_desc="psql -c \"\\copy ferry_ref.customers FROM 'customers.csv' CSV HEADER\" (plain table, text columns, no key)"
      rt0=$(now)
      psql "$url" -X -q -v ON_ERROR_STOP=1 -c "\\copy ferry_ref.customers FROM '$csv' CSV HEADER" >/dev/null
      ref_s=$(elapsed "$rt0" "$(now)")
      ref_count=$(psql "$url" -X -At -c "SELECT count(*) FROM ferry_ref.customers")
      psql "$url" -X -q -c "SET client_min_messages = warning" -c "DROP SCHEMA ferry_ref CASCADE" >/dev/null
    fi
    ref_rate=$(per_sec "$ref_count" "$ref_s")
    echo "reference $backend  $ref_count rows  $ref_s s  $ref_rate rows/s  ($ref_desc)"
    if [[ "$ref_count" != "$rows" ]]; then echo "!!! the reference loaded $ref_count rows, not $rows" >&2; status=1; fi
    if [[ -n "$res" ]]; then
      ratio_e2e=$(awk -v a="$e2e_rate" -v b="$ref_rate" 'BEGIN { if (b > 0 && a + 0 > 0) printf "%.3f", a / b; else print "n/a" }')
      ratio_proc=$(awk -v a="$proc_rate" -v b="$ref_rate" 'BEGIN { if (b > 0 && a + 0 > 0) printf "%.3f", a / b; else print "n/a" }')
      echo "ratio     $backend  ferry / reference (rows/s over rows/s): enqueue→Processed $ratio_e2e  processing only $ratio_proc"
      figures+=("ratio_e2e=$ratio_e2e" "ratio_processing=$ratio_proc")
    fi
    figures+=("reference_s=$ref_s" "reference_rows_s=$ref_rate")
  fi

  # Many one-row messages over many entities.
  if [[ "$messages" -gt 0 ]]; then
    local mdir="$dir/enqueues" mt0 mt1 ok bad enq_rate e2e_m
    mkdir -p "$mdir"
    token=$(py token "$base") || { echo "no token from $base/oauth2/token" >&2; stop_server; return 1; }
    py gen-enqueues "$mdir" "$base" "$messages_activity" "$token" "$messages" "$entities" "$clients"
    mt0=$(now)
    in_bg sh -c 'find "$1" -name "enqueue-*.cfg" -print0 | xargs -0 -P "$2" -I{} sh -c '"'"'curl -K "$1" >"$1.out" 2>"$1.err" || true'"'"' _ {}' _ "$mdir" "$clients"
    mt1=$(now)
    ok=$(cat "$mdir"/*.out | grep -cE $'^"[0-9a-f-]{36}"\t200$' || true)
    bad=$((messages - ok))
    enq_rate=$(per_sec "$ok" "$(elapsed "$mt0" "$mt1")")
    echo "enqueue   $backend  $ok of $messages one-row messages over $entities entities from $clients curl processes in $(elapsed "$mt0" "$mt1") s  $enq_rate messages/s"
    if [[ "$bad" -gt 0 ]]; then
      echo "!!! $bad enqueues failed; first answers:" >&2
      cat "$mdir"/*.out "$mdir"/*.err | grep -vE $'^"[0-9a-f-]{36}"\t200$' | head -5 | cut -c1-300 >&2
      status=1
    fi
    local wait_rc=0
    in_bg python3 "$helper" wait-activity "$base" "$messages_activity" "$ok" "$timeout" "$mt0" || wait_rc=$?
    res=$(cat "$tmp_dir/bg.out")
    if [[ "$wait_rc" == 3 ]]; then
      echo "!!! messages: not all final within $timeout s" >&2; status=1; res=""
    elif [[ "$wait_rc" != 0 ]]; then
      echo "!!! messages: polling failed (above)" >&2; status=1; res=""
    fi
    if [[ -n "$res" ]]; then
      e2e_m=$(field end_to_end_s <<<"$res")
      local processed other
      processed=$(field states.Processed <<<"$res")
      processed=${processed:-0}
      other=$(( $(field messages <<<"$res") - processed ))
      echo "messages  $backend  enqueue→all final $e2e_m s  $(per_sec "$processed" "$e2e_m") messages/s  states $(field states <<<"$res")  (first started after $(field first_started_after_s <<<"$res") s; seen all final after $(field seen_final_s <<<"$res") s)"
      if [[ "$other" -gt 0 ]]; then echo "!!! $other messages did not end Processed" >&2; status=1; fi
      figures+=("messages=$ok" "messages_enqueue_s=$(elapsed "$mt0" "$mt1")" "messages_enqueue_per_s=$enq_rate"
        "messages_e2e_s=$e2e_m" "messages_e2e_per_s=$(per_sec "$processed" "$e2e_m")"
        "messages_processed=$processed" "messages_other=$other")
    fi
    rm -rf "$mdir"
  fi

  local peak_end problems
  peak_end=$(proc_mib "$server_pid" VmHWM)
  figures+=("peak_rss_end_mib=$peak_end")
  echo "memory    $backend  peak RSS (VmHWM) $peak_end MiB at the end"
  stop_server
  problems=$(grep -cE '(WARN|ERROR)' "$log" || true)
  figures+=("log_problems=$problems")
  if [[ -s "$log" ]]; then
    echo "server log ($log): $(wc -l <"$log") lines; warnings and errors: $problems; last lines:"
    tail -n 5 "$log" | cut -c1-300
  fi
  py json "$out/import-$backend.json" "${figures[@]}"
  if [[ "$backend" == postgres && "${BENCH_KEEP:-}" != 1 ]]; then
    psql "$pg_admin" -X -q -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1 && pg_created=""
  fi
  return "$status"
}

failed=0
jsons=()
for backend in "${backends[@]}"; do
  rm -f "$out/import-$backend.json"
  run_backend "$backend" || { echo "!!! $backend run failed" >&2; failed=1; }
  if [[ -s "$out/import-$backend.json" ]]; then jsons+=("$out/import-$backend.json"); fi
done
echo
echo "== figures ($size_desc, $messages messages over $entities entities, commit $commit, $(nproc) CPUs, $mem, profile $profile) =="
if [[ ${#jsons[@]} -gt 0 ]]; then py table "${jsons[@]}"; fi
echo "json      ${jsons[*]:-none}"
exit "$failed"
