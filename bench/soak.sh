#!/usr/bin/env bash
# Kill soak: SIGKILL `dbtool upgrade` / `dbtool downgrade` at a random moment (0-300 ms after
# it starts), then check that the record still tells the truth. Per backend, app and
# direction, KILLS times:
#
#   1. start the command and SIGKILL it after a random 0-300 ms; the record must not lie:
#      either `status --check` says a step is half-done (13), or `dbtool check` is clean;
#   2. re-run the same command: it must succeed (finishing a half-done step first);
#   3. `dbtool check` must be clean (the live schema equals what the record says) and
#      `status --check` must report no half-done step, changed checksum or gap (exit 0 after
#      an upgrade, 3 = pending after a downgrade).
#
# Avatar goes base -> head (`upgrade`) and back (`downgrade base --yes`); NeuraChar holds
# MESSAGES generated messages and goes between its fifth step and head (building and dropping
# the foreign-key indexes on the full tables: `upgrade`, `downgrade
# m20251212_000005_create_messages`). A failure prints the step and its output and is counted;
# the summary at the end is a Markdown table (for BENCHMARKS.md). Exit 1 when anything failed.
#
#   bench/soak.sh                        100 kills per app and direction on MariaDB and PostgreSQL
#   bench/soak.sh --kills 10 --messages 20000 --backend postgres
#
# Needs the tests' servers (PostgreSQL at 127.0.0.1:5432 user postgres, MariaDB at
# 127.0.0.1:3306 user root; override with SOAK_PG_URL / SOAK_MYSQL_HOST), psql and mariadb.
# Builds `cargo build --release` (skip with --no-build); creates and drops its own databases.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${SOAK_BIN:-$ROOT/target/release/dbtool}"
PG_URL="${SOAK_PG_URL:-postgres://postgres@127.0.0.1:5432}"
MYSQL_HOST="${SOAK_MYSQL_HOST:-127.0.0.1}"
KILLS=100
MESSAGES=200000
BACKENDS=()
BUILD=1
MAX_KILL_MS=300

die() { echo "soak: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --kills) KILLS="${2:?--kills N}"; shift 2 ;;
    --messages) MESSAGES="${2:?--messages N}"; shift 2 ;;
    --backend) BACKENDS+=("${2:?--backend postgres|mysql}"); shift 2 ;;
    --no-build) BUILD=0; shift ;;
    -h | --help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[ ${#BACKENDS[@]} -gt 0 ] || BACKENDS=(mysql postgres)
for b in "${BACKENDS[@]}"; do
  case "$b" in postgres | mysql) ;; *) die "unknown backend '$b' (postgres or mysql)" ;; esac
done
[[ "$KILLS" =~ ^[0-9]+$ ]] || die "--kills takes a whole number, not '$KILLS'"
[[ "$MESSAGES" =~ ^[0-9]+$ ]] && [ "$MESSAGES" -ge 100 ] || die "--messages takes a whole number of at least 100"

if [ "$BUILD" = 1 ]; then
  echo "soak: cargo build --release" >&2
  (cd "$ROOT" && cargo build --release --quiet) || die "the release build failed"
fi
[ -x "$BIN" ] || die "no binary at $BIN"

WORK="$(mktemp -d)"
DBS=()
cleanup() {
  local d
  for d in "${DBS[@]+"${DBS[@]}"}"; do
    case "$d" in
      postgres:*) psql "$PG_URL/postgres" -qAtX -c "DROP DATABASE IF EXISTS ${d#postgres:} WITH (FORCE)" >/dev/null 2>&1 ;;
      mysql:*) mariadb -h "$MYSQL_HOST" -uroot -e "DROP DATABASE IF EXISTS ${d#mysql:}" >/dev/null 2>&1 ;;
    esac
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

# new_db BACKEND NAME: creates a database and prints its URL.
new_db() {
  local name="soak_$$_$2"
  case "$1" in
    postgres)
      psql "$PG_URL/postgres" -qAtX -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $name" -c "CREATE DATABASE $name" >/dev/null || die "cannot create $name"
      echo "$PG_URL/$name" ;;
    mysql)
      mariadb -h "$MYSQL_HOST" -uroot -e "DROP DATABASE IF EXISTS $name; CREATE DATABASE $name CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci" || die "cannot create $name"
      echo "mysql://root@$MYSQL_HOST:3306/$name" ;;
  esac
}

# sql BACKEND URL: runs standard input on the database.
sql() {
  case "$1" in
    postgres) psql "$2" -qAtX -v ON_ERROR_STOP=1 ;;
    mysql) mariadb -h "$MYSQL_HOST" -uroot "${2##*/}" ;;
  esac
}

# The NeuraChar data: 1,000 users, 200 characters, MESSAGES/100 chats of 100 messages each,
# the messages interleaved across chats as a live service writes them. Keys are md5 hashes of
# a counter, so both backends get the same rows.
generate() {
  local backend="$1" url="$2" chats=$((MESSAGES / 100))
  case "$backend" in
    postgres) sql postgres "$url" <<SQL
INSERT INTO users (id, email, username) SELECT md5('u' || g)::uuid, 'user' || g || '@example.com', 'user' || g FROM generate_series(1, 1000) g;
INSERT INTO characters (id, name, system_prompt, tags, is_public, creator_id)
  SELECT md5('c' || g)::uuid, 'Character ' || g, 'You are character ' || g, '["friendly"]'::jsonb, g % 2 = 0, md5('u' || (1 + g * 7 % 1000))::uuid FROM generate_series(1, 200) g;
INSERT INTO chats (chat_id, user_id, character_id)
  SELECT md5('ch' || g)::uuid, md5('u' || (1 + g * 13 % 1000))::uuid, md5('c' || (1 + g * 17 % 200))::uuid FROM generate_series(1, $chats) g;
INSERT INTO messages (id, chat_id, role, content, created_at)
  SELECT md5('m' || g)::uuid, md5('ch' || (1 + g % $chats))::uuid, CASE WHEN g % 2 = 1 THEN 'user' ELSE 'assistant' END,
         repeat('Lorem ipsum dolor sit amet. ', 1 + g % 6), now() - g * interval '1 second'
  FROM generate_series(1, $MESSAGES) g;
VACUUM ANALYZE;
SQL
    ;;
    mysql) sql mysql "$url" <<SQL
INSERT INTO users (id, email, username) SELECT UNHEX(MD5(CONCAT('u', seq))), CONCAT('user', seq, '@example.com'), CONCAT('user', seq) FROM seq_1_to_1000;
INSERT INTO characters (id, name, system_prompt, tags, is_public, creator_id)
  SELECT UNHEX(MD5(CONCAT('c', seq))), CONCAT('Character ', seq), CONCAT('You are character ', seq), '["friendly"]', seq % 2 = 0, UNHEX(MD5(CONCAT('u', 1 + seq * 7 % 1000))) FROM seq_1_to_200;
INSERT INTO chats (chat_id, user_id, character_id)
  SELECT UNHEX(MD5(CONCAT('ch', seq))), UNHEX(MD5(CONCAT('u', 1 + seq * 13 % 1000))), UNHEX(MD5(CONCAT('c', 1 + seq * 17 % 200))) FROM seq_1_to_$chats;
INSERT INTO messages (id, chat_id, role, content, created_at)
  SELECT UNHEX(MD5(CONCAT('m', seq))), UNHEX(MD5(CONCAT('ch', 1 + seq % $chats))), IF(seq % 2 = 1, 'user', 'assistant'),
         REPEAT('Lorem ipsum dolor sit amet. ', 1 + seq % 6), NOW() - INTERVAL seq SECOND
  FROM seq_1_to_$MESSAGES;
ANALYZE TABLE users, characters, chats, messages;
SQL
    ;;
  esac
}

FAILURES=0
# fail LOG WHAT FILE: counts a failure and shows what happened.
fail() {
  FAILURES=$((FAILURES + 1))
  echo "soak: FAILED $2" >&2
  [ -f "$3" ] && sed 's/^/    /' "$3" >&2
  echo "FAILED $2" >>"$1"
}

# soak BACKEND APP: KILLS rounds of kill-up / re-run / check, kill-down / re-run / check.
# Prints one summary line per direction: backend app direction kills mid-run half-done failures.
soak() {
  local backend="$1" app="$2" url log="$WORK/$1-$2.log" out="$WORK/$1-$2.out"
  local up down from
  url="$(new_db "$backend" "$app")"
  export DATABASE_URL="$url"
  local d=("$BIN" -q --app "$app" --lock-timeout 300)
  case "$app" in
    avatar) up=(upgrade); down=(downgrade base --yes); from=0 ;;
    neurachar)
      up=(upgrade); down=(downgrade m20251212_000005_create_messages --yes)
      "${d[@]}" upgrade m20251212_000005_create_messages >"$out" 2>&1 || { fail "$log" "$backend $app: setup" "$out"; return; }
      echo "soak: $backend: generating $MESSAGES messages" >&2
      generate "$backend" "$url" >"$out" 2>&1 || { fail "$log" "$backend $app: data" "$out"; return; }
      ;;
  esac
  local -A kills=() mid=() half=() failed=()
  local i dir ms pid code alive
  for ((i = 1; i <= KILLS; i++)); do
    for dir in up down; do
      local cmd
      if [ "$dir" = up ]; then cmd=("${up[@]}"); else cmd=("${down[@]}"); fi
      ms=$((RANDOM % (MAX_KILL_MS + 1)))
      "${d[@]}" "${cmd[@]}" >/dev/null 2>&1 &
      pid=$!
      sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
      alive=0
      kill -0 "$pid" 2>/dev/null && alive=1
      kill -KILL "$pid" 2>/dev/null
      wait "$pid" 2>/dev/null
      kills[$dir]=$((${kills[$dir]:-0} + 1))
      mid[$dir]=$((${mid[$dir]:-0} + alive))
      local bad=0
      # Right after the kill the record must not lie: either the step is marked half-done,
      # or the schema is exactly what the record says.
      "${d[@]}" status --check >/dev/null 2>&1
      if [ $? = 13 ]; then
        half[$dir]=$((${half[$dir]:-0} + 1))
      elif ! "${d[@]}" check >"$out" 2>&1; then
        fail "$log" "$backend $app $dir #$i (killed after ${ms} ms): not marked half-done, yet check differs" "$out"; bad=1
      fi
      if ! "${d[@]}" "${cmd[@]}" >"$out" 2>&1; then
        fail "$log" "$backend $app $dir #$i (killed after ${ms} ms): re-running ${cmd[*]}" "$out"; bad=1
      fi
      if ! "${d[@]}" check >"$out" 2>&1; then
        fail "$log" "$backend $app $dir #$i (killed after ${ms} ms): check after the re-run" "$out"; bad=1
      fi
      "${d[@]}" status --check >"$out" 2>&1
      code=$?
      if { [ "$dir" = up ] && [ $code != 0 ]; } || { [ "$dir" = down ] && [ $code != 3 ]; }; then
        fail "$log" "$backend $app $dir #$i (killed after ${ms} ms): status --check exited $code" "$out"; bad=1
      fi
      failed[$dir]=$((${failed[$dir]:-0} + bad))
      if [ $bad = 1 ]; then
        # Put the database back where the next round starts, so one failure is counted once.
        "${d[@]}" upgrade >/dev/null 2>&1
        [ "$dir" = up ] || "${d[@]}" "${down[@]}" >/dev/null 2>&1
      fi
    done
    if [ $((i % 10)) = 0 ]; then echo "soak: $backend $app: $i of $KILLS rounds" >&2; fi
  done
  for dir in up down; do
    echo "$backend $app $dir ${kills[$dir]:-0} ${mid[$dir]:-0} ${half[$dir]:-0} ${failed[$dir]:-0}"
  done
}

started=$(date +%s)
RESULTS="$WORK/results"
: >"$RESULTS"
# One backend after the other in the background, both at once: the two servers are
# independent, and each run waits on its own server most of the time.
pids=()
for b in "${BACKENDS[@]}"; do
  for app in avatar neurachar; do DBS+=("$b:soak_$$_$app"); done
  ( for app in avatar neurachar; do soak "$b" "$app"; done ) >>"$RESULTS" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
total_failed=$(cat "$WORK"/*.log 2>/dev/null | grep -c '^FAILED' || true)

echo
echo "Kill soak: $KILLS kills per app and direction, SIGKILL after 0-${MAX_KILL_MS} ms, NeuraChar with $MESSAGES messages ($(($(date +%s) - started)) s, $("$BIN" --version | head -1))"
echo
echo "| backend | app | direction | kills | still running when killed | left half-done | failures |"
echo "|---|---|---|---|---|---|---|"
sort "$RESULTS" | while read -r b a dir k m h f; do
  case "$dir" in up) dir=upgrade ;; down) dir=downgrade ;; esac
  echo "| $b | $a | $dir | $k | $m | $h | $f |"
done
echo
echo "failures: $total_failed"
[ "$total_failed" = 0 ]
