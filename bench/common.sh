# Shared by bench/run.sh and bench/data.sh (sourced, not run): configuration, tool checks,
# the fully optimised build (profile dist), scratch databases that are dropped on exit, and small statistics.

# The server to measure against. The URL carries no sslmode, so both dbtool and psql use
# their default (prefer): TLS whenever the server offers it, as in production.
BENCH_PG_URL="${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/target/dist/dbtool"

die() { echo "bench: $*" >&2; exit 1; }

# The psql of the floor. Debian's /usr/bin/psql is pg_wrapper, a Perl script that picks a
# client version and execs it: ~13 ms of Perl before libpq even starts, which would flatter
# dbtool. Use the client itself (override with BENCH_PSQL).
find_psql() {
  PSQL="${BENCH_PSQL:-$(command -v psql || true)}"
  [ -n "$PSQL" ] || return 0
  if [ -z "${BENCH_PSQL:-}" ] && [ "$(basename "$(readlink -f "$PSQL")")" = pg_wrapper ]; then
    local real
    real="$(ls -d /usr/lib/postgresql/*/bin/psql 2>/dev/null | sort -V | tail -n 1)"
    if [ -n "$real" ]; then PSQL="$real"; fi
  fi
}
find_psql

# need COMMAND PACKAGE: stop with the install command when a tool is missing.
need() {
  command -v "$1" >/dev/null 2>&1 || die "$1 is missing: install it with: apt-get install $2"
}

check_tools() {
  need hyperfine hyperfine
  [ -x /usr/bin/time ] || die "/usr/bin/time is missing: install it with: apt-get install time"
  need psql postgresql-client
  [ -x "$PSQL" ] || die "psql ($PSQL) is not executable"
  need cargo "a Rust toolchain (see README)"
  "$PSQL" "$BENCH_PG_URL/postgres" -qAtX -c 'SELECT 1' >/dev/null 2>&1 \
    || die "cannot connect to $BENCH_PG_URL/postgres (set BENCH_PG_URL, e.g. postgres://postgres@127.0.0.1:5432)"
}

build_release() {
  echo "bench: cargo build --profile dist" >&2
  (cd "$ROOT" && cargo build --profile dist --quiet) || die "the dist build failed"
}

# Scratch databases: bench_<pid>_<name>, dropped when the script exits, however it exits.
# `new_db NAME VAR` creates one and stores its URL in VAR (no subshell, so the list of
# databases to drop survives).
BENCH_DBS=()
admin() { PGOPTIONS="-c client_min_messages=warning" "$PSQL" "$BENCH_PG_URL/postgres" -qAtX -v ON_ERROR_STOP=1 "$@"; }
new_db() {
  local name="bench_$$_$1"
  admin -c "DROP DATABASE IF EXISTS $name" -c "CREATE DATABASE $name" >/dev/null
  BENCH_DBS+=("$name")
  printf -v "$2" '%s' "$BENCH_PG_URL/$name"
}
drop_dbs() {
  local d
  for d in "${BENCH_DBS[@]+"${BENCH_DBS[@]}"}"; do
    admin -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1 || true
  done
}
trap drop_dbs EXIT

# median: the median of the numbers on stdin, one per line.
median() {
  sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "nan"; exit }
    if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# ratio A B: A / B with two decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

# le A B: succeeds when A <= B.
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }

machine() {
  local cpu mem
  cpu="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
  mem="$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
  echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "- machine: $(nproc) cores, ${cpu:-unknown CPU}, $mem RAM, $(uname -sr)"
  echo "- $("$BIN" --version | head -1), $(rustc --version 2>/dev/null || echo 'rustc ?')"
  echo "- $("$PSQL" --version) ($PSQL), server $(admin -c 'SHOW server_version'), ssl=$(admin -c 'SHOW ssl')"
  echo "- $(hyperfine --version 2>/dev/null || echo 'hyperfine: not installed')"
}
