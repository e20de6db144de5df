# Crash in the middle of idempotent_upsert: kill the server (immediate stop)
# at several points of a large upsert, restart it, and check that the target
# holds exactly the state before the upsert or exactly the state after it,
# as table_fingerprint sees it.  CRASH_POINTS=N sets how many kill points
# (spread over the upsert's run time); CRASH_ROWS the batch size.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep time);

my $rows = $ENV{CRASH_ROWS} // 400000;
my $points = $ENV{CRASH_POINTS} // 8;

my $node = PostgreSQL::Test::Cluster->new('upsert_crash');
$node->init;
$node->append_conf('postgresql.conf', "shared_buffers = 128MB\nmax_wal_size = 2GB\n");
$node->start;

# half the keys exist with old values, the batch brings all of them: the
# upsert both updates and inserts
$node->safe_psql('postgres', qq{
	CREATE EXTENSION pg_idempotent;
	CREATE TABLE stg (id bigint, v text, n numeric);
	INSERT INTO stg SELECT g, 'new ' || g, g * 1.5 FROM generate_series(1, $rows) g;
	CREATE TABLE t (id bigint PRIMARY KEY, v text, n numeric);
	CREATE TABLE t_after (LIKE t INCLUDING ALL);
	CREATE FUNCTION reset_t(target regclass) RETURNS void LANGUAGE plpgsql AS \$\$
	BEGIN
		EXECUTE format('TRUNCATE %s', target);
		EXECUTE format('INSERT INTO %s SELECT g, ''old'', 0 FROM generate_series(1, %s, 2) g', target, $rows);
	END \$\$;
	SELECT reset_t('t_after');
	SELECT * FROM idempotent_upsert('t_after', 'stg');
});
my $after = $node->safe_psql('postgres', "SELECT table_fingerprint('t_after')");

# how long an undisturbed upsert takes, to spread the kill points over it
$node->safe_psql('postgres', "SELECT reset_t('t')");
my $before = $node->safe_psql('postgres', "SELECT table_fingerprint('t')");
isnt($before, $after, 'the upsert changes the table');
my $t0 = time();
$node->safe_psql('postgres', "SELECT * FROM idempotent_upsert('t', 'stg')");
my $duration = time() - $t0;
is($node->safe_psql('postgres', "SELECT table_fingerprint('t')"), $after,
	'an undisturbed upsert reaches the after state');
note sprintf('undisturbed upsert of %d rows: %.2f s', $rows, $duration);

my %seen = (before => 0, after => 0);
for my $i (1 .. $points)
{
	$node->safe_psql('postgres', "SELECT reset_t('t'); CHECKPOINT;");
	my $delay = $duration * $i / ($points + 1);

	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'psql', '-XAtq', '-d', $node->connstr('postgres'),
		  '-c', "SELECT * FROM idempotent_upsert('t', 'stg')" ],
		'>', \$out, '2>', \$err);
	usleep(int($delay * 1_000_000));
	$node->stop('immediate');
	$h->finish;
	$node->start;

	my $fp = $node->safe_psql('postgres', "SELECT table_fingerprint('t')");
	my $state = $fp eq $before ? 'before' : $fp eq $after ? 'after' : 'neither';
	$seen{$state}++;
	is($state eq 'neither' ? $fp : 'ok', 'ok',
		sprintf('kill point %d at %.2f s: table is in the %s state', $i, $delay, $state));

	# the primary key index agrees with the heap after recovery
	is($node->safe_psql('postgres',
		"SET enable_seqscan = off; SET enable_bitmapscan = off; SELECT count(*) FROM t WHERE id > 0"),
		$node->safe_psql('postgres', "SET enable_indexscan = off; SET enable_bitmapscan = off; SELECT count(*) FROM t"),
		"kill point $i: index and heap agree");
}
note "kill points that left the before state: $seen{before}, the after state: $seen{after}";
ok($seen{before} > 0, 'at least one kill point interrupted the upsert');

$node->stop;
done_testing();
