# The upsert and the replace hold no rows: the backend's private memory
# (RssAnon in /proc/<pid>/status, which leaves out shared buffers) while it
# upserts, or replaces a slice with, a small and a large batch must not grow
# with the batch; nor, beyond the document itself, while it upserts a JSON
# array of MEMORY_JSON_ROWS objects (default "200000 1000000").
#
# For each size in MEMORY_ROWS (default "500000 2000000"; docs/performance.md's
# figures use "1000000 5000000") four upserts are measured, sampling
# RssAnon every 20 ms: the first load into an empty table, a replay with
# 10% of the rows changed, an identical replay, and 10% changed again
# through idempotent_upsert_query (the query's rows, materialized once,
# spill past work_mem like any CTE's).  Then three replaces of
# the slice the batch covers (replace_partition_range over the batch's
# year, with 1,000 rows of the table outside it): diff with 10% of the rows
# changed, diff again with nothing changed, and delete_insert.
#
# Parallel query is off (max_parallel_workers_per_gather = 0), so all the
# work happens in the one backend measured, and what remains is the
# executor's own memory.  The replay paths join the batch to the table; a
# hash join bounded by work_mem splits into more batches as the input
# grows, and PostgreSQL keeps a file buffer per batch (8 kB each, outside
# work_mem).  Measured on PostgreSQL 15, 2 cores: the first load peaks at
# 3.4 MB at 500k, 1M, 2M and 5M rows alike (+4 kB from 1M to 5M); the
# replays at 8.7-9.8 MB at 500k-1M rows and 10.6-11.7 MB at 5M (+1.9 MB
# from 1M to 5M, +0.4 MB from 500k to 2M).  With parallel hash join
# those buffers live in every worker and grow faster, which is why bench/run
# shows 10-20 MB at 5M rows; that is PostgreSQL's cost, not rows held by the
# extension.  So the bounds are: the first load (no join) may not grow by
# more than FIRST_LOAD_SLACK_KB (2 MB) from the small size to the large one,
# the replays by no more than REPLAY_SLACK_KB (4 MB); either growth, if the
# extension kept rows, would be hundreds of MB.
#
# The replace's diff counts the row images of slice and batch with a hash
# aggregate and writes by hash anti-joins, both bounded by work_mem (the
# aggregate spills to disk, with a file buffer per partition): measured
# with the default sizes, 13.3 MB at 500k and 2M rows with 10% changed,
# 14.3 and 14.8 MB for the identical replay (+0.5 MB).  delete_insert is a
# DELETE and an INSERT ... SELECT, with no join: 3.5 MB at both sizes (+4
# kB).  So the diff has the replays' bound, REPLAY_SLACK_KB, and
# delete_insert the first load's, FIRST_LOAD_SLACK_KB.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep time);

my @sizes = split ' ', ($ENV{MEMORY_ROWS} // '500000 2000000');
my @json_sizes = split ' ', ($ENV{MEMORY_JSON_ROWS} // '200000 1000000');
my $first_load_slack = $ENV{FIRST_LOAD_SLACK_KB} // 2048;
my $replay_slack = $ENV{REPLAY_SLACK_KB} // 4096;
die "MEMORY_ROWS needs two sizes, small then large" unless @sizes == 2;
die "MEMORY_JSON_ROWS needs two sizes, small then large" unless @json_sizes == 2;

my $node = PostgreSQL::Test::Cluster->new('memory_flat');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_buffers = 128MB
work_mem = 4MB
max_parallel_workers_per_gather = 0
max_wal_size = 4GB
autovacuum = off
jit = off
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_idempotent');

# Run one statement in a fresh session and return the peak RssAnon (kB) of
# its backend while the statement ran, and the seconds it took.
sub peak_rss_anon
{
	my ($sql) = @_;
	my ($in, $out, $err) = ('', '', '');
	my $h = IPC::Run::start(
		[ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres') ],
		'<', \$in, '>', \$out, '2>', \$err);
	$in = "SELECT pg_backend_pid();\n";
	$h->pump until $out =~ /^(\d+)\n/;
	my $pid = $1;

	# the session's memory before the statement: what it grows from
	my $base = rss_anon($pid);
	my $t0 = time();
	$in .= "$sql\n\\q\n";
	my $peak = 0;
	while ($h->pumpable)
	{
		my $kb = rss_anon($pid);
		$peak = $kb if defined $kb && $kb > $peak;
		usleep(20_000);
		$h->pump_nb;
	}
	$h->finish or die "psql failed: $err";
	return ($peak, $base, time() - $t0);
}

sub rss_anon
{
	my ($pid) = @_;
	open(my $fh, '<', "/proc/$pid/status") or return undef;
	while (<$fh>)
	{
		return $1 if /^RssAnon:\s+(\d+)\s+kB/;
	}
	return undef;
}

my %peak;
for my $rows (@sizes)
{
	$node->safe_psql('postgres', qq{
		DROP TABLE IF EXISTS stg, t;
		CREATE UNLOGGED TABLE stg (id bigint, customer_id int, amount numeric(12,2),
								   order_date date, status text);
		INSERT INTO stg SELECT g, g % 5000, (g % 100000) / 100.0, date '2025-01-01' + g % 365, 'new'
			FROM generate_series(1, $rows) g;
		CREATE UNLOGGED TABLE t (id bigint PRIMARY KEY, customer_id int, amount numeric(12,2),
								 order_date date, status text);
		VACUUM ANALYZE stg;
	});
	my @steps = (
		[ 'first load', undef ],
		[ '10% changed', q{UPDATE stg SET status = 'changed' WHERE id % 10 = 0; VACUUM ANALYZE stg, t;} ],
		[ 'identical replay', q{VACUUM ANALYZE t;} ],
		[ 'query 10% changed', q{UPDATE stg SET status = 'by query' WHERE id % 10 = 2; VACUUM ANALYZE stg, t;},
		  q{SELECT inserted, updated, unchanged FROM idempotent_upsert_query('t',
			'SELECT id, customer_id, amount, order_date, status FROM stg');} ]);
	for my $step (@steps)
	{
		my ($name, $prepare, $sql) = @$step;
		$node->safe_psql('postgres', $prepare) if defined $prepare;
		my ($kb, $base, $secs) = peak_rss_anon(
			$sql // q{SELECT inserted, updated, unchanged FROM idempotent_upsert('t', 'stg');});
		$peak{$rows}{$name} = $kb;
		note sprintf('%9d rows, %-16s peak RssAnon %6d kB (session before: %6d kB), %.1f s',
			$rows, $name, $kb, $base, $secs);
		ok($kb > 0, "$rows rows, $name: the backend's memory was sampled");
	}
	is($node->safe_psql('postgres', 'SELECT count(*) FROM t'), $rows, "$rows rows: all upserted");

	# The replace holds no rows either: the slice of t that the batch covers
	# (all of 2025; the rows of 2024, outside the slice, stay as they are)
	# replaced with stg, in diff mode (10% changed, then an identical
	# replay) and in delete_insert mode.
	$node->safe_psql('postgres', q{
		INSERT INTO t SELECT -g, g % 5000, 1, date '2024-06-01', 'outside' FROM generate_series(1, 1000) g;
		UPDATE stg SET status = 'replaced' WHERE id % 10 = 1;
		VACUUM ANALYZE stg, t;
	});
	my @replace_steps = (
		[ 'replace diff 10%', 'diff', undef ],
		[ 'replace diff same', 'diff', q{VACUUM ANALYZE t;} ],
		[ 'replace del/ins', 'delete_insert', q{VACUUM ANALYZE t;} ]);
	for my $step (@replace_steps)
	{
		my ($name, $mode, $prepare) = @$step;
		$node->safe_psql('postgres', $prepare) if defined $prepare;
		my ($kb, $base, $secs) = peak_rss_anon(
			qq{SELECT deleted, inserted, unchanged FROM replace_partition_range('t', 'stg', 'order_date',
				date '2025-01-01', date '2026-01-01', mode => '$mode');});
		$peak{$rows}{$name} = $kb;
		note sprintf('%9d rows, %-16s peak RssAnon %6d kB (session before: %6d kB), %.1f s',
			$rows, $name, $kb, $base, $secs);
		ok($kb > 0, "$rows rows, $name: the backend's memory was sampled");
	}
	is($node->safe_psql('postgres', q{SELECT count(*) FILTER (WHERE status = 'outside'),
		count(*) FILTER (WHERE status = 'replaced') FROM t}),
		"1000|" . int(($rows + 9) / 10), "$rows rows: the slice replaced, the rows outside it kept");
}

# A JSON document is held whole while it is read (PostgreSQL detoasts it
# once, as any function of it does), so its floor is a statement that only
# reads it, SELECT jsonb_array_length(doc): what the call uses beyond that
# floor must not grow with the batch.  jsonb_to_recordset keeps every row's
# intermediate values to the end of the statement (about 400 bytes an
# object of these five columns, so +300 MB from 200k to 1M objects);
# jsonrows.c builds each row in a context reset per object.
my %json_over;
for my $rows (@json_sizes)
{
	$node->safe_psql('postgres', qq{
		DROP TABLE IF EXISTS docs, tj;
		CREATE TABLE docs (doc jsonb);
		INSERT INTO docs SELECT jsonb_agg(jsonb_build_object('id', g, 'customer_id', g % 5000,
			'amount', (g % 100000) / 100.0, 'order_date', date '2025-01-01' + g % 365,
			'status', 'new')) FROM generate_series(1, $rows) g;
		CREATE TABLE tj (id bigint PRIMARY KEY, customer_id int, amount numeric(12,2),
						 order_date date, status text);
		VACUUM ANALYZE docs;
	});
	my ($floor) = peak_rss_anon(q{SELECT jsonb_array_length(doc) FROM docs;});
	note sprintf('%9d objects, %-16s peak RssAnon %6d kB', $rows, 'the document read', $floor);
	for my $name ('JSON first load', 'JSON replay')
	{
		my ($kb, $base, $secs) = peak_rss_anon(
			q{SELECT inserted, unchanged FROM idempotent_upsert_json('tj', (SELECT doc FROM docs));});
		$json_over{$rows}{$name} = $kb - $floor;
		note sprintf('%9d objects, %-16s peak RssAnon %6d kB (%+d kB over the document read), %.1f s',
			$rows, $name, $kb, $kb - $floor, $secs);
		ok($kb > 0 && $floor > 0, "$rows objects, $name: the backend's memory was sampled");
	}
	is($node->safe_psql('postgres', 'SELECT count(*) FROM tj'), $rows, "$rows objects: all upserted");
}

my ($small, $large) = @sizes;
cmp_ok($peak{$large}{'first load'} - $peak{$small}{'first load'}, '<=', $first_load_slack,
	"first load: $large rows use at most ${first_load_slack} kB more than $small rows");
for my $name ('10% changed', 'identical replay', 'query 10% changed')
{
	cmp_ok($peak{$large}{$name} - $peak{$small}{$name}, '<=', $replay_slack,
		"$name: $large rows use at most ${replay_slack} kB more than $small rows");
}
for my $name ('replace diff 10%', 'replace diff same')
{
	cmp_ok($peak{$large}{$name} - $peak{$small}{$name}, '<=', $replay_slack,
		"$name: $large rows use at most ${replay_slack} kB more than $small rows");
}
cmp_ok($peak{$large}{'replace del/ins'} - $peak{$small}{'replace del/ins'}, '<=', $first_load_slack,
	"replace del/ins: $large rows use at most ${first_load_slack} kB more than $small rows");

my ($jsmall, $jlarge) = @json_sizes;
for my $name ('JSON first load', 'JSON replay')
{
	cmp_ok($json_over{$jlarge}{$name} - $json_over{$jsmall}{$name}, '<=', $replay_slack,
		"$name: beyond reading the document, $jlarge objects use at most ${replay_slack} kB more than $jsmall");
}

$node->stop;
done_testing();
