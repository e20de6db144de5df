# Crash in the middle of a large replace, in each mode: kill the server
# (immediate stop) while replace_partition runs, and again after it has
# finished but before its transaction commits, restart, and check that the
# slice is the old one, nothing else changed, the partition is still
# attached with valid indexes, and no half-built partition is left behind.
# CRASH_ROWS sets the size of the replaced partition.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep time);

my $rows = $ENV{CRASH_ROWS} // 200000;

my $node = PostgreSQL::Test::Cluster->new('replace_crash');
$node->init;
$node->append_conf('postgresql.conf', "shared_buffers = 128MB\nmax_wal_size = 2GB\n");
$node->start;

# two days, the second is replaced by an entirely new version of itself
$node->safe_psql('postgres', qq{
	CREATE EXTENSION pg_idempotent;
	CREATE TABLE sales (day date NOT NULL, id int NOT NULL, amount numeric, note text,
		PRIMARY KEY (day, id)) PARTITION BY RANGE (day);
	CREATE INDEX ON sales (amount);
	CREATE TABLE sales_0101 PARTITION OF sales FOR VALUES FROM ('2025-01-01') TO ('2025-01-02');
	CREATE TABLE sales_0102 PARTITION OF sales FOR VALUES FROM ('2025-01-02') TO ('2025-01-03');
	INSERT INTO sales SELECT d, g, g * 1.5, 'old'
		FROM (VALUES (date '2025-01-01'), (date '2025-01-02')) v(d), generate_series(1, $rows) g;
	CREATE TABLE stage AS SELECT date '2025-01-02' AS day, g AS id, g * 2.5 AS amount, 'new' AS note
		FROM generate_series(1, $rows) g;
	VACUUM ANALYZE sales, stage;
});
my $before = $node->safe_psql('postgres', "SELECT table_fingerprint('sales')");
my $oid_before = $node->safe_psql('postgres', "SELECT 'sales_0102'::regclass::oid");

sub check_intact
{
	my ($what) = @_;
	is($node->safe_psql('postgres', "SELECT table_fingerprint('sales')"), $before,
		"$what: the table holds the old slice and nothing else changed");
	is($node->safe_psql('postgres', "SELECT 'sales_0102'::regclass::oid"), $oid_before,
		"$what: the old partition is still the one attached");
	is($node->safe_psql('postgres',
		"SELECT count(*) FROM pg_class WHERE relname LIKE 'pgi_swap%'"), '0',
		"$what: no half-built partition is left in the catalog");
	is($node->safe_psql('postgres',
		"SELECT bool_and(indisvalid) FROM pg_index WHERE indrelid = 'sales_0102'::regclass"), 't',
		"$what: the partition's indexes are valid");
	is($node->safe_psql('postgres',
		"SET enable_seqscan = off; SET enable_bitmapscan = off; SELECT count(*) FROM sales WHERE day = '2025-01-02' AND id > 0"),
		$rows, "$what: index and heap agree");
}

for my $mode (qw(diff delete_insert swap))
{
	my $call = "SELECT * FROM replace_partition('sales', 'stage', 'day', date '2025-01-02', '$mode')";

	# how long an undisturbed replace takes (rolled back)
	my $t0 = time();
	my $result = $node->safe_psql('postgres', "BEGIN; $call; ROLLBACK;");
	my $duration = time() - $t0;
	like($result, qr/\|$mode$/, "$mode: an undisturbed replace runs in mode $mode");
	note sprintf('undisturbed %s replace of %d rows: %.2f s', $mode, $rows, $duration);

	# kill in the middle of the replace, then after it but before COMMIT
	for my $point ('during', 'before commit')
	{
		$node->safe_psql('postgres', 'CHECKPOINT');
		my ($out, $err) = ('', '');
		my $h = IPC::Run::start(
			[ 'psql', '-XAtq', '-d', $node->connstr('postgres'),
			  '-c', "BEGIN; $call; SELECT pg_sleep(600); COMMIT;" ],
			'>', \$out, '2>', \$err);
		my $delay = $point eq 'during' ? $duration / 2 : $duration + 1.0;
		usleep(int($delay * 1_000_000));
		$node->stop('immediate');
		$h->finish;
		$node->start;
		check_intact(sprintf('%s, kill %s the replace (%.2f s)', $mode, $point, $delay));
	}
}

# and the same replace, left to commit, does change the slice
$node->safe_psql('postgres',
	"SELECT * FROM replace_partition('sales', 'stage', 'day', date '2025-01-02', 'swap')");
is($node->safe_psql('postgres', "SELECT note, count(*) FROM sales WHERE day = '2025-01-02' GROUP BY note"),
	"new|$rows", 'a committed replace changes the slice');

# a crash right after the commit keeps it: the swap rewrites the new leaf's
# pages to freeze its rows, and those page images are in the WAL
$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres', "SELECT note, count(*) FROM sales WHERE day = '2025-01-02' GROUP BY note"),
	"new|$rows", 'a committed swap survives a crash right after its commit');
is($node->safe_psql('postgres',
		"SET enable_seqscan = off; SET enable_bitmapscan = off; "
		  . "SELECT count(*) FROM sales WHERE day = '2025-01-02'"),
	$rows, 'and its index agrees with its heap after recovery');

$node->stop;
done_testing();
