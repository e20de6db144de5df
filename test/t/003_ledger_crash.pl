# Crash in the middle of a drain: 4 workers drain a ledger with
# ledger_claim_next + ledger_complete, each completion in the same
# transaction as a row in a side table (the work's "effect").  The server
# is killed (immediate stop) mid-way, restarted, and the drain finished.
# Every key must end done exactly once: one effect row per key, written by
# the token that completed it, and no key left in any other status.
# LEDGER_CRASH_KEYS sets the number of keys (default 20000),
# LEDGER_CRASH_KILLS the number of kill points (default 6).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep);

my $keys = $ENV{LEDGER_CRASH_KEYS} // 20000;
my $kills = $ENV{LEDGER_CRASH_KILLS} // 6;
my $workers = 4;

my $node = PostgreSQL::Test::Cluster->new('ledger_crash');
$node->init;
$node->start;

# A worker: claim 10 keys (committed, so the lease is visible), then for
# each, in one transaction, write the effect and complete with the token.
# A complete with a stale token returns false and the effect is rolled
# back.  Loops until the queue is empty.
$node->safe_psql('postgres', qq{
	CREATE EXTENSION pg_idempotent;
	-- a lease that runs out counts toward max_attempts; on a loaded machine
	-- a key could see five, and this test is about crashes, not attempts
	SELECT ledger_create('drain', lease => '2 seconds', max_attempts => 1000);
	SELECT ledger_enqueue('drain', ARRAY(SELECT 'k' || g FROM generate_series(1, $keys) g));
	CREATE TABLE effects (key text, token bigint);
	CREATE PROCEDURE work() LANGUAGE plpgsql AS \$\$
	DECLARE
		c record;
		n int;
	BEGIN
		CREATE TEMP TABLE batch (key text, token bigint);
		COMMIT;
		LOOP
			TRUNCATE batch;
			INSERT INTO batch SELECT key, token FROM ledger_claim_next('drain', 10);
			GET DIAGNOSTICS n = ROW_COUNT;
			COMMIT;
			EXIT WHEN n = 0;
			FOR c IN SELECT key, token FROM batch LOOP
				-- the effect and the completion commit together, or not at all
				INSERT INTO effects VALUES (c.key, c.token);
				IF ledger_complete('drain', c.key, c.token) THEN
					COMMIT;
				ELSE
					ROLLBACK;	-- the lease ran out and another worker has the key
				END IF;
			END LOOP;
		END LOOP;
	END \$\$;
});

sub start_workers
{
	my @h;
	for my $w (1 .. $workers)
	{
		my ($out, $err) = ('', '');
		push @h, IPC::Run::start(
			[ 'psql', '-XAtq', '-d', $node->connstr('postgres'), '-c', 'CALL work()' ],
			'>', \$out, '2>', \$err);
	}
	return @h;
}

sub done_count
{
	return $node->safe_psql('postgres',
		"SELECT keys FROM ledger_stats('drain') WHERE status = 'done'");
}

for my $kill (1 .. $kills)
{
	my @h = start_workers();
	# wait until a share of the keys is done, then kill the server
	my $target = int($keys * $kill / ($kills + 1));
	my $waited = 0;
	while (done_count() < $target && $waited < 600)
	{
		usleep(100_000);
		$waited++;
	}
	my $at = done_count();
	$node->stop('immediate');
	$_->finish for @h;
	$node->start;
	note "kill $kill after $at of $keys keys were done";
	ok($at < $keys, "kill $kill happened before the drain ended");
}

# Leases of keys claimed before a crash run out after 2 s; finish the drain
# after that, so none is left behind.
sleep 3;
my @h = start_workers();
$_->finish for @h;
my $left = $node->safe_psql('postgres',
	"SELECT count(*) FROM ledger_claim_next('drain', 100000)");
is($left, '0', 'nothing is left to claim');

is($node->safe_psql('postgres',
	"SELECT string_agg(status || '=' || keys, ' ' ORDER BY status) FROM ledger_stats('drain')"),
	"dead=0 done=$keys failed=0 pending=0 processing=0",
	'every key ended done');
note 'keys claimed more than once (leases cut by a crash, taken over): '
  . $node->safe_psql('postgres', 'SELECT count(*) FROM pgi_ledger_key WHERE attempts > 1');
is($node->safe_psql('postgres', 'SELECT count(*) FROM effects'), $keys,
	'one effect per key');
is($node->safe_psql('postgres',
	'SELECT count(*) FROM (SELECT key FROM effects GROUP BY key HAVING count(*) > 1) d'),
	'0', 'no key has two effects');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM pgi_ledger_key k
	LEFT JOIN effects e ON e.key = k.key AND e.token = k.token
	WHERE k.ledger_id = (SELECT id FROM pgi_ledger WHERE name = 'drain') AND e.key IS NULL}),
	'0', 'each effect was written by the token that completed its key');

$node->stop;
done_testing();
