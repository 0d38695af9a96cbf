#!/usr/bin/env bash
# dbtool's own speed against its floor on the local PostgreSQL: each dbtool command next to
# psql doing the same work, measured in the same run with hyperfine (medians), and peak memory
# with /usr/bin/time. Prints a Markdown table with the ratio of each case to its floor.
#
#   bench/run.sh            full run (what BENCHMARKS.md records)
#   bench/run.sh --quick    a few runs per case, to prove the script works
#
# Needs: hyperfine (apt-get install hyperfine), /usr/bin/time (apt-get install time), psql,
# and the PostgreSQL the tests use (BENCH_PG_URL, default postgres://postgres@127.0.0.1:5432).
# It builds `cargo build --profile dist` first and creates and drops its own databases.
# A benchmark, not a test: it reports targets met or missed and exits 0 either way.
set -euo pipefail
source "$(dirname "$0")/common.sh"

WARMUP=10
RUNS=100
MEM_RUNS=30
case "${1:-}" in
  --quick) WARMUP=1; RUNS=5; MEM_RUNS=3 ;;
  "") ;;
  -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) die "unknown argument '$1' (use --quick)" ;;
esac

check_tools
build_release
TMP="$(mktemp -d)"
trap 'drop_dbs; rm -rf "$TMP"' EXIT

# hyperfine_median NAME [hyperfine options...] -- COMMAND: the median in ms.
hyperfine_median() {
  local name="$1"; shift
  hyperfine -N --style none --warmup "$WARMUP" --runs "$RUNS" \
    --export-csv "$TMP/$name.csv" "$@" >/dev/null 2>"$TMP/$name.err" \
    || { cat "$TMP/$name.err" >&2; die "hyperfine failed for $name"; }
  # command,mean,stddev,median,user,system,min,max: the command may hold commas, so count
  # from the right.
  tail -n 1 "$TMP/$name.csv" | awk -F, '{ printf "%.2f", $(NF - 4) * 1000 }'
}

# peak_rss_kb COMMAND...: the median peak resident set size in KiB.
peak_rss_kb() {
  local i
  for i in $(seq "$MEM_RUNS"); do
    /usr/bin/time -f %M -o "$TMP/rss" "$@" >/dev/null 2>&1 || die "failed: $*"
    cat "$TMP/rss"
  done | median
}

# interleaved NAME PREPARE CMD...: runs the commands in turn, the order rotating each round,
# with PREPARE (untimed) before every run, $WARMUP rounds untimed and $RUNS timed; prints each
# command's median in ms, one per line. hyperfine runs one command's runs after the other's,
# so a machine whose speed drifts during the run (this shared one does, by several times within
# an hour) would favour whichever ran in the faster minutes.
interleaved() {
  local name="$1" prep="$2"; shift 2
  local cmds=("$@") n=$# i j k t0 t1
  for ((k = 0; k < n; k++)); do : >"$TMP/$name.$k"; done
  for ((i = 0; i < WARMUP + RUNS; i++)); do
    for ((j = 0; j < n; j++)); do
      k=$(((i + j) % n))
      eval "$prep" >/dev/null 2>&1 || die "$name: the preparation failed: $prep"
      t0=$EPOCHREALTIME
      eval "${cmds[k]}" >/dev/null 2>"$TMP/$name.err" \
        || { cat "$TMP/$name.err" >&2; die "$name: failed: ${cmds[k]}"; }
      t1=$EPOCHREALTIME
      if ((i >= WARMUP)); then
        awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) * 1000 }' >>"$TMP/$name.$k"
      fi
    done
  done
  for ((k = 0; k < n; k++)); do median <"$TMP/$name.$k"; done
}

ROWS=()
# row CASE DBTOOL_MS FLOOR FLOOR_MS TARGET: one line of the table; TARGET is the highest
# acceptable ratio ("-" for none).
row() {
  local r verdict="-"
  r="$(ratio "$2" "$4")"
  if [ "$5" != "-" ] && [ "$r" != "n/a" ]; then
    if le "$r" "$5"; then verdict="ok (≤ $5)"; else verdict="MISSED (> $5)"; fi
  fi
  ROWS+=("| $1 | $2 | $3 | $4 | $r | $verdict |")
}

# --- Fixtures: an Avatar database at head for the read-only cases; an empty one for upgrades.
new_db read READ_URL
DATABASE_URL="$READ_URL" "$BIN" -q upgrade >/dev/null
new_db up UP_URL
RESET="$PSQL $UP_URL -qAtX -c 'DROP SCHEMA public CASCADE; CREATE SCHEMA public'"

# The floor's DDL: what `upgrade --sql` prints, as one transaction (psql -1); CONCURRENTLY
# cannot run inside one and builds the same index on the empty tables. Without `--sql`, a
# pg_dump of a freshly migrated database (schema and rows, the tracking table included).
# Writes $TMP/APP.sql and sets FLOOR_SOURCE.
floor_sql() {
  local app="$1" out="$TMP/$1.sql" url
  if "$BIN" upgrade --help | grep -q -- '--sql'; then
    "$BIN" --app "$app" upgrade --sql base:head --dialect postgres \
      | grep -v -e '^BEGIN;$' -e '^COMMIT;$' | sed 's/ CONCURRENTLY / /' >"$out"
    FLOOR_SOURCE="upgrade --sql"
  else
    need pg_dump postgresql-client
    new_db "dump_$app" url
    DATABASE_URL="$url" "$BIN" -q --app "$app" upgrade >/dev/null
    pg_dump --no-owner --no-privileges "$url" >"$out"
    FLOOR_SOURCE="pg_dump"
  fi
}

echo "bench: measuring ($RUNS runs per case, $WARMUP warm-up)" >&2
export DATABASE_URL="$READ_URL"

# status: what it reads, as one query.
t_status="$(hyperfine_median status -- "$BIN status")"
t_status_psql="$(hyperfine_median status_psql -- \
  "$PSQL $READ_URL -qAtX -c 'SELECT version, applied_at FROM seaql_migrations ORDER BY version'")"
row '`dbtool status`' "$t_status" '`psql -c` tracking table' "$t_status_psql" 1.0

# settings get: being built in parallel; keep the case and say so when it is missing.
if "$BIN" settings get --help >/dev/null 2>&1; then
  t_get="$(hyperfine_median get -- "$BIN settings get bio_prompt_x")"
  t_get_psql="$(hyperfine_median get_psql -- \
    "$PSQL $READ_URL -qAtX -c \"SELECT value FROM settings WHERE key = 'bio_prompt_x'\"")"
  row '`dbtool settings get bio_prompt_x`' "$t_get" '`psql -c` SELECT value' "$t_get_psql" 1.0
else
  ROWS+=("| \`dbtool settings get bio_prompt_x\` | n/a | \`psql -c\` SELECT value | - | - | not in this build |")
fi

# upgrade from empty to head, the database reset before every run (not timed). The three
# commands of an app run interleaved (see `interleaved`).
export DATABASE_URL="$UP_URL"
for app in avatar neurachar; do
  floor_sql "$app"
  sql="$TMP/$app.sql"
  cmds=("$BIN --app $app upgrade" "$PSQL $UP_URL -q -1 -f $sql")
  # The floor with the same guarantees: dbtool's own script exactly as `--sql` prints it, each
  # migration in its own transaction with its tracking and state rows, CONCURRENTLY kept.
  if [ "$FLOOR_SOURCE" = "upgrade --sql" ]; then
    "$BIN" --app "$app" upgrade --sql base:head --dialect postgres >"$TMP/$app.steps.sql"
    cmds+=("$PSQL $UP_URL -q -v ON_ERROR_STOP=1 -f $TMP/$app.steps.sql")
  fi
  mapfile -t t < <(interleaved "up_$app" "$RESET" "${cmds[@]}")
  [ "${#t[@]}" -eq "${#cmds[@]}" ] || die "the $app upgrade cases failed"
  row "\`dbtool --app $app upgrade\` (empty → head)" "${t[0]}" "\`psql -q -1 -f\` ($FLOOR_SOURCE)" "${t[1]}" 1.5
  if [ "${#t[@]}" -gt 2 ]; then
    row "\`dbtool --app $app upgrade\` (empty → head)" "${t[0]}" "\`psql -q -f\` (upgrade --sql as printed: per-step transactions)" "${t[2]}" 1.0
  fi
done

# Process start: no database at all.
t_version="$(hyperfine_median version -- "$BIN --version")"
t_version_psql="$(hyperfine_median version_psql -- "$PSQL --version")"
row '`dbtool --version` (process start)' "$t_version" '`psql --version`' "$t_version_psql" -

# Peak memory of status vs psql running its query.
export DATABASE_URL="$READ_URL"
m_status="$(peak_rss_kb "$BIN" status)"
m_psql="$(peak_rss_kb "$PSQL" "$READ_URL" -qAtX -c 'SELECT version, applied_at FROM seaql_migrations ORDER BY version')"

echo
echo "## dbtool vs psql on PostgreSQL"
echo
machine
echo "- runs: $RUNS per case after $WARMUP warm-up (hyperfine -N; the upgrade cases interleaved, each run timed from the shell), peak RSS: median of $MEM_RUNS"
echo
echo "| case | dbtool median (ms) | floor | floor median (ms) | ratio | target |"
echo "|---|---:|---|---:|---:|---|"
printf '%s\n' "${ROWS[@]}"
mem_ratio="$(ratio "$m_status" "$m_psql")"
if le "$m_status" "$m_psql"; then mem_verdict="ok (≤ 1.0)"; else mem_verdict="MISSED (> 1.0)"; fi
echo "| peak RSS of \`dbtool status\` (KiB) | $m_status | psql's (KiB) | $m_psql | $mem_ratio | $mem_verdict |"
