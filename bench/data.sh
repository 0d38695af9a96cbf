#!/usr/bin/env bash
# NeuraChar's hot paths with and without the foreign-key indexes of
# m20251212_000006_add_foreign_key_indexes, on a realistic volume generated in SQL:
# opening a chat (its messages in order), deleting a chat (the cascade into messages) and
# deleting a user (the foreign-key checks on chats and characters). Times are the server's
# own (EXPLAIN ANALYZE "Execution Time", medians), so the client and the network drop out.
#
#   bench/data.sh           1,000 users, 200 characters, 10,000 chats, 1,000,000 messages
#   bench/data.sh --quick   a hundredth of that, to prove the script works
#
# Needs psql and the PostgreSQL the tests use (BENCH_PG_URL); builds the dist (fully optimised) binary and
# creates and drops its own database. A benchmark, not a test: it always exits 0.
set -euo pipefail
source "$(dirname "$0")/common.sh"

USERS=1000 CHARACTERS=200 CHATS=10000 PER_CHAT=100 REPEAT=15
case "${1:-}" in
  --quick) USERS=100 CHARACTERS=20 CHATS=100 PER_CHAT=100 REPEAT=3 ;;
  "") ;;
  -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) die "unknown argument '$1' (use --quick)" ;;
esac

need psql postgresql-client
[ -x "$PSQL" ] || die "psql ($PSQL) is not executable"
need cargo "a Rust toolchain (see README)"
build_release
new_db data URL
export DATABASE_URL="$URL"
q() { "$PSQL" "$URL" -qAtX -v ON_ERROR_STOP=1 "$@"; }

"$BIN" -q --app neurachar upgrade >/dev/null
echo "bench: generating $USERS users, $CHARACTERS characters, $CHATS chats, $((CHATS * PER_CHAT)) messages" >&2
started=$(date +%s)
q <<SQL
INSERT INTO users (id, email, username, created_at)
SELECT gen_random_uuid(), 'user' || g || '@example.com', 'user' || g,
       now() - interval '400 days' + g * interval '1 hour'
FROM generate_series(1, $USERS) g;

INSERT INTO characters (id, name, system_prompt, greeting_message, tags, is_public, creator_id)
SELECT gen_random_uuid(), 'Character ' || g, 'You are character ' || g || ', friendly and curious.',
       'Hello!', '["friendly"]'::jsonb, g % 2 = 0, u.ids[1 + (g * 7) % $USERS]
FROM generate_series(1, $CHARACTERS) g,
     (SELECT array_agg(id ORDER BY email) AS ids FROM users) u;

INSERT INTO chats (chat_id, user_id, character_id, created_at)
SELECT gen_random_uuid(), u.ids[1 + (g * 13) % $USERS], c.ids[1 + (g * 17) % $CHARACTERS],
       now() - interval '90 days' + g * interval '10 minutes'
FROM generate_series(1, $CHATS) g,
     (SELECT array_agg(id ORDER BY email) AS ids FROM users) u,
     (SELECT array_agg(id ORDER BY name) AS ids FROM characters) c;

-- Messages arrive interleaved across chats, as in a live service: inserted in time order, so a
-- chat's messages are spread over the table rather than stored next to each other.
INSERT INTO messages (id, chat_id, role, content, created_at)
SELECT gen_random_uuid(), ch.chat_id,
       CASE WHEN n % 2 = 1 THEN 'user' ELSE 'assistant' END,
       repeat('Lorem ipsum dolor sit amet. ', 2 + (n * 7) % 12),
       now() - interval '30 days' + n * interval '1 hour' + (ch.rn % 3600) * interval '1 second'
FROM (SELECT chat_id, row_number() OVER (ORDER BY chat_id) AS rn FROM chats) ch,
     generate_series(1, $PER_CHAT) n
ORDER BY n, ch.rn;

-- A user with nothing of their own: deleting them only runs the foreign-key checks.
INSERT INTO users (id, email) VALUES ('00000000-0000-0000-0000-00000000b0b0', 'nobody@example.com');
VACUUM ANALYZE;
SQL
echo "bench: generated in $(($(date +%s) - started)) s; messages: $(q -c "SELECT pg_size_pretty(pg_total_relation_size('messages'))")" >&2

CHAT="$(q -c "SELECT chat_id FROM chats ORDER BY chat_id OFFSET $((CHATS / 2)) LIMIT 1")"
LOAD="SELECT id, role, content, created_at FROM messages WHERE chat_id = '$CHAT' ORDER BY created_at"
DEL_CHAT="DELETE FROM chats WHERE chat_id = '$CHAT'"
DEL_USER="DELETE FROM users WHERE id = '00000000-0000-0000-0000-00000000b0b0'"

# exec_ms SQL: the median server execution time in ms over REPEAT runs (after one warm-up),
# each in a transaction that is rolled back, so deletes delete nothing for good. For a
# delete, the time includes the foreign-key triggers (the cascade and the checks).
exec_ms() {
  local i
  for i in $(seq 0 "$REPEAT"); do
    q -c "BEGIN" -c "EXPLAIN (ANALYZE, TIMING OFF, COSTS OFF) $1" -c "ROLLBACK" \
      | sed -n 's/^Execution Time: \([0-9.]*\) ms$/\1/p' \
      | { if [ "$i" -gt 0 ]; then cat; else cat >/dev/null; fi; }
  done | median
}

plan_of() { q -c "EXPLAIN (COSTS OFF) $1" | tr '\n' ' ' | sed -e 's/  */ /g' -e 's/ $//'; }

measure() {
  T_LOAD="$(exec_ms "$LOAD")"
  T_DEL_CHAT="$(exec_ms "$DEL_CHAT")"
  T_DEL_USER="$(exec_ms "$DEL_USER")"
  P_LOAD="$(plan_of "$LOAD")"
}

# With the indexes (head), then without them (the migration rolled back), then the build.
measure
with=("$T_LOAD" "$T_DEL_CHAT" "$T_DEL_USER")
plan_with="$P_LOAD"
"$BIN" -q --app neurachar downgrade -1 --yes >/dev/null
q -c "ANALYZE"
measure
without=("$T_LOAD" "$T_DEL_CHAT" "$T_DEL_USER")
plan_without="$P_LOAD"
build_started=$(date +%s%N)
"$BIN" -q --app neurachar upgrade >/dev/null
build_ms=$(( ($(date +%s%N) - build_started) / 1000000 ))

echo
echo "## NeuraChar hot paths, with and without the foreign-key indexes"
echo
machine
echo "- data: $USERS users, $CHARACTERS characters, $CHATS chats, $((CHATS * PER_CHAT)) messages ($PER_CHAT per chat)"
echo "- server execution time (EXPLAIN ANALYZE), median of $REPEAT runs after one warm-up"
echo
echo "| operation | without indexes (ms) | with indexes (ms) | speed-up |"
echo "|---|---:|---:|---:|"
names=("open a chat: its $PER_CHAT messages in order" "delete a chat (cascade into messages)" "delete a user (checks on chats, characters)")
for i in 0 1 2; do
  echo "| ${names[$i]} | ${without[$i]} | ${with[$i]} | $(ratio "${without[$i]}" "${with[$i]}")× |"
done
echo
echo "- plan without: \`$plan_without\`"
echo "- plan with: \`$plan_with\`"
echo "- \`dbtool --app neurachar upgrade\` building the four indexes CONCURRENTLY: $build_ms ms"
