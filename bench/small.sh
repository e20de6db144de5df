#!/bin/bash
# Small calls at streaming rates (issue 19): the extension's call against
# the raw statement a user would write, with pgbench, alternated in one run
# (bench/pgbench_pairs.sh: best against best, and the median of the rounds'
# paired ratios; higher is better, 1.00 is the raw statement's tps):
#
#   a. 1 row from a staging table: idempotent_upsert (each client its own
#      one-row staging table, sm_stg_<client>) against INSERT ... SELECT ...
#      ON CONFLICT DO UPDATE of the same row (from one table keyed by
#      client).  The row is the same at every call: the extension finds it
#      unchanged and writes nothing, the raw statement rewrites it.
#   b. 1 row as JSON, a random key of the table and a random amount:
#      idempotent_upsert_json against jsonb_populate_recordset + ON CONFLICT
#      DO UPDATE.
#   c. 200-row JSON micro-batches (SMALL_BATCH_CLIENTS clients), keys drawn
#      from 20,000 so batches overlap each other and repeat keys inside,
#      each row with its own version: idempotent_upsert_json with
#      version_column and on_duplicate => 'last' against the careful raw
#      statement (DISTINCT ON + ORDER BY + ON CONFLICT DO UPDATE ... WHERE
#      the version is newer).
#   d. ledger_record, a new key per call, against INSERT ... ON CONFLICT DO
#      NOTHING into a table shaped like the ledger's, and (a second line,
#      "fair") into the dedup table a user would write by hand, (key text
#      PRIMARY KEY, recorded_at timestamptz), issue 15's baseline.
#   e. idempotent_history of a one-row staging table (as in a) against the
#      UPDATE that closes a changed current row and the INSERT of the new
#      version (the same row each call: both find nothing to write).
#
#   SMALL_SECONDS=N   (default 5) per pgbench run
#   SMALL_ROUNDS=N    (default 3) runs of each contender, alternated
#   SMALL_CLIENTS="1 4 8"        client counts of a, b, d, e
#   SMALL_BATCH_CLIENTS="8"      client counts of c
#   SMALL_WORKLOADS="a b c d e"  which to run
#   SMALL_KEYS=N      (default 100000) rows in the targets
# Starts a throwaway cluster of its own.  Not a test: nothing here passes or
# fails on speed.
set -eu
cd "$(dirname "$0")/.."
. test/lib.sh
. bench/pgbench_pairs.sh

SECS=${SMALL_SECONDS:-5}
ROUNDS=${SMALL_ROUNDS:-3}
CLIENTS=${SMALL_CLIENTS:-1 4 8}
BATCH_CLIENTS=${SMALL_BATCH_CLIENTS:-8}
WORKLOADS=${SMALL_WORKLOADS:-a b c d e}
KEYS=${SMALL_KEYS:-100000}
maxc=1
for c in $CLIENTS $BATCH_CLIENTS; do [ "$c" -gt "$maxc" ] && maxc=$c; done

unset PGHOST PGPORT PGUSER PGDATABASE
cluster_start shared_buffers=512MB max_wal_size=10GB checkpoint_timeout=1h \
	max_connections=50
psql -X -q -c "CREATE DATABASE small_bench"
export PGDATABASE=small_bench
PGB_DIR=$(mktemp -d)
chmod 755 "$PGB_DIR"

psql -X -q -v ON_ERROR_STOP=1 -v keys="$KEYS" -v maxc="$maxc" <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION pg_idempotent;
-- a, b: the extension's target and the raw statement's, alike
CREATE TABLE sm_t (id bigint PRIMARY KEY, customer_id int, amount numeric(12,2), status text);
CREATE TABLE sm_r (LIKE sm_t INCLUDING ALL);
INSERT INTO sm_t SELECT g, g % 5000, (g % 10000) / 100.0, 'loaded' FROM generate_series(1, :keys) g;
INSERT INTO sm_r SELECT * FROM sm_t;
CREATE TABLE sm_stg_all (client int PRIMARY KEY, id bigint, customer_id int, amount numeric(12,2), status text);
INSERT INTO sm_stg_all SELECT c, 1 + c * 997, c, 9.99, 'staged' FROM generate_series(0, :maxc - 1) c;
SELECT format('CREATE TABLE sm_stg_%s AS SELECT id, customer_id, amount, status FROM sm_stg_all WHERE client = %s', c, c)
	FROM generate_series(0, :maxc - 1) c \gexec
-- c: versioned rows, 1000 batches of 200 rows over 20,000 keys
CREATE TABLE sm_v (id bigint PRIMARY KEY, ver bigint NOT NULL, amount numeric(12,2), status text);
CREATE TABLE sm_vr (LIKE sm_v INCLUDING ALL);
INSERT INTO sm_v SELECT g, 0, 0, 'loaded' FROM generate_series(1, 20000) g;
INSERT INTO sm_vr SELECT * FROM sm_v;
CREATE TABLE sm_batch (n int PRIMARY KEY, doc jsonb NOT NULL);
INSERT INTO sm_batch
SELECT b, jsonb_agg(jsonb_build_object('id', 1 + (hashint8(b * 1000 + i) & 2147483647) % 20000,
		'ver', b * 1000 + i, 'amount', ((b + i) % 10000) / 100.0, 'status', 'batch ' || b))
	FROM generate_series(1, 1000) b, generate_series(1, 200) i GROUP BY b;
-- d
SELECT ledger_create('rec') \g /dev/null
CREATE TABLE raw_key (LIKE pgi_ledger_key INCLUDING ALL);
ALTER TABLE raw_key ALTER COLUMN token DROP DEFAULT;
CREATE TABLE raw_fair (key text COLLATE "C" PRIMARY KEY, recorded_at timestamptz NOT NULL DEFAULT now());
-- e: histories of the a rows, one current version each
CREATE TABLE sm_h (id bigint, customer_id int, amount numeric(12,2), status text,
	valid_from timestamptz NOT NULL, valid_to timestamptz, PRIMARY KEY (id, valid_from));
CREATE TABLE sm_hr (LIKE sm_h INCLUDING ALL);
INSERT INTO sm_h SELECT g, g % 5000, (g % 10000) / 100.0, 'loaded', '2025-01-01', NULL FROM generate_series(1, :keys) g;
INSERT INTO sm_hr SELECT * FROM sm_h;
VACUUM ANALYZE;
SQL

# a
cat >"$PGB_DIR/a_ext.sql" <<'EOF'
SELECT * FROM idempotent_upsert('sm_t', ('sm_stg_' || :client_id::int)::regclass);
EOF
cat >"$PGB_DIR/a_raw.sql" <<'EOF'
INSERT INTO sm_r AS t (id, customer_id, amount, status) SELECT id, customer_id, amount, status FROM sm_stg_all WHERE client = :client_id ON CONFLICT (id) DO UPDATE SET customer_id = excluded.customer_id, amount = excluded.amount, status = excluded.status;
EOF
# b
json1="jsonb_build_array(jsonb_build_object('id', :id::bigint, 'customer_id', :id::int % 5000, 'amount', :amt::int / 100.0, 'status', 'json'))"
cat >"$PGB_DIR/b_ext.sql" <<EOF
\\set id random(1, $KEYS)
\\set amt random(1, 1000000)
SELECT * FROM idempotent_upsert_json('sm_t', $json1);
EOF
cat >"$PGB_DIR/b_raw.sql" <<EOF
\\set id random(1, $KEYS)
\\set amt random(1, 1000000)
INSERT INTO sm_r AS t SELECT * FROM jsonb_populate_recordset(NULL::sm_r, $json1) ON CONFLICT (id) DO UPDATE SET customer_id = excluded.customer_id, amount = excluded.amount, status = excluded.status;
EOF
# c
cat >"$PGB_DIR/c_ext.sql" <<'EOF'
\set n random(1, 1000)
SELECT * FROM idempotent_upsert_json('sm_v', (SELECT doc FROM sm_batch WHERE n = :n), version_column => 'ver', on_duplicate => 'last');
EOF
cat >"$PGB_DIR/c_raw.sql" <<'EOF'
\set n random(1, 1000)
INSERT INTO sm_vr AS t SELECT DISTINCT ON (id) * FROM jsonb_populate_recordset(NULL::sm_vr, (SELECT doc FROM sm_batch WHERE n = :n)) ORDER BY id, ver DESC ON CONFLICT (id) DO UPDATE SET ver = excluded.ver, amount = excluded.amount, status = excluded.status WHERE t.ver < excluded.ver;
EOF
# d
cp bench/pgbench/ledger_record.sql "$PGB_DIR/d_ext.sql"
cp bench/pgbench/ledger_raw_same.sql "$PGB_DIR/d_raw.sql"
cp bench/pgbench/ledger_raw_fair.sql "$PGB_DIR/d_fair.sql"
# e: the user's two statements in one transaction, as the call is one
cat >"$PGB_DIR/e_ext.sql" <<'EOF'
SELECT * FROM idempotent_history('sm_h', ('sm_stg_' || :client_id::int)::regclass, as_of => '2025-06-01');
EOF
cat >"$PGB_DIR/e_raw.sql" <<'EOF'
BEGIN;
UPDATE sm_hr t SET valid_to = '2025-06-01' FROM sm_stg_all s WHERE s.client = :client_id AND t.id = s.id AND t.valid_to IS NULL AND (t.customer_id, t.amount, t.status) IS DISTINCT FROM (s.customer_id, s.amount, s.status);
INSERT INTO sm_hr SELECT s.id, s.customer_id, s.amount, s.status, '2025-06-01', NULL FROM sm_stg_all s LEFT JOIN sm_hr t ON t.id = s.id AND t.valid_to IS NULL WHERE s.client = :client_id AND t.id IS NULL;
END;
EOF

declare -A title=(
	[a]="a. 1 row from a staging table: idempotent_upsert vs INSERT ... SELECT ... ON CONFLICT DO UPDATE"
	[b]="b. 1 row as JSON: idempotent_upsert_json vs jsonb_populate_recordset + ON CONFLICT DO UPDATE"
	[c]="c. 200-row JSON batches, overlapping keys: idempotent_upsert_json (version, 'last') vs DISTINCT ON + ORDER BY + ON CONFLICT"
	[d]="d. ledger_record, new key per call vs INSERT ... ON CONFLICT DO NOTHING (raw: pgi_ledger_key's shape; fair: key text PRIMARY KEY, recorded_at)"
	[e]="e. idempotent_history, 1 row per call vs UPDATE (close) + INSERT"
)
# contenders besides the raw statement, each on a line of its own
declare -A extra=([d]="fair")
echo
echo "== small calls: tps, best of $ROUNDS alternated runs of $SECS s, and the median of the rounds' paired ratios"
printf '  %-3s %8s %10s %10s %7s %7s\n' "" clients extension raw best paired
for w in $WORKLOADS; do
	echo "  ${title[$w]}"
	clients=$CLIENTS
	[ "$w" = c ] && clients=$BATCH_CLIENTS
	for c in $clients; do
		names="${w}_ext ${w}_raw"
		for x in ${extra[$w]:-}; do names="$names ${w}_$x"; done
		pgbench_compare "$c" "$SECS" "$ROUNDS" "${w}_ext" "$names"
		printf '  %-3s %8s %10.0f %10.0f %7s %7s\n' "$w" "$c" "${BEST[${w}_ext]}" "${BEST[${w}_raw]}" \
			"$(ratio "${BEST[${w}_ext]}" "${BEST[${w}_raw]}")" "${PAIRED[${w}_raw]}"
		for x in ${extra[$w]:-}; do
			printf '  %-3s %8s %10s %10.0f %7s %7s   (raw: %s)\n' "$w" "$c" "" "${BEST[${w}_$x]}" \
				"$(ratio "${BEST[${w}_ext]}" "${BEST[${w}_$x]}")" "${PAIRED[${w}_$x]}" "$x"
		done
	done
done

# e writes the same rows on both sides (a and b share targets, and b's
# random rows overwrite a's, so only e's are compared)
psql -X -q -At -c "SELECT 'e: same history: ' || NOT EXISTS ((TABLE sm_h EXCEPT TABLE sm_hr) UNION ALL (TABLE sm_hr EXCEPT TABLE sm_h))"
rm -rf "$PGB_DIR"
cluster_stop
