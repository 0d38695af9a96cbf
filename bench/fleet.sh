#!/usr/bin/env bash
# `dbtool fleet upgrade -j 8` against a shell loop of `dbtool upgrade` over the same databases,
# in one run: 200 PostgreSQL NeuraChar databases from base to head, then 1,000 SQLite files.
# First the loop's breakdown per database (process start, connect, migration lock, steps, the
# rest: state, plan, review and audit), then each side timed from empty databases (median of ROUNDS), the
# ratio fleet / loop (goal: at most 0.35) and the fleet process's peak memory.
#
#   bench/fleet.sh            200 PostgreSQL databases and 1,000 SQLite files (BENCHMARKS.md)
#   bench/fleet.sh --quick    20 and 50, one round: proves the script works
#
# Needs psql, /usr/bin/time and the tests' PostgreSQL (BENCH_PG_URL). Builds `cargo build
# --release` (BENCH_PROFILE=dist for the fully optimised binary); creates and drops its own
# databases (bench_<pid>_f<i>) and files. A benchmark, not a test: it exits 0 either way.
set -euo pipefail
source "$(dirname "$0")/common.sh"

PG_N=200
LITE_N=1000
ROUNDS="${ROUNDS:-3}"
JOBS="${JOBS:-8}"
case "${1:-}" in
  --quick) PG_N=20; LITE_N=50; ROUNDS=1 ;;
  "") ;;
  -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) die "unknown argument '$1' (use --quick)" ;;
esac

PROFILE="${BENCH_PROFILE:-release}"
BIN="$ROOT/target/$PROFILE/dbtool"
[ -x /usr/bin/time ] || die "/usr/bin/time is missing: install it with: apt-get install time"
need psql postgresql-client
"$PSQL" "$BENCH_PG_URL/postgres" -qAtX -c 'SELECT 1' >/dev/null 2>&1 \
  || die "cannot connect to $BENCH_PG_URL/postgres (set BENCH_PG_URL)"
echo "bench: cargo build --profile $PROFILE" >&2
(cd "$ROOT" && cargo build --profile "$PROFILE" --quiet) || die "the $PROFILE build failed"

TMP="$(mktemp -d)"
PREFIX="bench_$$_f"
NAMES=()
for i in $(seq -w 1 "$PG_N"); do NAMES+=("$PREFIX$i"); done

# Runs the statements in batches of 50 (one psql per batch, each statement on its own).
admin_each() {
  local args=() s
  for s in "$@"; do
    args+=(-c "$s")
    if [ "${#args[@]}" -ge 100 ]; then admin "${args[@]}" >/dev/null; args=(); fi
  done
  if [ "${#args[@]}" -gt 0 ]; then admin "${args[@]}" >/dev/null; fi
}
# Each DROP DATABASE waits for a checkpoint: in parallel sessions they share them.
drop_all() {
  printf '%s\n' "${NAMES[@]}" | xargs -P 16 -I{} "$PSQL" "$BENCH_PG_URL/postgres" -qAtX \
    -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS {} WITH (FORCE)" >/dev/null
}
create_pg() {
  local s=() n
  for n in "${NAMES[@]}"; do s+=("CREATE DATABASE $n"); done
  admin_each "${s[@]}"
}
# Empty again: the schema dropped and made anew (DROP DATABASE waits for a checkpoint, which
# takes seconds on a busy server).
reset_pg() {
  printf '%s\n' "${NAMES[@]}" | xargs -P 4 -I{} "$PSQL" "$BENCH_PG_URL/{}" -qAtX -v ON_ERROR_STOP=1 \
    -c "SET client_min_messages = warning" -c "DROP SCHEMA public CASCADE" -c "CREATE SCHEMA public" >/dev/null
}
reset_lite() { rm -rf "$TMP/lite"; mkdir -p "$TMP/lite"; }
trap 'drop_all 2>/dev/null || true; rm -rf "$TMP"' EXIT

now_ms() { date +%s%3N; }

# The fleet file for the PostgreSQL databases.
for n in "${NAMES[@]}"; do
  printf '[[target]]\nname = "%s"\nurl = "%s/%s"\napp = "neurachar"\n\n' "$n" "$BENCH_PG_URL" "$n"
done > "$TMP/fleet.toml"

loop_pg() {
  local n
  for n in "${NAMES[@]}"; do
    "$BIN" -q --app neurachar --database-url "$BENCH_PG_URL/$n" upgrade || return 1
  done
}
loop_lite() {
  (
    cd "$TMP/lite" || exit 1
    for i in $(seq -w 1 "$LITE_N"); do
      "$BIN" -q --app neurachar --database-url "sqlite://t$i.db" upgrade || exit 1
    done
  )
}
fleet_pg() {
  /usr/bin/time -f %M -o "$TMP/rss" \
    "$BIN" -q --app neurachar fleet upgrade --file "$TMP/fleet.toml" -j "$JOBS" >/dev/null
}
fleet_lite() {
  (cd "$TMP/lite" && /usr/bin/time -f %M -o "$TMP/rss" \
    "$BIN" -q --app neurachar fleet upgrade --sqlite-glob 't*.db' -j "$JOBS" >/dev/null)
}
# The SQLite files must exist for the glob: empty files are empty databases.
touch_lite() { local i; for i in $(seq -w 1 "$LITE_N"); do : > "$TMP/lite/t$i.db"; done; }

# breakdown KIND: the loop's time per database, split by what `-v` reports (connect, each
# step) and by two extra runs on the migrated database: `status` (start, connect, read the
# state) and a no-op `upgrade` (the same plus the migration lock and its bookkeeping), whose
# difference is the lock's share.
breakdown() {
  local kind="$1" k=20 total=0 connect=0 steps=0 status=0 noop=0 t0 t1 t2 t3 url start
  start="$( { for _ in $(seq 20); do t0=$(date +%s%6N); "$BIN" --version >/dev/null; t1=$(date +%s%6N); echo $(( t1 - t0 )); done; } | median)"
  for i in $(seq -w 1 "$k"); do
    if [ "$kind" = PostgreSQL ]; then url="$BENCH_PG_URL/${NAMES[$((10#$i - 1))]}"; else url="sqlite://$TMP/lite/t$i.db"; fi
    t0=$(date +%s%6N)
    "$BIN" -v --app neurachar --database-url "$url" upgrade 2>"$TMP/v.log" >/dev/null
    t1=$(date +%s%6N)
    "$BIN" -q --app neurachar --database-url "$url" status >/dev/null
    t2=$(date +%s%6N)
    "$BIN" -q --app neurachar --database-url "$url" upgrade >/dev/null
    t3=$(date +%s%6N)
    total=$(( total + t1 - t0 )); status=$(( status + t2 - t1 )); noop=$(( noop + t3 - t2 ))
    connect="$(awk -v c="$connect" '/connected in/ { c += $(NF - 1) * 1000 } END { printf "%d", c }' "$TMP/v.log")"
    steps="$(awk -v s="$steps" '/^applied .* in [0-9.]+ ms$/ { s += $(NF - 1) * 1000 } END { printf "%d", s }' "$TMP/v.log")"
  done
  awk -v t="$total" -v c="$connect" -v s="$steps" -v st="$status" -v no="$noop" -v p="$start" -v k="$k" -v kind="$kind" 'BEGIN {
    t /= k * 1000; c /= k * 1000; s /= k * 1000; st /= k * 1000; no /= k * 1000; p /= 1000
    lock = no - st; if (lock < 0) lock = 0
    printf "| %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f |\n", kind, t, p, c, lock, s, t - p - c - lock - s, st }'
}

median_of() { tr ' ' '\n' | grep -v '^$' | median; }

echo "bench: $PG_N PostgreSQL databases, $LITE_N SQLite files, -j $JOBS, $ROUNDS round(s)" >&2
create_pg
reset_lite
touch_lite
BREAK=("$(breakdown PostgreSQL)" "$(breakdown SQLite)")

PG_LOOP=() PG_FLEET=() PG_RSS=() LITE_LOOP=() LITE_FLEET=() LITE_RSS=()
for r in $(seq "$ROUNDS"); do
  echo "bench: round $r: PostgreSQL" >&2
  reset_pg; t0=$(now_ms); loop_pg; t1=$(now_ms); PG_LOOP+=($(( t1 - t0 )))
  reset_pg; t0=$(now_ms); fleet_pg; t1=$(now_ms); PG_FLEET+=($(( t1 - t0 ))); PG_RSS+=("$(cat "$TMP/rss")")
  echo "bench: round $r: SQLite" >&2
  reset_lite; t0=$(now_ms); loop_lite; t1=$(now_ms); LITE_LOOP+=($(( t1 - t0 )))
  reset_lite; touch_lite; t0=$(now_ms); fleet_lite; t1=$(now_ms); LITE_FLEET+=($(( t1 - t0 ))); LITE_RSS+=("$(cat "$TMP/rss")")
done

row() { # NAME N LOOP_MS FLEET_MS RSS_KB
  local r verdict
  r="$(ratio "$4" "$3")"
  if le "$r" 0.35; then verdict="ok (≤ 0.35)"; else verdict="MISSED (> 0.35)"; fi
  awk -v n="$1" -v c="$2" -v l="$3" -v f="$4" -v m="$5" -v r="$r" -v v="$verdict" -v j="$JOBS" 'BEGIN {
    printf "| %s | %d | %.2f | %.2f | %.2f | %s | %.1f | %.1f |\n", n, c, l / 1000, f / 1000, r, v, f / c, m / 1024 }'
}

echo
machine 2>/dev/null | grep -v hyperfine || true
echo "- profile: $PROFILE; -j $JOBS; median of $ROUNDS round(s), each from empty databases"
echo
echo "The shell loop's time per database (ms, mean of 20): connect and steps as \`dbtool -v\` reports"
echo "them, the lock as a no-op \`upgrade\` minus \`status\` on the migrated database:"
echo
echo "| backend | total | process start | connect | migration lock | steps | the rest: state, plan, review, audit | (\`status\` alone) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${BREAK[@]}"
echo
echo "| case | databases | shell loop (s) | fleet -j $JOBS (s) | ratio | goal | fleet ms per database | fleet peak RSS (MiB) |"
echo "|---|---:|---:|---:|---:|---|---:|---:|"
row "PostgreSQL, NeuraChar base → head" "$PG_N" "$(echo "${PG_LOOP[@]}" | median_of)" "$(echo "${PG_FLEET[@]}" | median_of)" "$(echo "${PG_RSS[@]}" | median_of)"
row "SQLite files, NeuraChar base → head" "$LITE_N" "$(echo "${LITE_LOOP[@]}" | median_of)" "$(echo "${LITE_FLEET[@]}" | median_of)" "$(echo "${LITE_RSS[@]}" | median_of)"
