#!/bin/bash
# Query and JSON sources: idempotent_upsert_query and idempotent_upsert_json
# against the raw SQL they replace, every contender alternated in the same
# run, ROUNDS rounds; prints the median time of each, its spread (min-max)
# and its ratio to INSERT ... ON CONFLICT DO UPDATE.  Not a test.
#
#   bench/sources.sh            (bench/run calls it on its own cluster)
#   ROUNDS=N ORDERS=N JSON_SIZES="1000 10000" bench/sources.sh
#
# Aggregate query: ORDERS orders (2M) summed into ~30k (day, segment)
# groups, against INSERT ... SELECT ... ON CONFLICT DO UPDATE and MERGE:
# first run, identical replay, 1% of the groups changed.  "query alone" is
# the query's rows (every column computed) counted without writing anything:
# its share of each time; "query alone, serial" the same without parallel
# workers, as a statement that writes (every contender) runs it: their floor.
# JSON: arrays of 1k..1M objects, read from a table by every contender
# alike, against jsonb_populate_recordset and jsonb_to_recordset with ON
# CONFLICT DO UPDATE: first run and identical replay.  "JSON alone" is the
# document read and its rows built, counted without writing anything: the
# floor of every contender.
set -eu
ROUNDS=${ROUNDS:-3}
ORDERS=${ORDERS:-2000000}
JSON_SIZES=${JSON_SIZES:-1000 10000 100000 1000000}
RESULTS=$(mktemp)
trap 'rm -f "$RESULTS" "$RESULTS.sql" "$RESULTS.out"' EXIT

psql -X -q -v ON_ERROR_STOP=1 <<SQL
SET client_min_messages = warning;
DROP TABLE IF EXISTS src_orders, daily_idem, daily_raw, daily_merge, docs, tj_idem, tj_pop, tj_to;
CREATE UNLOGGED TABLE src_orders (id bigint, customer_id int, amount numeric(12,2), order_date date);
INSERT INTO src_orders SELECT g, g % 997, (g % 10000) / 100.0, date '2024-01-01' + (g % 366)
FROM generate_series(1, $ORDERS) g;
CREATE TABLE daily_idem (day date, segment int, orders bigint, total numeric, PRIMARY KEY (day, segment));
CREATE TABLE daily_raw (LIKE daily_idem INCLUDING ALL);
CREATE TABLE daily_merge (LIKE daily_idem INCLUDING ALL);
CREATE TABLE docs (n int PRIMARY KEY, doc jsonb);
INSERT INTO docs SELECT n, (SELECT jsonb_agg(jsonb_build_object('id', g, 'customer_id', g % 5000,
	'amount', (g % 100000) / 100.0, 'order_date', date '2025-01-01' + g % 365, 'status', 'new'))
	FROM generate_series(1, n) g)
FROM unnest('{$(echo $JSON_SIZES | tr ' ' ',')}'::int[]) n;
CREATE TABLE tj_idem (id bigint PRIMARY KEY, customer_id int, amount numeric(12,2), order_date date, status text);
CREATE TABLE tj_pop (LIKE tj_idem INCLUDING ALL);
CREATE TABLE tj_to (LIKE tj_idem INCLUDING ALL);
VACUUM ANALYZE src_orders, docs;
SQL

QUERY="SELECT order_date AS day, customer_id % 82 AS segment, count(*) AS orders, sum(amount) AS total FROM src_orders GROUP BY 1, 2"
SET_DAILY="orders = excluded.orders, total = excluded.total"
COLS="id bigint, customer_id int, amount numeric(12,2), order_date date, status text"
SET_TJ="customer_id = excluded.customer_id, amount = excluded.amount, order_date = excluded.order_date, status = excluded.status"

# one timed statement: a marker, then psql's own timing of it; a fourth
# argument, a setting, is SET before the marker and RESET after it
timed() {
	if [ -n "${4:-}" ]; then printf 'SET %s;\n' "$4" >>"$RESULTS.sql"; fi
	printf '\\echo %s\n%s;\n' "'@@ $1|$2'" "$3" >>"$RESULTS.sql"
	if [ -n "${4:-}" ]; then printf 'RESET %s;\n' "${4%% *}" >>"$RESULTS.sql"; fi
}

# the contenders named (arrays of name and statement), each timed once, in
# an order rotated by the round, so none always runs first
timed_rotated() {
	local scenario=$1 n i c
	shift
	n=$#
	for i in $(seq 0 $((n - 1))); do
		c=${*:$(((i + round % 3) % n + 1)):1}
		eval "name=\"\${$c[0]}\" sql=\"\${$c[1]}\" setting=\"\${$c[2]:-}\""
		timed "$scenario" "$name" "$sql" "$setting"
	done
}

for round in $(seq 1 "$ROUNDS"); do
	: >"$RESULTS.sql"
	{
		echo "\\set ON_ERROR_STOP 1"
		echo "SET client_min_messages = warning;"
		echo "TRUNCATE daily_idem, daily_raw, daily_merge;"
		echo "CHECKPOINT;"
		echo "\\timing on"
		echo "\\o /dev/null"
	} >>"$RESULTS.sql"
	# contenders in a different order each round
	for scenario in "query: first run" "query: identical replay" "query: 1% of groups changed"; do
		if [ "$scenario" = "query: 1% of groups changed" ]; then
			echo "\\timing off" >>"$RESULTS.sql"
			echo "UPDATE src_orders SET amount = amount + 0.01 WHERE customer_id % 82 = 7 AND order_date < date '2024-01-01' + 300;" >>"$RESULTS.sql"
			echo "\\timing on" >>"$RESULTS.sql"
		fi
		c1=(idempotent_upsert_query "SELECT * FROM idempotent_upsert_query('daily_idem', \$q\$$QUERY\$q\$)")
		c2=("INSERT ... ON CONFLICT" "INSERT INTO daily_raw $QUERY ON CONFLICT (day, segment) DO UPDATE SET $SET_DAILY")
		c3=(MERGE "MERGE INTO daily_merge t USING ($QUERY) s ON t.day = s.day AND t.segment = s.segment WHEN MATCHED THEN UPDATE SET orders = s.orders, total = s.total WHEN NOT MATCHED THEN INSERT VALUES (s.day, s.segment, s.orders, s.total)")
		# count(q), not count(*): the planner drops a subquery's unused
		# outputs, and count(*) would time the query without its sum()
		c4=("query alone" "SELECT count(q) FROM ($QUERY) q")
		# a statement that writes runs its query without parallel workers
		# (every contender here): that is their floor, not the one above
		c5=("query alone, serial" "SELECT count(q) FROM ($QUERY) q" "max_parallel_workers_per_gather = 0")
		timed_rotated "$scenario" c1 c2 c3 c4 c5
	done
	for n in $JSON_SIZES; do
		echo "\\timing off" >>"$RESULTS.sql"
		echo "TRUNCATE tj_idem, tj_pop, tj_to; CHECKPOINT;" >>"$RESULTS.sql"
		echo "\\timing on" >>"$RESULTS.sql"
		for scenario in "JSON $n rows: first run" "JSON $n rows: identical replay"; do
			c1=(idempotent_upsert_json "SELECT * FROM idempotent_upsert_json('tj_idem', (SELECT doc FROM docs WHERE n = $n))")
			c2=("INSERT ... ON CONFLICT" "INSERT INTO tj_pop SELECT * FROM jsonb_populate_recordset(NULL::tj_pop, (SELECT doc FROM docs WHERE n = $n)) ON CONFLICT (id) DO UPDATE SET $SET_TJ")
			c3=("jsonb_to_recordset ON CONFLICT" "INSERT INTO tj_to SELECT * FROM jsonb_to_recordset((SELECT doc FROM docs WHERE n = $n)) AS x($COLS) ON CONFLICT (id) DO UPDATE SET $SET_TJ")
			c4=("JSON alone" "SELECT count(*) FROM jsonb_to_recordset((SELECT doc FROM docs WHERE n = $n)) AS x($COLS)")
			timed_rotated "$scenario" c1 c2 c3 c4
		done
	done
	psql -X -q -f "$RESULTS.sql" >"$RESULTS.out"
	awk '/^@@ / { sub(/^@@ /, ""); sub(/\|/, "\t"); key = $0; next }
		/^Time: / && key != "" { split($0, a, " "); print key "\t" a[2]; key = "" }' "$RESULTS.out" >>"$RESULTS"
done

echo
echo "Query and JSON sources, $ROUNDS rounds, contenders alternated (median ms, min-max, median vs INSERT ... ON CONFLICT):"
python3 - "$RESULTS" <<'PY'
import sys, statistics, collections
rows = collections.OrderedDict()
for line in open(sys.argv[1]):
    s, c, ms = line.rstrip('\n').split('\t')
    rows.setdefault(s, collections.OrderedDict()).setdefault(c, []).append(float(ms))
for s, cs in rows.items():
    base = statistics.median(cs.get("INSERT ... ON CONFLICT", [float('nan')]))
    print(f"  {s}")
    for c, v in cs.items():
        m = statistics.median(v)
        print(f"    {c:32s} {m:10.1f} ms  ({min(v):.1f}-{max(v):.1f})  {m / base:5.2f}x")
PY

# the contenders must agree
psql -X -q -At -c "SELECT 'rows differing between contenders: daily ' || (SELECT count(*) FROM ((TABLE daily_idem EXCEPT TABLE daily_raw) UNION ALL (TABLE daily_raw EXCEPT TABLE daily_idem) UNION ALL (TABLE daily_merge EXCEPT TABLE daily_idem)) d) || ', JSON ' || (SELECT count(*) FROM ((TABLE tj_idem EXCEPT TABLE tj_pop) UNION ALL (TABLE tj_pop EXCEPT TABLE tj_idem) UNION ALL (TABLE tj_to EXCEPT TABLE tj_idem)) d)"
