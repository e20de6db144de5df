# Shared by test/run, examples/run and bench/run: a throwaway PostgreSQL
# cluster owned by the postgres user, on a private socket directory and a
# port of its own, so it never meets another server on this machine.
#
#   . test/lib.sh; cluster_start [extra postgres -c options...]; ...; cluster_stop
#
# After cluster_start, PGHOST, PGPORT, PGUSER and PGDATABASE point at it.

# PG_CONFIG (as make takes it) picks the server; else the pg_config on PATH
PG_CONFIG=${PG_CONFIG:-pg_config}
PGBIN=$("$PG_CONFIG" --bindir)
export PG_CONFIG PGBIN
export PATH="$PGBIN:$PATH"

cluster_start() {
	CLUSTER_DIR=$(mktemp -d /tmp/pg_idempotent.XXXXXX)
	chmod 755 "$CLUSTER_DIR"
	chown postgres: "$CLUSTER_DIR"
	# any port works on a private socket directory with no TCP listener;
	# pick one unlikely to be anyone's default anyway
	CLUSTER_PORT=$((20000 + $$ % 20000))
	as_postgres initdb -D "$CLUSTER_DIR/data" -A trust -U postgres --no-sync >"$CLUSTER_DIR/initdb.log" 2>&1 ||
		{ cat "$CLUSTER_DIR/initdb.log"; return 1; }
	opts="-k $CLUSTER_DIR -p $CLUSTER_PORT -c listen_addresses= -c fsync=off -c max_prepared_transactions=10"
	for o in "$@"; do
		opts="$opts -c $o"
	done
	as_postgres pg_ctl -D "$CLUSTER_DIR/data" -o "$opts" -l "$CLUSTER_DIR/server.log" -w start >/dev/null ||
		{ cat "$CLUSTER_DIR/server.log"; return 1; }
	export PGHOST="$CLUSTER_DIR" PGPORT="$CLUSTER_PORT" PGUSER=postgres PGDATABASE=postgres
	trap cluster_stop EXIT INT TERM
}

cluster_stop() {
	trap - EXIT INT TERM
	if [ -n "${CLUSTER_DIR:-}" ] && [ -d "$CLUSTER_DIR/data" ]; then
		as_postgres pg_ctl -D "$CLUSTER_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
		rm -rf "$CLUSTER_DIR"
	fi
	CLUSTER_DIR=
}

# Run a command as the postgres user (PostgreSQL refuses to run as root).
as_postgres() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- env PATH="$PATH" "$@"
	else
		"$@"
	fi
}
