#!/usr/bin/env bash
# Readers' latency on a live table while a migration step waits for its table lock: a session
# sits idle in a transaction that has read `settings` (HOLD seconds, default 8), readers
# query `settings` every 50 ms, and `dbtool downgrade --yes` wants to drop the table. Without
# a DDL lock timeout the DROP queues behind the idle session and every reader queues behind
# the DROP; with one, no reader waits longer than the timeout in any attempt. Prints a
# Markdown table: dbtool's exit code and time, the readers' median and worst latency, and the
# bound (timeout + 0.5 s) each case must stay under.
#
#   bench/readers.sh            HOLD=8
#   HOLD=4 bench/readers.sh     shorter
#   KEEP=1 bench/readers.sh     keep the readers' timings and dbtool's output (the path is printed)
#
# Needs psql and the PostgreSQL the tests use (BENCH_PG_URL). Builds the dist profile first,
# creates and drops its own databases. A benchmark, not a test: it exits 0 either way.
set -euo pipefail
source "$(dirname "$0")/common.sh"

HOLD="${HOLD:-8}"
case "${1:-}" in
  "") ;;
  -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) die "unknown argument '$1'" ;;
esac
[[ "$HOLD" =~ ^[0-9]+$ ]] && [ "$HOLD" -ge 2 ] || die "HOLD must be a whole number of seconds, at least 2 (got '$HOLD')"
need psql postgresql-client
"$PSQL" "$BENCH_PG_URL/postgres" -qAtX -c 'SELECT 1' >/dev/null 2>&1 \
  || die "cannot connect to $BENCH_PG_URL/postgres (set BENCH_PG_URL)"
build_release
TMP="$(mktemp -d)"
PIDS=()
trap 'kill "${PIDS[@]+"${PIDS[@]}"}" 2>/dev/null || true; drop_dbs; [ -n "${KEEP:-}" ] || rm -rf "$TMP"; [ -z "${KEEP:-}" ] || echo "kept $TMP" >&2' EXIT

# case NAME BOUND_SECONDS DBTOOL_OPTIONS...: one measurement, one table row.
run_case() {
  local name="$1" bound="$2"; shift 2
  local url
  new_db "readers_$name" url
  DATABASE_URL="$url" "$BIN" --app avatar upgrade d8cfd3cb4083 -q
  # The idle transaction: ACCESS SHARE on settings until it commits.
  ( printf 'BEGIN;\nSELECT count(*) FROM settings;\n'; sleep "$HOLD"; printf 'COMMIT;\n' ) \
    | "$PSQL" "$url" -qAtX >/dev/null 2>&1 &
  local holder=$!
  PIDS+=("$holder")
  sleep 0.3
  # The readers: one query every 50 ms, each timed by psql.
  ( printf '\\timing on\n'
    local end=$((SECONDS + HOLD + 2))
    while [ "$SECONDS" -lt "$end" ]; do printf 'SELECT count(*) FROM settings;\n'; sleep 0.05; done
  ) | "$PSQL" "$url" -qAtX >"$TMP/$name.readers" 2>&1 &
  local reader=$!
  PIDS+=("$reader")
  sleep 0.5
  local t0 t1 rc=0
  t0=$(date +%s.%N)
  DATABASE_URL="$url" "$BIN" --app avatar "$@" --progress lines downgrade 25698f3f906f --yes \
    >"$TMP/$name.out" 2>"$TMP/$name.err" || rc=$?
  t1=$(date +%s.%N)
  wait "$reader" "$holder" 2>/dev/null || true
  local stats
  stats=$(grep -o '^Time: [0-9.]*' "$TMP/$name.readers" | awk '{ print $2 }' | sort -n \
    | awk '{ v[NR] = $1 } END { if (NR == 0) { print "0 - -"; exit } printf "%d %.1f %.1f", NR, v[int((NR + 1) / 2)], v[NR] }')
  local n median worst verdict
  read -r n median worst <<<"$stats"
  verdict=$(awk -v w="$worst" -v b="$bound" 'BEGIN { if (b == "") print "-"; else if (w <= (b + 0.5) * 1000) print "ok (≤ " b + 0.5 " s)"; else print "over (> " b + 0.5 " s)" }')
  printf '| `%s` | %s | %.1f | %s | %s | %s | %s |\n' "${*:-(defaults)}" "$rc" \
    "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" "$n" "$median" "$worst" "$verdict"
}

echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "- $("$BIN" --version | head -n 1), $("$PSQL" --version)"
echo "- an idle transaction holds \`settings\` for ${HOLD} s; readers query it every 50 ms"
echo
echo '| dbtool options | exit | dbtool (s) | reader queries | median (ms) | worst (ms) | bound |'
echo '|---|---:|---:|---:|---:|---:|---|'
run_case unbounded "" --ddl-lock-timeout 3600 --ddl-retries 0
run_case default 5
run_case short 0.5 --ddl-lock-timeout 0.5
