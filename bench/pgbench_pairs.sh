# Shared by the pgbench benchmarks (bench/ledger.sh, bench/small.sh): a call
# of the extension against the raw statement(s) it replaces, alternated in
# one run, with two estimates of each ratio, so that a neighbour's burst on
# a shared machine does not decide one: the best run of each against the
# best of the other, and ("paired") the median over the rounds of the ratio
# of two runs made one after the other.
#
#   . bench/pgbench_pairs.sh
#   PGB_DIR=dir (scripts are $PGB_DIR/<name>.sql); PGB_MODE=prepared|simple
#   pgbench_compare CLIENTS SECONDS ROUNDS EXT "NAME1 NAME2 ..."
#     runs each named script (EXT among them) ROUNDS times for SECONDS at
#     CLIENTS clients, in the given order in odd rounds and the reverse in
#     even ones, and leaves BEST[name] (best tps of each) and PAIRED[name]
#     (median of the rounds' EXT/name ratios) set.

declare -A BEST=() PAIRED=()

# tps of one pgbench run of a script file
pgb() {
	local clients=$1 script=$2
	shift 2
	pgbench -n -M "${PGB_MODE:-prepared}" -c "$clients" -j "$clients" "$@" -f "$script" >"$PGB_DIR/out" 2>&1 || true
	awk '/^tps = / { tps = $3 } END { print tps + 0 }' "$PGB_DIR/out"
	grep -m1 -E 'ERROR|error' "$PGB_DIR/out" >&2 || true
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { printf "%.2f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

reverse_words() { local w out=""; for w in $1; do out="$w${out:+ }$out"; done; echo "$out"; }

pgbench_compare() {
	local clients=$1 seconds=$2 rounds=$3 ext=$4 names=$5
	local r who t order
	local -A run=() ratios=()
	BEST=()
	PAIRED=()
	for who in $names; do
		BEST[$who]=0
		ratios[$who]=""
	done
	for r in $(seq 1 "$rounds"); do
		order=$names
		[ $((r % 2)) = 0 ] && order=$(reverse_words "$names")
		for who in $order; do
			psql -X -q -c "CHECKPOINT"
			t=$(pgb "$clients" "$PGB_DIR/$who.sql" -T "$seconds")
			run[$who]=$t
			BEST[$who]=$(awk -v a="${BEST[$who]}" -v b="$t" 'BEGIN { print (a > b) ? a : b }')
		done
		for who in $names; do
			[ "$who" = "$ext" ] || ratios[$who]="${ratios[$who]} $(ratio "${run[$ext]}" "${run[$who]}")"
		done
	done
	for who in $names; do
		[ "$who" = "$ext" ] || PAIRED[$who]=$(echo "${ratios[$who]}" | median)
	done
}
