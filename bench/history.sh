#!/bin/bash
# idempotent_history against the SQL a user writes for a snapshot (UPDATE
# ... SET valid_to = as_of for the current rows that changed, then INSERT
# the new versions), each on its own copy of a history of KEYS keys, both
# contenders alternated in the same run, ROUNDS rounds.  Each round: 1% of
# the keys changed, an identical re-run, 10% changed, at a new as_of each
# (a re-run keeps its as_of).  Prints the median time and WAL of each,
# the spread (min-max) and the ratio.  idempotent_history runs twice, on
# copies of its own: from the staging table as loaded (no index), and from
# the same rows with a primary key on id, as a dimension extract keyed by id
# would have (the call then leaves out its duplicate check).  Not a test.
#
#   bench/history.sh            (bench/run calls it on its own cluster)
#   ROUNDS=N KEYS=N bench/history.sh
set -eu
ROUNDS=${ROUNDS:-3}
KEYS=${KEYS:-1000000}
RESULTS=$(mktemp)
trap 'rm -f "$RESULTS" "$RESULTS.sql"' EXIT

psql -X -q -v ON_ERROR_STOP=1 <<SQL
SET client_min_messages = warning;
DROP TABLE IF EXISTS hb_src, hb_src_pk, hb_idem, hb_idem_pk, hb_raw;
-- no autovacuum: its analyze of a table just changed would write WAL
-- (pg_statistic) during whichever call is timed; the runs vacuum instead
CREATE UNLOGGED TABLE hb_src (id bigint, name text, tier text, amount numeric(12,2))
	WITH (autovacuum_enabled = off);
INSERT INTO hb_src SELECT g, 'customer ' || g, (ARRAY['gold', 'silver', 'bronze'])[1 + g % 3], (g % 10000) / 100.0
FROM generate_series(1, $KEYS) g;
CREATE UNLOGGED TABLE hb_src_pk (LIKE hb_src, PRIMARY KEY (id)) WITH (autovacuum_enabled = off);
INSERT INTO hb_src_pk SELECT * FROM hb_src;
CREATE TABLE hb_idem (id bigint, name text, tier text, amount numeric(12,2),
	valid_from timestamptz NOT NULL, valid_to timestamptz, PRIMARY KEY (id, valid_from))
	WITH (autovacuum_enabled = off);
CREATE TABLE hb_raw (LIKE hb_idem INCLUDING ALL) WITH (autovacuum_enabled = off);
CREATE TABLE hb_idem_pk (LIKE hb_idem INCLUDING ALL) WITH (autovacuum_enabled = off);
INSERT INTO hb_idem SELECT *, '2025-01-01 00:00+00', NULL FROM hb_src;
INSERT INTO hb_idem_pk SELECT *, '2025-01-01 00:00+00', NULL FROM hb_src;
INSERT INTO hb_raw SELECT *, '2025-01-01 00:00+00', NULL FROM hb_src;
VACUUM ANALYZE hb_src, hb_src_pk, hb_idem, hb_idem_pk, hb_raw;
-- time and WAL of statements run as one transaction's worth of work
CREATE OR REPLACE FUNCTION hb_timed(stmts text[], OUT ms float8, OUT wal numeric)
LANGUAGE plpgsql AS \$\$
DECLARE
	t0 timestamptz := clock_timestamp();
	l0 pg_lsn := pg_current_wal_insert_lsn();
	s text;
BEGIN
	FOREACH s IN ARRAY stmts LOOP
		EXECUTE s;
	END LOOP;
	ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
	wal := pg_current_wal_insert_lsn() - l0;
END \$\$;
SQL

for round in $(seq 1 "$ROUNDS"); do
	for scenario in "1% changed" "identical re-run" "10% changed"; do
		case $scenario in
			"1% changed") psql -X -q -c "UPDATE hb_src SET amount = amount + 1 WHERE id % 100 = $round" \
				-c "UPDATE hb_src_pk SET amount = amount + 1 WHERE id % 100 = $round" ;;
			"10% changed") psql -X -q -c "UPDATE hb_src SET tier = tier || '+' WHERE id % 10 = $round % 10" \
				-c "UPDATE hb_src_pk SET tier = tier || '+' WHERE id % 10 = $round % 10" ;;
		esac
		[ "$scenario" != "identical re-run" ] && step=$((${step:-0} + 1))
		as_of="2025-01-01 00:00+00'::timestamptz + interval '${step} days"
		idem="SELECT * FROM idempotent_history('hb_idem', 'hb_src', as_of => '$as_of')"
		idem_pk="SELECT * FROM idempotent_history('hb_idem_pk', 'hb_src_pk', as_of => '$as_of')"
		raw1="UPDATE hb_raw t SET valid_to = '$as_of' FROM hb_src s WHERE t.id = s.id AND t.valid_to IS NULL AND (t.name, t.tier, t.amount) IS DISTINCT FROM (s.name, s.tier, s.amount)"
		raw2="INSERT INTO hb_raw SELECT s.*, '$as_of', NULL FROM hb_src s LEFT JOIN hb_raw t ON t.id = s.id AND t.valid_to IS NULL WHERE t.id IS NULL"
		# the two statements are SQL text inside an array literal: double the quotes
		q() { printf '%s' "$1" | sed "s/'/''/g"; }
		# the previous step's dead rows pruned first, so WAL is the call's own
		psql -X -q -c "VACUUM hb_src, hb_src_pk, hb_idem, hb_idem_pk, hb_raw" -c "CHECKPOINT" >/dev/null
		if [ $((round % 2)) = 1 ]; then order="idem raw idem_pk"; else order="idem_pk raw idem"; fi
		for c in $order; do
			if [ "$c" = idem ]; then
				stmts="ARRAY['$(q "$idem")']"
			elif [ "$c" = idem_pk ]; then
				stmts="ARRAY['$(q "$idem_pk")']"
			else
				stmts="ARRAY['$(q "$raw1")', '$(q "$raw2")']"
			fi
			psql -X -q -At -F '|' -c "SELECT '$scenario', '$c', ms, wal FROM hb_timed($stmts)" >>"$RESULTS" 2>&1 ||
				{ cat "$RESULTS"; exit 1; }
		done
	done
done

# the two tables must hold the same history (the user's SQL is right for
# these forward-only runs)
for t in hb_idem hb_idem_pk; do
	psql -X -q -At -c "SELECT 'same history ($t): ' || ((SELECT count(*) FROM ((SELECT id, name, tier, amount, valid_from, valid_to FROM $t EXCEPT SELECT id, name, tier, amount, valid_from, valid_to FROM hb_raw) UNION ALL (SELECT id, name, tier, amount, valid_from, valid_to FROM hb_raw EXCEPT SELECT id, name, tier, amount, valid_from, valid_to FROM $t)) d) = 0)"
done

echo
echo "idempotent_history against UPDATE + INSERT, $KEYS keys, $ROUNDS rounds (median, min-max; WAL median)"
python3 -c '
import sys, statistics
rows = {}
for line in sys.stdin:
    line = line.strip()
    if not line: continue
    scen, who, ms, wal = line.split("|")
    rows.setdefault(scen, {}).setdefault(who, []).append((float(ms), float(wal)))
for scen in ("1% changed", "identical re-run", "10% changed"):
    r = rows[scen]
    med = {}
    names = {"idem": "idempotent_history", "idem_pk": "  ... source with PK", "raw": "UPDATE + INSERT"}
    for who in ("idem", "idem_pk", "raw"):
        ms = [x[0] for x in r[who]]; wal = [x[1] for x in r[who]]
        med[who] = statistics.median(ms)
        print("  %-18s %-20s %9.0f ms  (%6.0f-%6.0f)  WAL %8.1f MB" % (scen, names[who],
              med[who], min(ms), max(ms), statistics.median(wal) / 1e6))
    for who, label in (("idem", "ratio"), ("idem_pk", "ratio, source with PK")):
        ratios = sorted(a[0] / b[0] for a, b in zip(r[who], r["raw"]))
        print("  %-18s %s %.2fx (paired rounds %.2f-%.2fx)" % (scen, label, med[who] / med["raw"], ratios[0], ratios[-1]))
' <"$RESULTS"
