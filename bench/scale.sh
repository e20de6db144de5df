#!/bin/bash
# Incremental loads into large tables: does the cost follow the batch?
# Two parts.  The upsert part: idempotent_upsert against INSERT ... ON
# CONFLICT DO UPDATE and MERGE, each on its own copy of the same table, in
# one run.  Prints a table of times, WAL and ratios to ON CONFLICT, and
# draws ms per 1,000 batch rows against the batch size (gnuplot, log
# scales) into a PNG.  The replace part (below) does the same for
# replacing a slice, into scale-replace.png.  Not a test.
#
#   bench/scale.sh              (bench/run calls it on its own cluster)
#   SCALE_ROWS="1000000"        target sizes (default "1000000 10000000")
#   SCALE_BATCHES="1000 10000"  batch sizes (default 1k 10k 100k 1M; a batch
#                               is never larger than the table)
#   SCALE_SHAPES="spread"       spread and/or clustered (default both)
#   SCALE_TYPES="client"        exact and/or client (default both)
#   SCALE_ROUNDS=3              rounds per cell, each with its own new keys
#                               and changed values; the table shows medians
#                               (default 1)
#   SCALE_OUT=dir               where scale.txt and the pictures go
#                               (default bench/out)
#   SCALE_PARTS="replace"       upsert and/or replace (default both); the
#                               table and pictures hold the parts run
#   SCALE_SLICES="0.1 1"        the replace part's slices, in percent of
#                               the table: 0.1, 1 and/or 10 (default all)
#
# The table: (id bigint PRIMARY KEY, customer_id int, amount numeric(12,2),
# order_date date, status text), ids 100, 200, ... (ROWS of them).  A batch
# is half changed rows and half new keys:
#   spread     both halves spread evenly over the whole key range (the new
#              keys fall between existing ones);
#   clustered  the changed rows are the newest keys of the table and the
#              new keys follow them, as a day's orders do.
# Its staging table is typed exactly as the target (exact), or as a client
# types it (client: id int, amount float8), created fresh and never
# analyzed, as a loader leaves it.  Phases: first run, identical replay
# (no contender should write; WAL bytes shown), 10% of the batch changed.
# After each phase the three tables are vacuumed, and analyzed after each
# cell (not timed);
# autovacuum is off on them so it never runs inside a timing.
#
# The replace part: replacing a slice of a table that is not partitioned,
# (id bigint PRIMARY KEY, tenant int, amount numeric(12,2), day date,
# status text) with an index on tenant, ROWS rows.  Of every 1,000
# consecutive ids, 100 belong to tenant 1 (10% of the table), the next 10
# to tenant 2 (1%), the next one to tenant 3 (0.1%), the rest to 8,887
# small tenants: each slice lies in short runs spread over the whole table,
# as a tenant's rows do that arrive with everyone else's.  The source is a
# staging table holding exactly the slice's new rows, created fresh and
# never analyzed.  Contenders, each on its own copy of the table:
# replace_partition(t, staging, 'tenant', n) with mode => 'diff' and with
# mode => 'delete_insert' (replace_partition, not replace_where: the slice
# is one value of one column, so the call serializes on that value alone
# and the slice's values are parameters the planner sees), and the
# DELETE FROM t WHERE tenant = n; INSERT INTO t SELECT * FROM staging; a
# user writes, in one transaction.  Phases: identical re-run (the slice
# already holds the staging rows: diff should write no WAL), 10% of the
# slice's rows changed.  Rotated order, a checkpoint before each, vacuum
# between phases, as in the upsert part.
set -eu
cd "$(dirname "$0")/.."
SCALE_ROWS=${SCALE_ROWS:-1000000 10000000}
SCALE_BATCHES=${SCALE_BATCHES:-1000 10000 100000 1000000}
SCALE_SHAPES=${SCALE_SHAPES:-spread clustered}
SCALE_TYPES=${SCALE_TYPES:-exact client}
SCALE_ROUNDS=${SCALE_ROUNDS:-1}
SCALE_OUT=${SCALE_OUT:-bench/out}
mkdir -p "$SCALE_OUT"
OUT_TXT=$SCALE_OUT/scale.txt
OUT_PNG=$SCALE_OUT/scale.png
OUT_REPLACE_PNG=$SCALE_OUT/scale-replace.png
SCALE_PARTS=${SCALE_PARTS:-upsert replace}
SCALE_SLICES=${SCALE_SLICES:-0.1 1 10}
has_part() {
	case " $SCALE_PARTS " in
	*" $1 "*) return 0 ;;
	esac
	return 1
}

psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
SET client_min_messages = warning;
DROP TABLE IF EXISTS sc_result;
CREATE TABLE sc_result (seq serial, rows bigint, shape text, typing text, batch bigint,
	phase text, contender text, ms numeric, wal numeric);
DROP TABLE IF EXISTS sc_rresult;
CREATE TABLE sc_rresult (seq serial, rows bigint, slice text, slice_rows bigint,
	phase text, contender text, ms numeric, wal numeric);
SQL

SET="customer_id = excluded.customer_id, amount = excluded.amount, order_date = excluded.order_date, status = excluded.status"
MSET="customer_id = s.customer_id, amount = s.amount, order_date = s.order_date, status = s.status"

if has_part upsert; then
	for rows in $SCALE_ROWS; do
		echo "scale: building the $rows-row table and its three copies" >&2
		psql -X -q -v ON_ERROR_STOP=1 <<SQL
SET client_min_messages = warning;
DROP TABLE IF EXISTS sc_idem, sc_raw, sc_merge;
CREATE TABLE sc_idem (id bigint, customer_id int, amount numeric(12,2), order_date date, status text)
	WITH (autovacuum_enabled = off);
INSERT INTO sc_idem SELECT 100 * g, g % 5000, (g % 4000) / 4.0, date '2025-01-01' + g % 365, 'base'
FROM generate_series(1, $rows) g;
ALTER TABLE sc_idem ADD PRIMARY KEY (id);
CREATE TABLE sc_raw (LIKE sc_idem INCLUDING ALL) WITH (autovacuum_enabled = off);
INSERT INTO sc_raw TABLE sc_idem;
CREATE TABLE sc_merge (LIKE sc_idem INCLUDING ALL) WITH (autovacuum_enabled = off);
INSERT INTO sc_merge TABLE sc_idem;
VACUUM ANALYZE sc_idem, sc_raw, sc_merge;
SQL
		cell=0
		clustered_next=$((100 * (rows + 1)))
		for shape in $SCALE_SHAPES; do
			for typing in $SCALE_TYPES; do
				for batch in $SCALE_BATCHES; do
					[ "$batch" -le "$rows" ] || continue
					for round in $(seq 1 "$SCALE_ROUNDS"); do
					# the cell's number marks its new spread keys: at most 99
					cell=$((cell + 1))
					half=$((batch / 2))
					if [ "$typing" = exact ]; then
						cols="id bigint, customer_id int, amount numeric(12,2), order_date date, status text"
					else
						cols="id int, customer_id int, amount float8, order_date date, status text"
					fi
					if [ "$shape" = spread ]; then
						# g-th changed row: every (rows/half)-th existing key;
						# new keys: the same spots plus the cell's number (< 100)
						changed="SELECT 100 * (1 + (g - 1) * ($rows / $half)) AS id FROM generate_series(1, $half) g"
						new="SELECT 100 * (1 + (g - 1) * ($rows / $half)) + $cell AS id FROM generate_series(1, $((batch - half))) g"
					else
						changed="SELECT 100 * ($rows - $half + g) AS id FROM generate_series(1, $half) g"
						new="SELECT $clustered_next + g AS id FROM generate_series(1, $((batch - half))) g"
						clustered_next=$((clustered_next + batch))
					fi
					label="$rows|$shape|$typing|$batch|$round"
					echo "scale: $rows rows, $shape, $typing, batch $batch, round $round" >&2
					{
						echo "\\set ON_ERROR_STOP 1"
						echo "SET client_min_messages = warning;"
						echo "DROP TABLE IF EXISTS sc_stg;"
						echo "CREATE TABLE sc_stg ($cols) WITH (autovacuum_enabled = off);"
						# warm the new session's caches for every contender: a
						# two-row batch identical to the table (untimed), which
						# each contender runs as it runs the timed batch (one
						# row would take the upsert's index probe, which plans
						# no statement and so warmed nothing that it times)
						echo "DROP TABLE IF EXISTS sc_warm;"
						echo "CREATE TEMP TABLE sc_warm AS SELECT * FROM sc_idem WHERE id IN (100, 200);"
						echo "SELECT * FROM idempotent_upsert('sc_idem', 'sc_warm') \\g /dev/null"
						echo "INSERT INTO sc_raw SELECT * FROM sc_warm ON CONFLICT (id) DO UPDATE SET $SET;"
						echo "MERGE INTO sc_merge t USING sc_warm s ON t.id = s.id WHEN MATCHED THEN UPDATE SET $MSET WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.customer_id, s.amount, s.order_date, s.status);"
						echo "INSERT INTO sc_stg SELECT k.id, (k.id / 100) % 5000, (k.id % 4000) / 4.0, date '2025-01-01' + (k.id % 365)::int, 'cell $cell' FROM ($changed UNION ALL $new) k;"
						for phase in "first run" "identical replay" "10% changed"; do
							if [ "$phase" = "10% changed" ]; then
								echo "UPDATE sc_stg SET status = 'changed $cell' WHERE hashint8(id::bigint) % 10 = 0;"
							fi
							for i in 0 1 2; do
								c=$(((i + cell) % 3))
								case $c in
								0) name=idempotent_upsert sql="SELECT * FROM idempotent_upsert('sc_idem', 'sc_stg')" ;;
								1) name="ON CONFLICT" sql="INSERT INTO sc_raw SELECT * FROM sc_stg ON CONFLICT (id) DO UPDATE SET $SET" ;;
								2) name=MERGE sql="MERGE INTO sc_merge t USING sc_stg s ON t.id = s.id WHEN MATCHED THEN UPDATE SET $MSET WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.customer_id, s.amount, s.order_date, s.status)" ;;
								esac
								echo "CHECKPOINT;"
								echo "SELECT pg_current_wal_insert_lsn() AS l0, clock_timestamp() AS t0 \\gset"
								echo "$sql \\g /dev/null"
								echo "INSERT INTO sc_result (rows, shape, typing, batch, phase, contender, ms, wal) SELECT $rows, '$shape', '$typing', $batch, '$phase', '$name', round(extract(epoch FROM clock_timestamp() - :'t0') * 1000, 1), pg_current_wal_insert_lsn() - :'l0';"
							done
							# not timed: the next phase reads pruned pages, so
							# its WAL is its own writes (INDEX_CLEANUP ON: else a
							# vacuum that found few dead rows leaves their index
							# entries for the next reader to mark dead, which
							# logs whole pages where checksums are on, as 18's
							# initdb sets by default)
							echo "VACUUM (INDEX_CLEANUP ON) sc_idem, sc_raw, sc_merge;"
						done
						echo "ANALYZE sc_idem, sc_raw, sc_merge;"
					} | psql -X -q -f - || { echo "scale: cell $label failed" >&2; exit 1; }
					done
				done
			done
		done
		# the three copies must agree
		psql -X -q -At -c "SELECT 'scale: $rows rows: rows differing between contenders: ' || (SELECT count(*) FROM ((TABLE sc_idem EXCEPT TABLE sc_raw) UNION ALL (TABLE sc_raw EXCEPT TABLE sc_idem) UNION ALL (TABLE sc_merge EXCEPT TABLE sc_idem)) d)" >&2
	done
fi

# The replace part: one slice of a table that is not partitioned, found by
# its index, made to hold a staging table's rows, by replace_partition in
# diff and in delete_insert mode and by the DELETE + INSERT a user writes,
# each on its own copy.
if has_part replace; then
	for rows in $SCALE_ROWS; do
		echo "scale: building the $rows-row replace table and its three copies" >&2
		for t in sc_rdiff sc_rdi sc_rraw; do
			psql -X -q -v ON_ERROR_STOP=1 <<SQL
SET client_min_messages = warning;
DROP TABLE IF EXISTS $t;
CREATE TABLE $t (id bigint, tenant int, amount numeric(12,2), day date, status text)
	WITH (autovacuum_enabled = off);
INSERT INTO $t SELECT g,
	CASE WHEN g % 1000 < 100 THEN 1 WHEN g % 1000 < 110 THEN 2 WHEN g % 1000 = 110 THEN 3
		ELSE 1000 + g % 8887 END,
	(g % 4000) / 4.0, date '2025-01-01' + g % 365, 'base'
FROM generate_series(1, $rows) g;
ALTER TABLE $t ADD PRIMARY KEY (id);
CREATE INDEX ON $t (tenant);
VACUUM ANALYZE $t;
SQL
		done
		cell=0
		for pct in $SCALE_SLICES; do
			case $pct in
			0.1) tenant=3 ;;
			1) tenant=2 ;;
			10) tenant=1 ;;
			*)
				echo "scale: SCALE_SLICES takes 0.1, 1 and 10 (percent of the table)" >&2
				exit 1
				;;
			esac
			for round in $(seq 1 "$SCALE_ROUNDS"); do
				cell=$((cell + 1))
				echo "scale: $rows rows, replacing a $pct% slice, round $round" >&2
				{
					echo "\\set ON_ERROR_STOP 1"
					echo "SET client_min_messages = warning;"
					# warm the new session's caches for every contender: an
					# empty slice replaced by an empty source (untimed)
					echo "CREATE TEMP TABLE sc_rwarm (LIKE sc_rdiff);"
					echo "SELECT * FROM replace_partition('sc_rdiff', 'sc_rwarm', 'tenant', 0, mode => 'diff', allow_empty => true) \\g /dev/null"
					echo "SELECT * FROM replace_partition('sc_rdi', 'sc_rwarm', 'tenant', 0, mode => 'delete_insert', allow_empty => true) \\g /dev/null"
					echo "BEGIN; DELETE FROM sc_rraw WHERE tenant = 0; INSERT INTO sc_rraw SELECT * FROM sc_rwarm; COMMIT;"
					for phase in "identical re-run" "10% changed"; do
						# the staging table: the slice as it is now, or with
						# a tenth of its rows changed; fresh, never analyzed
						if [ "$phase" = "10% changed" ]; then
							status="CASE WHEN hashint8(id) % 10 = 0 THEN 'changed $cell' ELSE status END"
						else
							status=status
						fi
						echo "DROP TABLE IF EXISTS sc_rstg;"
						echo "CREATE TABLE sc_rstg (id bigint, tenant int, amount numeric(12,2), day date, status text) WITH (autovacuum_enabled = off);"
						echo "INSERT INTO sc_rstg SELECT id, tenant, amount, day, $status FROM sc_rdiff WHERE tenant = $tenant;"
						# (this first read also sets its rows' hint bits,
						# which no contender should pay for)
						echo "SELECT count(*) AS slice_rows FROM sc_rstg \\gset"
						for i in 0 1 2; do
							c=$(((i + cell) % 3))
							case $c in
							0) name=diff sql="SELECT * FROM replace_partition('sc_rdiff', 'sc_rstg', 'tenant', $tenant, mode => 'diff') \\g /dev/null" ;;
							1) name=delete_insert sql="SELECT * FROM replace_partition('sc_rdi', 'sc_rstg', 'tenant', $tenant, mode => 'delete_insert') \\g /dev/null" ;;
							2) name="DELETE + INSERT" sql="BEGIN; DELETE FROM sc_rraw WHERE tenant = $tenant; INSERT INTO sc_rraw SELECT * FROM sc_rstg; COMMIT;" ;;
							esac
							echo "CHECKPOINT;"
							echo "SELECT pg_current_wal_insert_lsn() AS l0, clock_timestamp() AS t0 \\gset"
							echo "$sql"
							echo "INSERT INTO sc_rresult (rows, slice, slice_rows, phase, contender, ms, wal) SELECT $rows, '$pct%', :slice_rows, '$phase', '$name', round(extract(epoch FROM clock_timestamp() - :'t0') * 1000, 1), pg_current_wal_insert_lsn() - :'l0';"
						done
						# not timed: as in the upsert part
						echo "VACUUM (INDEX_CLEANUP ON) sc_rdiff, sc_rdi, sc_rraw;"
					done
					echo "ANALYZE sc_rdiff, sc_rdi, sc_rraw;"
				} | psql -X -q -f - || {
					echo "scale: replacing the $pct% slice of $rows rows failed" >&2
					exit 1
				}
			done
		done
		# the three copies must agree: the slices, and the row counts
		psql -X -q -At -c "SELECT 'scale: $rows rows: slice rows differing between replace contenders: ' || (SELECT count(*) FROM ((SELECT * FROM sc_rdiff WHERE tenant < 1000 EXCEPT ALL SELECT * FROM sc_rraw WHERE tenant < 1000) UNION ALL (SELECT * FROM sc_rraw WHERE tenant < 1000 EXCEPT ALL SELECT * FROM sc_rdiff WHERE tenant < 1000) UNION ALL (SELECT * FROM sc_rdi WHERE tenant < 1000 EXCEPT ALL SELECT * FROM sc_rraw WHERE tenant < 1000) UNION ALL (SELECT * FROM sc_rraw WHERE tenant < 1000 EXCEPT ALL SELECT * FROM sc_rdi WHERE tenant < 1000)) d) || ', rows: ' || (SELECT count(*) FROM sc_rdiff) || ' / ' || (SELECT count(*) FROM sc_rdi) || ' / ' || (SELECT count(*) FROM sc_rraw)" >&2
	done
fi

{
	if has_part upsert; then
		echo
		echo "Incremental loads (bench/scale.sh, $SCALE_ROUNDS round(s), median): ms, WAL, and ratio to INSERT ... ON CONFLICT in the same run"
		psql -X -q -P footer=off <<'SQL'
CREATE TEMP VIEW sc_median AS
SELECT rows, shape, typing, batch, phase, contender, min(seq) AS seq,
	round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1) AS ms,
	max(wal) AS wal
FROM sc_result GROUP BY 1, 2, 3, 4, 5, 6;
SELECT r.rows AS "table", r.shape, r.typing, r.batch, r.phase,
	max(r.ms) FILTER (WHERE contender = 'idempotent_upsert') AS upsert_ms,
	max(r.ms) FILTER (WHERE contender = 'ON CONFLICT') AS on_conflict_ms,
	max(r.ms) FILTER (WHERE contender = 'MERGE') AS merge_ms,
	round(max(r.ms) FILTER (WHERE contender = 'idempotent_upsert')
		/ nullif(max(r.ms) FILTER (WHERE contender = 'ON CONFLICT'), 0), 2) AS "vs ON CONFLICT",
	round(max(r.ms) FILTER (WHERE contender = 'idempotent_upsert')
		/ nullif(max(r.ms) FILTER (WHERE contender = 'MERGE'), 0), 2) AS "vs MERGE",
	pg_size_pretty(max(r.wal) FILTER (WHERE contender = 'idempotent_upsert')) AS upsert_wal,
	pg_size_pretty(max(r.wal) FILTER (WHERE contender = 'ON CONFLICT')) AS on_conflict_wal,
	pg_size_pretty(max(r.wal) FILTER (WHERE contender = 'MERGE')) AS merge_wal
FROM sc_median r
GROUP BY 1, 2, 3, 4, 5
ORDER BY 1, 2 DESC, 3, 4, min(r.seq);
-- a fixed batch, largest table against smallest: the growth the table's size adds
\echo
\echo 'The same batch into the largest table against the smallest: growth of the median ms'
SELECT b.shape, b.typing, b.batch, b.phase,
	round(max(b.ms / a.ms) FILTER (WHERE contender = 'idempotent_upsert'), 2) AS upsert,
	round(max(b.ms / a.ms) FILTER (WHERE contender = 'ON CONFLICT'), 2) AS on_conflict,
	round(max(b.ms / a.ms) FILTER (WHERE contender = 'MERGE'), 2) AS merge
FROM sc_median a JOIN sc_median b USING (shape, typing, batch, phase, contender)
WHERE a.rows = (SELECT min(rows) FROM sc_result) AND b.rows = (SELECT max(rows) FROM sc_result)
	AND a.rows < b.rows
GROUP BY 1, 2, 3, 4
ORDER BY 1 DESC, 2, 3, min(b.seq);
SQL
	fi
	if has_part replace; then
		echo
		echo "Replacing a slice of a table that is not partitioned (bench/scale.sh, $SCALE_ROUNDS round(s), median): ms, WAL, and ratio to DELETE + INSERT in the same run"
		psql -X -q -P footer=off <<'SQL'
CREATE TEMP VIEW sc_rmedian AS
SELECT rows, slice, phase, contender, min(seq) AS seq, max(slice_rows) AS slice_rows,
	round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1) AS ms,
	max(wal) AS wal
FROM sc_rresult GROUP BY 1, 2, 3, 4;
SELECT r.rows AS "table", r.slice, max(r.slice_rows) AS slice_rows, r.phase,
	max(r.ms) FILTER (WHERE contender = 'diff') AS diff_ms,
	max(r.ms) FILTER (WHERE contender = 'delete_insert') AS delete_insert_ms,
	max(r.ms) FILTER (WHERE contender = 'DELETE + INSERT') AS raw_ms,
	round(max(r.ms) FILTER (WHERE contender = 'diff')
		/ nullif(max(r.ms) FILTER (WHERE contender = 'DELETE + INSERT'), 0), 2) AS "diff vs raw",
	round(max(r.ms) FILTER (WHERE contender = 'delete_insert')
		/ nullif(max(r.ms) FILTER (WHERE contender = 'DELETE + INSERT'), 0), 2) AS "delete_insert vs raw",
	pg_size_pretty(max(r.wal) FILTER (WHERE contender = 'diff')) AS diff_wal,
	pg_size_pretty(max(r.wal) FILTER (WHERE contender = 'delete_insert')) AS delete_insert_wal,
	pg_size_pretty(max(r.wal) FILTER (WHERE contender = 'DELETE + INSERT')) AS raw_wal
FROM sc_rmedian r
GROUP BY 1, 2, 4
ORDER BY 1, min(r.seq);
SQL
	fi
} | tee "$OUT_TXT"

# the pictures need gnuplot
if ! command -v gnuplot >/dev/null; then
	echo "scale: gnuplot not found (Debian: gnuplot-nox); no picture drawn" >&2
	exit 0
fi
DATA=$(mktemp -d)
trap 'rm -rf "$DATA"' EXIT
version=$(psql -X -At -c 'SHOW server_version' | cut -d' ' -f1)
ntables=0
for rows in $SCALE_ROWS; do
	ntables=$((ntables + 1))
done

# the picture: ms per 1,000 batch rows against batch size, one line per
# contender; a panel per phase (columns) and table size (rows), for the
# spread shape as a client types it (or whatever the grid ran first)
if has_part upsert; then
	shape=${SCALE_SHAPES%% *}
	typing=$(echo "$SCALE_TYPES" | tr ' ' '\n' | grep -x client || echo "${SCALE_TYPES%% *}")
	for rows in $SCALE_ROWS; do
		for phase in "first run" "identical replay" "10% changed"; do
			for contender in idempotent_upsert "ON CONFLICT" MERGE; do
				psql -X -q -At -F ' ' -c "SELECT batch, percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) * 1000.0 / batch FROM sc_result WHERE rows = $rows AND shape = '$shape' AND typing = '$typing' AND phase = '$phase' AND contender = '$contender' GROUP BY batch ORDER BY batch" \
					>"$DATA/$rows-${phase%% *}-${contender%% *}.dat"
			done
		done
	done
	{
		echo "set terminal pngcairo size 1500,$((420 * ntables + 60)) font ',10'"
		echo "set output '$OUT_PNG'"
		echo "set multiplot layout $ntables,3 title 'idempotent\\_upsert vs ON CONFLICT vs MERGE: ms per 1,000 batch rows ($shape keys, $typing-typed staging; $version)'"
		echo "set logscale xy"
		echo "set grid"
		echo "set key top right"
		echo "set xlabel 'batch rows'"
		echo "set ylabel 'ms per 1,000 batch rows'"
		echo "set format x '10^{%L}'"
		for rows in $SCALE_ROWS; do
			for phase in "first run" "identical replay" "10% changed"; do
				echo "set title '$phase, table of $rows rows'"
				p=${phase%% *}
				echo "plot '$DATA/$rows-$p-idempotent_upsert.dat' with linespoints lw 2 title 'idempotent\\_upsert', '$DATA/$rows-$p-ON.dat' with linespoints lw 2 title 'ON CONFLICT', '$DATA/$rows-$p-MERGE.dat' with linespoints lw 2 title 'MERGE'"
			done
		done
		echo "unset multiplot"
	} | gnuplot
	echo "scale: picture in $OUT_PNG"
fi

# the replace picture: ms per 1,000 slice rows against the slice's rows,
# one line per contender; a panel per phase (columns) and table size (rows)
if has_part replace; then
	for rows in $SCALE_ROWS; do
		for phase in "identical re-run" "10% changed"; do
			for contender in diff delete_insert "DELETE + INSERT"; do
				psql -X -q -At -F ' ' -c "SELECT max(slice_rows), percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) * 1000.0 / max(slice_rows) FROM sc_rresult WHERE rows = $rows AND phase = '$phase' AND contender = '$contender' GROUP BY slice ORDER BY 1" \
					>"$DATA/r$rows-${phase%% *}-${contender%% *}.dat"
			done
		done
	done
	{
		echo "set terminal pngcairo size 1100,$((420 * ntables + 60)) font ',10'"
		echo "set output '$OUT_REPLACE_PNG'"
		echo "set multiplot layout $ntables,2 title 'replace\\_partition (diff, delete\\_insert) vs DELETE + INSERT, a slice of a table that is not partitioned: ms per 1,000 slice rows ($version)'"
		echo "set logscale xy"
		echo "set grid"
		echo "set key top right"
		echo "set xlabel 'slice rows'"
		echo "set ylabel 'ms per 1,000 slice rows'"
		echo "set format x '10^{%L}'"
		for rows in $SCALE_ROWS; do
			for phase in "identical re-run" "10% changed"; do
				echo "set title '$phase, table of $rows rows'"
				p=${phase%% *}
				echo "plot '$DATA/r$rows-$p-diff.dat' with linespoints lw 2 title 'diff', '$DATA/r$rows-$p-delete_insert.dat' with linespoints lw 2 title 'delete\\_insert', '$DATA/r$rows-$p-DELETE.dat' with linespoints lw 2 title 'DELETE + INSERT'"
			done
		done
		echo "unset multiplot"
	} | gnuplot
	echo "scale: picture in $OUT_REPLACE_PNG"
fi
