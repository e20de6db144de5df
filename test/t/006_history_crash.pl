# Crash in the middle of idempotent_history: kill the server (immediate
# stop) at several points of a large history write, restart it, and check
# that the target holds exactly the state before the call or exactly the
# state after it, as table_fingerprint sees it.  CRASH_POINTS=N sets how
# many kill points (spread over the call's run time); CRASH_ROWS the batch
# size.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep time);

my $rows = $ENV{CRASH_ROWS} // 300000;
my $points = $ENV{CRASH_POINTS} // 6;

my $node = PostgreSQL::Test::Cluster->new('history_crash');
$node->init;
$node->append_conf('postgresql.conf', "shared_buffers = 128MB\nmax_wal_size = 2GB\n");
$node->start;

# the odd keys have a current version; the batch changes every fourth key,
# keeps the others and brings the even keys new: the call closes, inserts
# and leaves rows alone
$node->safe_psql('postgres', qq{
	CREATE EXTENSION pg_idempotent;
	CREATE TABLE stg (id bigint, v text);
	INSERT INTO stg SELECT g, CASE WHEN g % 4 = 1 THEN 'new ' ELSE 'old ' END || g
	FROM generate_series(1, $rows) g;
	CREATE TABLE h (id bigint, v text, valid_from timestamptz NOT NULL, valid_to timestamptz,
		PRIMARY KEY (id, valid_from));
	CREATE TABLE h_after (LIKE h INCLUDING ALL);
	CREATE FUNCTION reset_h(target regclass) RETURNS void LANGUAGE plpgsql AS \$\$
	BEGIN
		EXECUTE format('TRUNCATE %s', target);
		EXECUTE format('INSERT INTO %s SELECT g, ''old '' || g, ''2025-01-01 00:00+00'', NULL
			FROM generate_series(1, %s, 2) g', target, $rows);
	END \$\$;
	SELECT reset_h('h_after');
	SELECT * FROM idempotent_history('h_after', 'stg', as_of => '2025-02-01 00:00+00');
});
my $after = $node->safe_psql('postgres', "SELECT table_fingerprint('h_after')");

# how long an undisturbed call takes, to spread the kill points over it
$node->safe_psql('postgres', "SELECT reset_h('h')");
my $before = $node->safe_psql('postgres', "SELECT table_fingerprint('h')");
isnt($before, $after, 'the call changes the table');
my $t0 = time();
$node->safe_psql('postgres',
	"SELECT * FROM idempotent_history('h', 'stg', as_of => '2025-02-01 00:00+00')");
my $duration = time() - $t0;
is($node->safe_psql('postgres', "SELECT table_fingerprint('h')"), $after,
	'an undisturbed call reaches the after state');
note sprintf('undisturbed history write of %d rows: %.2f s', $rows, $duration);

my %seen = (before => 0, after => 0);
for my $i (1 .. $points)
{
	$node->safe_psql('postgres', "SELECT reset_h('h'); CHECKPOINT;");
	my $delay = $duration * $i / ($points + 1);

	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'psql', '-XAtq', '-d', $node->connstr('postgres'),
		  '-c', "SELECT * FROM idempotent_history('h', 'stg', as_of => '2025-02-01 00:00+00')" ],
		'>', \$out, '2>', \$err);
	usleep(int($delay * 1_000_000));
	$node->stop('immediate');
	$h->finish;
	$node->start;

	my $fp = $node->safe_psql('postgres', "SELECT table_fingerprint('h')");
	my $state = $fp eq $before ? 'before' : $fp eq $after ? 'after' : 'neither';
	$seen{$state}++;
	is($state eq 'neither' ? $fp : 'ok', 'ok',
		sprintf('kill point %d at %.2f s: table is in the %s state', $i, $delay, $state));

	# the unique index agrees with the heap after recovery
	is($node->safe_psql('postgres',
		"SET enable_seqscan = off; SET enable_bitmapscan = off; SELECT count(*) FROM h WHERE id > 0"),
		$node->safe_psql('postgres', "SET enable_indexscan = off; SET enable_bitmapscan = off; SELECT count(*) FROM h"),
		"kill point $i: index and heap agree");

	# and a re-run after the crash finishes the job
	$node->safe_psql('postgres',
		"SELECT * FROM idempotent_history('h', 'stg', as_of => '2025-02-01 00:00+00')");
	is($node->safe_psql('postgres', "SELECT table_fingerprint('h')"), $after,
		"kill point $i: a re-run reaches the after state");
}
note "kill points that left the before state: $seen{before}, the after state: $seen{after}";
ok($seen{before} > 0, 'at least one kill point interrupted the call');

$node->stop;
done_testing();
