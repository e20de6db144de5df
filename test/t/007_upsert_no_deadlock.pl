# Overlapping micro-batches in random orders (issue 19's workload c, made
# harsher), into a table, with a version column, and into a partitioned
# table: eight clients upsert JSON batches of up to 100 keys drawn from
# 800, half of them present in the table, each batch in its own random order
# and with its own values, so batches share keys both to update and to
# insert.  A session writing its rows in the order its join produces them
# holds some keys the next one wants and waits for others it holds: a
# deadlock, which the call then has to undo and retry.  The upsert takes its
# row locks in key order, so none happens at all: the test counts
# pg_stat_database.deadlocks (the deadlocks the call absorbs count there
# too), and every call must succeed.  deadlock_timeout is short so that a
# regression shows in seconds, not minutes.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $clients = $ENV{DEADLOCK_CLIENTS} // 8;
my $calls = $ENV{DEADLOCK_CALLS} // 40;

my $node = PostgreSQL::Test::Cluster->new('upsert_no_deadlock');
$node->init;
$node->append_conf('postgresql.conf',
	"deadlock_timeout = 20ms\nmax_connections = 30\n");
$node->start;

$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_idempotent;
	CREATE TABLE t (id int PRIMARY KEY, v bigint NOT NULL, ver bigint NOT NULL, note text);
	INSERT INTO t SELECT g, 0, 0, 'loaded' FROM generate_series(1, 800, 2) g;
	CREATE TABLE tv (LIKE t INCLUDING ALL);
	INSERT INTO tv SELECT * FROM t;
	CREATE TABLE tp (id int PRIMARY KEY, v bigint NOT NULL, ver bigint NOT NULL, note text)
		PARTITION BY RANGE (id);
	CREATE TABLE tp_1 PARTITION OF tp FOR VALUES FROM (0) TO (400);
	CREATE TABLE tp_2 PARTITION OF tp FOR VALUES FROM (400) TO (1000);
	INSERT INTO tp SELECT * FROM t;
});

# one call: distinct random keys, random order, this call's own values
my $batch = q{(SELECT jsonb_agg(jsonb_build_object('id', k, 'v', :val, 'ver', :val, 'note', 'call ' || :val) ORDER BY random())
	FROM (SELECT DISTINCT 1 + (random() * 799)::int AS k FROM generate_series(1, 100)) s)};
my %scripts = (
	'plain' => "\\set val random(1, 1000000000)\n"
	  . "SELECT inserted + updated FROM idempotent_upsert_json('t', $batch);\n",
	'versioned, on_duplicate last' => "\\set val random(1, 1000000000)\n"
	  . "SELECT inserted + updated FROM idempotent_upsert_json('tv', $batch || $batch, "
	  . "version_column => 'ver', on_duplicate => 'last');\n",
	# a partitioned table: rows are locked by key, not by ctid
	'partitioned' => "\\set val random(1, 1000000000)\n"
	  . "SELECT inserted + updated FROM idempotent_upsert_json('tp', $batch);\n",);

for my $name (sort keys %scripts)
{
	my $before = $node->safe_psql('postgres',
		"SELECT deadlocks FROM pg_stat_database WHERE datname = 'postgres'");
	my $file = $node->basedir . '/script.sql';
	open(my $fh, '>', $file) or die "cannot write $file: $!";
	print $fh $scripts{$name};
	close $fh;

	my ($out, $err) = run_command(
		[
			'pgbench', '-n', '-c', $clients, '-j', $clients, '-t', $calls,
			'-f', $file, '-h', $node->host, '-p', $node->port, 'postgres'
		]);
	like($out, qr/number of transactions actually processed: @{[$clients * $calls]}\//,
		"$name: every call succeeds");
	unlike($err, qr/ERROR|abort/, "$name: no client saw an error")
	  or diag($err);

	# the deadlocks of backends that exited are in the statistics by now
	my $after = $node->safe_psql('postgres',
		"SELECT deadlocks FROM pg_stat_database WHERE datname = 'postgres'");
	is($after - $before, 0, "$name: no deadlock, not even one the call absorbed");
}

# first loads: eight clients each upsert one batch into the same empty
# table at once, so every one of them finds it empty and loads its batch
# with a plain INSERT; the batches overlap, each in its own random order
my $load_batch = q{(SELECT jsonb_agg(jsonb_build_object('id', k, 'v', :client_id, 'ver', 0, 'note', 'call ' || :client_id) ORDER BY random())
	FROM (SELECT DISTINCT 1 + (random() * 299)::int AS k FROM generate_series(1, 200)) s)};
{
	my $before = $node->safe_psql('postgres',
		"SELECT deadlocks FROM pg_stat_database WHERE datname = 'postgres'");
	my $file = $node->basedir . '/first_load.sql';
	open(my $fh, '>', $file) or die "cannot write $file: $!";
	print $fh "SELECT inserted + updated FROM idempotent_upsert_json('tl', $load_batch);\n";
	close $fh;
	my $ok = 1;
	for my $round (1 .. 10)
	{
		$node->safe_psql('postgres',
			'DROP TABLE IF EXISTS tl; CREATE TABLE tl (LIKE t INCLUDING ALL)');
		my ($out, $err) = run_command(
			[
				'pgbench', '-n', '-c', $clients, '-j', $clients, '-t', 1,
				'-f', $file, '-h', $node->host, '-p', $node->port, 'postgres'
			]);
		$ok = 0 if $err =~ /ERROR|abort/;
	}
	ok($ok, 'first loads: no client saw an error');
	my $after = $node->safe_psql('postgres',
		"SELECT deadlocks FROM pg_stat_database WHERE datname = 'postgres'");
	is($after - $before, 0, 'first loads: no deadlock, not even one the call absorbed');
}

# each row is one call's whole row
for my $table ('t', 'tv', 'tp')
{
	is( $node->safe_psql('postgres',
			"SELECT count(*) FROM $table WHERE note IS DISTINCT FROM 'call ' || v AND note <> 'loaded'"),
		'0',
		"$table: every row is one call's row");
}

$node->stop;
done_testing();
