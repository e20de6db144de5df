#!/bin/bash
# The ledger's benchmarks, with pgbench, on a throwaway cluster of their own.
# Each operation runs against the hand-written SQL it replaces, in the same
# run, and prints the ratio (extension / raw; higher is better for tps).
#
#   1. ledger_record vs raw INSERT ... ON CONFLICT DO NOTHING, 1, 4 and 8
#      clients, new keys.  Two raw baselines: a table shaped like
#      pgi_ledger_key (same columns, indexes and checks: the extension's
#      overhead alone) and a minimal dedup table (key text PRIMARY KEY).
#   2. ledger_record_batch of 10k keys vs 10k single ledger_record calls.
#   3. Draining a queue of LEDGER_DRAIN_KEYS keys at 8 clients: claim 10
#      (committed, as a worker holding a lease would), then complete each
#      (committed one by one, as each key's effect would be), vs the raw SKIP
#      LOCKED CTE and one UPDATE per key on a table shaped like
#      pgi_ledger_key (and, for reference, one set-based UPDATE for all 10);
#      then proves that no key was handed out twice (attempts = 1, tokens
#      distinct) and none was lost (all done).
#
#   LEDGER_BENCH_SECONDS=N (default 10) per pgbench run of section 1
#   LEDGER_BENCH_CLIENTS="1 4 8" client counts of section 1
#   LEDGER_DRAIN_KEYS=N    (default 1000000), LEDGER_DRAIN_CLIENTS=N (default 8)
# Not a test: nothing here passes or fails on speed.
set -eu
cd "$(dirname "$0")/.."
. test/lib.sh

SECONDS_PER_RUN=${LEDGER_BENCH_SECONDS:-10}
DRAIN_KEYS=${LEDGER_DRAIN_KEYS:-1000000}
DRAIN_CLIENTS=${LEDGER_DRAIN_CLIENTS:-8}
RECORD_CLIENTS=${LEDGER_BENCH_CLIENTS:-1 4 8}

unset PGHOST PGPORT PGUSER PGDATABASE
cluster_start shared_buffers=512MB max_wal_size=10GB checkpoint_timeout=1h \
	max_connections=50
psql -X -q -c "CREATE DATABASE ledger_bench"
export PGDATABASE=ledger_bench
psql -X -q -c "CREATE EXTENSION pg_idempotent"
work=$(mktemp -d)
chmod 755 "$work"

q() { psql -X -q -At -c "$1"; }

# tps of one pgbench run of a script given on stdin
pgb() {
	local clients=$1
	shift
	cat >"$work/script.sql"
	pgbench -n -M prepared -c "$clients" -j "$clients" "$@" -f "$work/script.sql" >"$work/out" 2>&1 || true
	awk '/^tps = / { tps = $3 } END { print tps + 0 }' "$work/out"
	grep -m1 -E 'ERROR|error' "$work/out" >&2 || true
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

echo
echo "== ledger: ledger_record vs raw INSERT ... ON CONFLICT DO NOTHING (new keys, ${SECONDS_PER_RUN} s per run)"
q "SELECT ledger_create('rec')" >/dev/null
q "CREATE TABLE raw_key (LIKE pgi_ledger_key INCLUDING ALL)"
q "ALTER TABLE raw_key ALTER COLUMN token DROP DEFAULT"
q "CREATE TABLE raw_min (key text COLLATE \"C\" PRIMARY KEY)"
printf '  %-8s %12s %12s %12s %10s %10s\n' clients ledger_record raw_same raw_min vs_same vs_min
for c in $RECORD_CLIENTS; do
	q "CHECKPOINT"
	ext=$(pgb "$c" -T "$SECONDS_PER_RUN" <<'EOF'
\set k random(1, 1000000000000)
SELECT ledger_record('rec', 'k' || :k);
EOF
)
	q "CHECKPOINT"
	same=$(pgb "$c" -T "$SECONDS_PER_RUN" <<'EOF'
\set k random(1, 1000000000000)
INSERT INTO raw_key (ledger_id, key, status, token, created_at, updated_at) VALUES (1, 'k' || :k, 'done', NULL, clock_timestamp(), clock_timestamp()) ON CONFLICT (ledger_id, key) DO NOTHING;
EOF
)
	q "CHECKPOINT"
	min=$(pgb "$c" -T "$SECONDS_PER_RUN" <<'EOF'
\set k random(1, 1000000000000)
INSERT INTO raw_min (key) VALUES ('k' || :k) ON CONFLICT DO NOTHING;
EOF
)
	printf '  %-8s %12.0f %12.0f %12.0f %10s %10s\n' "$c" "$ext" "$same" "$min" \
		"$(ratio "$ext" "$same")" "$(ratio "$ext" "$min")"
done

echo
echo "== ledger: ledger_record_batch of 10k keys vs 10k single ledger_record calls (one transaction each, best of 3)"
psql -X -q -At <<'EOF'
SELECT ledger_create('batch') \g /dev/null
CREATE FUNCTION pg_temp.ms(stmt text) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz := clock_timestamp();
BEGIN
	EXECUTE stmt;
	RETURN round(extract(epoch FROM clock_timestamp() - t0) * 1000, 1);
END $$;
SELECT format('  %-36s %8s ms', 'ledger_record_batch, 10k new keys',
		min(pg_temp.ms(format($q$SELECT count(*) FROM ledger_record_batch('batch', ARRAY(SELECT 'b%s-' || g FROM generate_series(1, 10000) g))$q$, r))))
	FROM generate_series(1, 3) r;
SELECT format('  %-36s %8s ms', '10k ledger_record calls, new keys',
		min(pg_temp.ms(format($q$SELECT count(*) FILTER (WHERE ledger_record('batch', 's%s-' || g)) FROM generate_series(1, 10000) g$q$, r))))
	FROM generate_series(1, 3) r;
SELECT format('  %-36s %8s ms', 'ledger_record_batch, 10k seen keys',
		min(pg_temp.ms($q$SELECT count(*) FROM ledger_record_batch('batch', ARRAY(SELECT 'b1-' || g FROM generate_series(1, 10000) g))$q$)))
	FROM generate_series(1, 3) r;
SELECT format('  %-36s %8s ms', '10k ledger_record calls, seen keys',
		min(pg_temp.ms($q$SELECT count(*) FILTER (WHERE ledger_record('batch', 's1-' || g)) FROM generate_series(1, 10000) g$q$)))
	FROM generate_series(1, 3) r;
EOF

echo
echo "== ledger: draining $DRAIN_KEYS keys at $DRAIN_CLIENTS clients, claim 10 then complete them"
q "SELECT ledger_create('drain', lease => '1 hour')" >/dev/null
q "SELECT ledger_enqueue('drain', ARRAY(SELECT 'k' || g FROM generate_series(1, $DRAIN_KEYS) g))" >/dev/null
drain_id=$(q "SELECT id FROM pgi_ledger WHERE name = 'drain'")
q "CREATE TABLE raw_queue (LIKE pgi_ledger_key INCLUDING ALL)"
q "CREATE SEQUENCE raw_token_seq"
q "ALTER TABLE raw_queue ALTER COLUMN token SET DEFAULT nextval('raw_token_seq')"
q "INSERT INTO raw_queue SELECT * FROM pgi_ledger_key WHERE ledger_id = $drain_id"
q "CREATE TABLE raw_queue_set (LIKE raw_queue INCLUDING ALL)"
q "INSERT INTO raw_queue_set SELECT * FROM raw_queue"
q "VACUUM ANALYZE pgi_ledger_key, raw_queue, raw_queue_set"
q "CHECKPOINT"
per_client=$(( (DRAIN_KEYS / 10 + DRAIN_CLIENTS - 1) / DRAIN_CLIENTS + 1 ))

# A worker completes each key in the transaction of its effect, so one
# completion per key, each its own transaction, on both sides.  The claim's
# 10 keys and tokens go to pgbench variables k1..k10, t1..t10 ('' and 0 when
# fewer were claimed: such a completion changes nothing).
gset_cols() {
	local i cols=""
	for i in $(seq 1 10); do
		cols="$cols${cols:+, }coalesce(k[$i], '') AS k$i, coalesce(t[$i], 0) AS t$i"
	done
	echo "$cols"
}
claim_cte="WITH c AS (SELECT k.key FROM QUEUE k WHERE k.ledger_id = $drain_id AND k.available_at <= clock_timestamp() AND k.status = ANY ('{pending,processing,failed}') ORDER BY k.available_at LIMIT 10 FOR UPDATE SKIP LOCKED), u AS (UPDATE QUEUE k SET status = 'processing', token = DEFAULT, attempts = k.attempts + 1, available_at = clock_timestamp() + interval '1 hour', updated_at = clock_timestamp() WHERE k.ledger_id = $drain_id AND k.key = ANY (ARRAY(SELECT c.key FROM c)) RETURNING k.key, k.token)"
{
	echo "SELECT $(gset_cols) FROM (SELECT array_agg(key) AS k, array_agg(token) AS t FROM ledger_claim_next('drain', 10)) s \\gset"
	for i in $(seq 1 10); do
		echo "SELECT ledger_complete('drain', :k$i, :t$i);"
	done
} >"$work/ext_drain.sql"
{
	echo "${claim_cte//QUEUE/raw_queue} SELECT $(gset_cols) FROM (SELECT array_agg(key) AS k, array_agg(token) AS t FROM u) s \\gset"
	for i in $(seq 1 10); do
		echo "UPDATE raw_queue SET status = 'done', result = NULL, available_at = NULL, updated_at = clock_timestamp() WHERE ledger_id = $drain_id AND key = :k$i AND token = :t$i AND status = 'processing';"
	done
} >"$work/raw_drain.sql"
{
	echo "${claim_cte//QUEUE/raw_queue_set} SELECT coalesce(array_agg(key)::text, '{}') AS keys, coalesce(array_agg(token)::text, '{}') AS tokens FROM u \\gset"
	echo "UPDATE raw_queue_set k SET status = 'done', result = NULL, available_at = NULL, updated_at = clock_timestamp() FROM unnest(:keys::text[], :tokens::bigint[]) AS b(key, token) WHERE k.ledger_id = $drain_id AND k.key = b.key AND k.token = b.token AND k.status = 'processing';"
} >"$work/raw_set_drain.sql"

drain() {
	q "CHECKPOINT"
	pgb "$DRAIN_CLIENTS" -t "$per_client" <"$1"
}
ext=$(drain "$work/ext_drain.sql")
raw=$(drain "$work/raw_drain.sql")
rawset=$(drain "$work/raw_set_drain.sql")
printf '  %-44s %8.0f claims/s (x10 keys)\n' \
	"ledger_claim_next(10) + 10 ledger_complete" "$ext" \
	"raw SKIP LOCKED CTE + 10 UPDATEs" "$raw" \
	"raw SKIP LOCKED CTE + 1 set-based UPDATE" "$rawset"
echo "  ratio extension / raw, per-key completion: $(ratio "$ext" "$raw")"
echo "  ratio extension / raw, set-based completion: $(ratio "$ext" "$rawset")"
for t in "pgi_ledger_key WHERE ledger_id = $drain_id" raw_queue raw_queue_set; do
	echo "  $(q "SELECT format('%-15s done %s, not done %s, handed out twice %s, distinct tokens %s',
		split_part('$t', ' ', 1), count(*) FILTER (WHERE status = 'done'), count(*) FILTER (WHERE status <> 'done'),
		count(*) FILTER (WHERE attempts <> 1), count(DISTINCT token)) FROM $t")"
done

rm -rf "$work"
cluster_stop
