#!/bin/bash
# The ledger's benchmarks, with pgbench, on a throwaway cluster of their own.
# Each operation runs against the hand-written SQL it replaces, in the same
# run, and prints the ratio (extension / raw; higher is better for tps).
#
#   1. ledger_record vs raw INSERT ... ON CONFLICT DO NOTHING, 1, 4 and 8
#      clients, new keys.  Three raw baselines: a table shaped like
#      pgi_ledger_key (same columns, indexes and checks: the extension's
#      overhead alone), the table a user would hand-write for the same
#      promise (key text PRIMARY KEY, recorded_at timestamptz: they need the
#      time to prune), and a minimal dedup table (key text PRIMARY KEY).
#   1b. Where the difference goes: microseconds per insert of 30k new keys
#      in one transaction (no commits, so only the per-call cost shows),
#      adding one thing at a time from the minimal table to ledger_record.
#   2. ledger_record_batch of 10k keys vs 10k single ledger_record calls.
#   3. Draining a queue of LEDGER_DRAIN_KEYS keys at 8 clients: claim 10
#      (committed, as a worker holding a lease would), then complete them,
#      committed, in two ways: each key on its own (as each key's effect
#      would be: ledger_complete vs one raw UPDATE per key) and all ten at
#      once (ledger_complete_batch vs one raw set-based UPDATE), against the
#      raw SKIP LOCKED CTE on tables shaped like pgi_ledger_key; then proves
#      that no key was handed out twice (attempts = 1, tokens distinct) and
#      none was lost (all done).
#   4. Each call on a ledger of LEDGER_BIG_KEYS keys against the same call on
#      one of 10k: every call must stay an index lookup.
#
#   LEDGER_BENCH_SECONDS=N (default 10) per pgbench run of section 1
#   LEDGER_BENCH_ROUNDS=N  (default 3) runs of each in section 1, the best counts
#   LEDGER_BENCH_CLIENTS="1 4 8" client counts of section 1
#   LEDGER_DRAIN_KEYS=N    (default 1000000), LEDGER_DRAIN_CLIENTS=N (default 8)
#   LEDGER_DRAIN_ROUNDS=N  (default 3) rounds the drain keys are split into
#   LEDGER_BIG_KEYS=N      (default 10000000) keys of the big ledger of section 4
# Not a test: nothing here passes or fails on speed.
set -eu
cd "$(dirname "$0")/.."
. test/lib.sh

SECONDS_PER_RUN=${LEDGER_BENCH_SECONDS:-10}
DRAIN_KEYS=${LEDGER_DRAIN_KEYS:-1000000}
DRAIN_CLIENTS=${LEDGER_DRAIN_CLIENTS:-8}
DRAIN_ROUNDS=${LEDGER_DRAIN_ROUNDS:-3}
RECORD_CLIENTS=${LEDGER_BENCH_CLIENTS:-1 4 8}
ROUNDS=${LEDGER_BENCH_ROUNDS:-3}
BIG_KEYS=${LEDGER_BIG_KEYS:-10000000}

unset PGHOST PGPORT PGUSER PGDATABASE
cluster_start shared_buffers=512MB max_wal_size=10GB checkpoint_timeout=1h \
	max_connections=50
psql -X -q -c "CREATE DATABASE ledger_bench"
export PGDATABASE=ledger_bench
psql -X -q -c "CREATE EXTENSION pg_idempotent"
work=$(mktemp -d)
chmod 755 "$work"

q() { psql -X -q -At -c "$1"; }

. bench/pgbench_pairs.sh
PGB_DIR=$work

echo
echo "== ledger: ledger_record vs raw INSERT ... ON CONFLICT DO NOTHING (new keys, tps, best of $ROUNDS runs of ${SECONDS_PER_RUN} s)"
q "SELECT ledger_create('rec')" >/dev/null
q "CREATE TABLE raw_key (LIKE pgi_ledger_key INCLUDING ALL)"
q "ALTER TABLE raw_key ALTER COLUMN token DROP DEFAULT"
q "CREATE TABLE raw_min (key text COLLATE \"C\" PRIMARY KEY)"
q "CREATE TABLE raw_fair (key text COLLATE \"C\" PRIMARY KEY, recorded_at timestamptz NOT NULL DEFAULT now())"
printf '  %-8s %13s %9s %9s %9s %8s %8s %8s   %s\n' clients ledger_record raw_same raw_fair raw_min vs_same vs_fair vs_min \
	"paired: vs_same vs_fair vs_min"
# One pgbench script per contender, alternated (bench/pgbench_pairs.sh);
# ledger_record next to raw_same, before it in one round and after it in
# the next.
# (ledger_record, raw_same and raw_fair are shared with bench/small.sh)
cp bench/pgbench/ledger_record.sql "$work/rec_ext.sql"
cp bench/pgbench/ledger_raw_same.sql "$work/rec_same.sql"
cp bench/pgbench/ledger_raw_fair.sql "$work/rec_fair.sql"
cat >"$work/rec_min.sql" <<'EOF'
\set k random(1, 1000000000000)
INSERT INTO raw_min (key) VALUES ('k' || :k) ON CONFLICT DO NOTHING;
EOF
for c in $RECORD_CLIENTS; do
	pgbench_compare "$c" "$SECONDS_PER_RUN" "$ROUNDS" rec_ext "rec_same rec_ext rec_fair rec_min"
	printf '  %-8s %13.0f %9.0f %9.0f %9.0f %8s %8s %8s   %14s %7s %6s\n' "$c" "${BEST[rec_ext]}" "${BEST[rec_same]}" \
		"${BEST[rec_fair]}" "${BEST[rec_min]}" "$(ratio "${BEST[rec_ext]}" "${BEST[rec_same]}")" \
		"$(ratio "${BEST[rec_ext]}" "${BEST[rec_fair]}")" "$(ratio "${BEST[rec_ext]}" "${BEST[rec_min]}")" \
		"${PAIRED[rec_same]}" "${PAIRED[rec_fair]}" "${PAIRED[rec_min]}"
done

echo
echo "== ledger: where ledger_record's time goes (microseconds per new key, 30k in one transaction, best of 3)"
q "CREATE TABLE raw_fair_id (ledger_id int NOT NULL, key text COLLATE \"C\", recorded_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (ledger_id, key))"
q "CREATE TABLE raw_cols (LIKE pgi_ledger_key INCLUDING DEFAULTS)"
q "ALTER TABLE raw_cols ALTER COLUMN token DROP DEFAULT, ADD PRIMARY KEY (ledger_id, key)"
step() {
	cat <<EOF
CREATE FUNCTION pg_temp.$1(n int) RETURNS numeric LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz := clock_timestamp(); p text := md5(random()::text);
BEGIN
	FOR i IN 1..n LOOP $2; END LOOP;
	RETURN round(extract(epoch FROM clock_timestamp() - t0) * 1e6 / n, 1);
END \$\$;
SELECT format('  %-52s %6s', '$3', min(pg_temp.$1(30000))) FROM generate_series(1, 3);
EOF
}
{
	step s1 "INSERT INTO raw_min (key) VALUES (p || i) ON CONFLICT DO NOTHING" "raw_min: key text PRIMARY KEY"
	step s2 "INSERT INTO raw_fair (key) VALUES (p || i) ON CONFLICT DO NOTHING" "raw_fair: + recorded_at"
	step s3 "INSERT INTO raw_fair_id (ledger_id, key) VALUES (1, p || i) ON CONFLICT DO NOTHING" "+ ledger_id in the primary key"
	step s4 "INSERT INTO raw_cols (ledger_id, key, status, token, created_at, updated_at) VALUES (1, p || i, 'done', NULL, clock_timestamp(), clock_timestamp()) ON CONFLICT (ledger_id, key) DO NOTHING" "+ the other columns of pgi_ledger_key"
	step s5 "INSERT INTO raw_key (ledger_id, key, status, token, created_at, updated_at) VALUES (1, p || i, 'done', NULL, clock_timestamp(), clock_timestamp()) ON CONFLICT (ledger_id, key) DO NOTHING" "+ its claim_next and prune indexes (raw_same)"
	step s6 "INSERT INTO raw_key (ledger_id, key, status, token, created_at, updated_at) SELECT l.id, p || i, 'done', NULL, clock_timestamp(), clock_timestamp() FROM pgi_ledger l WHERE l.name = 'rec' ON CONFLICT (ledger_id, key) DO NOTHING" "+ the ledger looked up by name"
	step s7 "PERFORM ledger_record('rec', p || i)" "ledger_record (+ the function call, SPI)"
} | psql -X -q -At

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
round_keys=$(((DRAIN_KEYS + DRAIN_ROUNDS - 1) / DRAIN_ROUNDS))
echo "== ledger: draining $((round_keys * DRAIN_ROUNDS)) keys at $DRAIN_CLIENTS clients, claim 10 then complete them"
echo "   ($DRAIN_ROUNDS rounds of $round_keys keys each, the order of the drains alternating)"
# the raw queues hold only their own keys: so must pgi_ledger_key, which
# holds the millions the sections above recorded
q "SELECT ledger_drop(name) FROM pgi_ledger" >/dev/null
q "VACUUM pgi_ledger_key"
q "SELECT ledger_create('drain', lease => '1 hour')" >/dev/null
q "SELECT ledger_create('drain_batch', lease => '1 hour')" >/dev/null
drain_id=$(q "SELECT id FROM pgi_ledger WHERE name = 'drain'")
batch_id=$(q "SELECT id FROM pgi_ledger WHERE name = 'drain_batch'")
q "CREATE TABLE raw_queue (LIKE pgi_ledger_key INCLUDING ALL)"
q "CREATE SEQUENCE raw_token_seq"
q "ALTER TABLE raw_queue ALTER COLUMN token SET DEFAULT nextval('raw_token_seq')"
q "CREATE TABLE raw_queue_set (LIKE raw_queue INCLUDING ALL)"
per_client=$(( (round_keys / 10 + DRAIN_CLIENTS - 1) / DRAIN_CLIENTS + 1 ))

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
} >"$work/rawset_drain.sql"
{
	echo "SELECT coalesce(array_agg(key)::text, '{}') AS keys, coalesce(array_agg(token)::text, '{}') AS tokens FROM ledger_claim_next('drain_batch', 10) \\gset"
	echo "SELECT count(*) FROM ledger_complete_batch('drain_batch', :keys::text[], :tokens::bigint[]);"
} >"$work/extset_drain.sql"

drain() {
	q "CHECKPOINT"
	pgb "$DRAIN_CLIENTS" "$1" -t "$per_client"
}
declare -A dtps=([ext]="" [raw]="" [extset]="" [rawset]="")
perkey_ratios=""
set_ratios=""
for r in $(seq 1 "$DRAIN_ROUNDS"); do
	# a fresh queue of round_keys keys in each of the four
	q "SELECT ledger_enqueue('drain', ARRAY(SELECT 'r$r-' || g FROM generate_series(1, $round_keys) g))" >/dev/null
	q "SELECT ledger_enqueue('drain_batch', ARRAY(SELECT 'r$r-' || g FROM generate_series(1, $round_keys) g))" >/dev/null
	q "INSERT INTO raw_queue SELECT * FROM pgi_ledger_key WHERE ledger_id = $drain_id AND status = 'pending'"
	q "INSERT INTO raw_queue_set SELECT * FROM pgi_ledger_key WHERE ledger_id = $drain_id AND status = 'pending'"
	q "VACUUM ANALYZE pgi_ledger_key, raw_queue, raw_queue_set"
	order="ext raw extset rawset"
	[ $((r % 2)) = 0 ] && order="raw ext rawset extset"
	declare -A t=()
	for who in $order; do
		t[$who]=$(drain "$work/${who}_drain.sql")
		dtps[$who]="${dtps[$who]} $(printf "%.0f" "${t[$who]}")"
	done
	perkey_ratios="$perkey_ratios $(ratio "${t[ext]}" "${t[raw]}")"
	set_ratios="$set_ratios $(ratio "${t[extset]}" "${t[rawset]}")"
done
mean() { tr ' ' '\n' | grep . | awk '{ s += $1 } END { printf "%.0f", s / NR }'; }
printf '  %-50s %8s claims/s (x10 keys; rounds:%s)\n' \
	"ledger_claim_next(10) + 10 ledger_complete" "$(echo "${dtps[ext]}" | mean)" "${dtps[ext]}" \
	"raw SKIP LOCKED CTE + 10 UPDATEs" "$(echo "${dtps[raw]}" | mean)" "${dtps[raw]}" \
	"ledger_claim_next(10) + ledger_complete_batch" "$(echo "${dtps[extset]}" | mean)" "${dtps[extset]}" \
	"raw SKIP LOCKED CTE + 1 set-based UPDATE" "$(echo "${dtps[rawset]}" | mean)" "${dtps[rawset]}"
echo "  ratio extension / raw, per-key completion: $(ratio "$(echo "${dtps[ext]}" | mean)" "$(echo "${dtps[raw]}" | mean)") (means), $(echo "$perkey_ratios" | median) (paired median; rounds:$perkey_ratios)"
echo "  ratio extension / raw, set-based completion: $(ratio "$(echo "${dtps[extset]}" | mean)" "$(echo "${dtps[rawset]}" | mean)") (means), $(echo "$set_ratios" | median) (paired median; rounds:$set_ratios)"
proof() {
	echo "  $(q "SELECT format('%-15s done %s, not done %s, handed out twice %s, distinct tokens %s', '$1',
		count(*) FILTER (WHERE status = 'done'), count(*) FILTER (WHERE status <> 'done'),
		count(*) FILTER (WHERE attempts <> 1), count(DISTINCT token)) FROM $2")"
}
proof drain "pgi_ledger_key WHERE ledger_id = $drain_id"
proof drain_batch "pgi_ledger_key WHERE ledger_id = $batch_id"
proof raw_queue raw_queue
proof raw_queue_set raw_queue_set

echo
echo "== ledger: each call on a ledger of $BIG_KEYS keys against the same call on one of 10k"
echo "   (microseconds per call, in one transaction, best of 3; a call that scanned the"
echo "   ledger instead of looking up its index would be 1000 times slower on the big one)"
for l in small big; do
	n=$([ $l = big ] && echo "$BIG_KEYS" || echo 10000)
	q "SELECT ledger_create('$l')" >/dev/null
	# nine tenths recorded (done, prunable), one tenth queued (pending)
	for lo in $(seq 1 200000 $((n * 9 / 10))); do
		hi=$((lo + 199999 < n * 9 / 10 ? lo + 199999 : n * 9 / 10))
		q "SELECT count(*) FROM ledger_record_batch('$l', ARRAY(SELECT 'd' || g FROM generate_series($lo, $hi) g))" >/dev/null
	done
	for lo in $(seq 1 200000 $((n / 10))); do
		hi=$((lo + 199999 < n / 10 ? lo + 199999 : n / 10))
		q "SELECT ledger_enqueue('$l', ARRAY(SELECT 'p' || g FROM generate_series($lo, $hi) g))" >/dev/null
	done
done
q "VACUUM ANALYZE pgi_ledger_key"
psql -X -q -At -v big_done=$((BIG_KEYS * 9 / 10)) <<'EOF'
CREATE FUNCTION pg_temp.us(ledger text, done int, what text, n int) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz := clock_timestamp();
	p text := md5(random()::text);
	c record;
BEGIN
	FOR i IN 1..n LOOP
		CASE what
		WHEN 'new' THEN PERFORM ledger_record(ledger, 'n' || p || i);
		WHEN 'seen' THEN PERFORM ledger_record(ledger, 'd' || (1 + (i::bigint * 7919) % done));
		WHEN 'status' THEN PERFORM ledger_status(ledger, 'd' || (1 + (i::bigint * 7919) % done));
		WHEN 'claim' THEN
			SELECT array_agg(key) AS k, array_agg(token) AS t INTO c FROM ledger_claim_next(ledger, 10);
			PERFORM ledger_complete_batch(ledger, coalesce(c.k, '{}'), coalesce(c.t, '{}'));
		WHEN 'prune' THEN PERFORM ledger_prune(ledger, '0', max_keys => 1000);
		END CASE;
	END LOOP;
	RETURN round(extract(epoch FROM clock_timestamp() - t0) * 1e6 / n, 1);
END $$;
CREATE FUNCTION pg_temp.line(label text, what text, n int, big_done int) RETURNS text LANGUAGE sql AS $$
	WITH s AS (SELECT min(pg_temp.us('small', 9000, what, n)) AS small FROM generate_series(1, 3)),
	b AS (SELECT min(pg_temp.us('big', big_done, what, n)) AS big FROM generate_series(1, 3))
	SELECT format('  %-48s %8s %8s   x%s', label, small, big, round(big / small, 2)) FROM s, b
$$;
SELECT format('  %-48s %8s %8s   %s', 'call', 'small', 'big', 'big / small');
SELECT pg_temp.line('ledger_record, new key', 'new', 2000, :big_done);
SELECT pg_temp.line('ledger_record, seen key', 'seen', 2000, :big_done);
SELECT pg_temp.line('ledger_status', 'status', 2000, :big_done);
SELECT pg_temp.line('ledger_claim_next(10) + ledger_complete_batch', 'claim', 30, :big_done);
SELECT pg_temp.line('ledger_prune, 1000 keys a call', 'prune', 2, :big_done);
EOF

rm -rf "$work"
cluster_stop
