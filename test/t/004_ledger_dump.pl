# pg_dump / pg_restore round trip: every ledger, key, status, token,
# attempt, fingerprint, result and checkpoint survives, and the sequences
# continue where they were (a restored ledger never hands out a token it
# handed out before).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('ledger_dump');
$node->init;
$node->start;

$node->safe_psql('postgres', q{
	CREATE DATABASE src;
});
$node->safe_psql('src', q{
	CREATE SCHEMA pipelines;
	CREATE EXTENSION pg_idempotent SCHEMA pipelines;
	SET search_path = pipelines;
	SELECT ledger_create('orders', lease => '1 hour', max_attempts => 2, retention => '7 days');
	SELECT ledger_create('short', lease => '0');
	SELECT ledger_record('orders', 'o-' || g, decode(md5(g::text), 'hex')) FROM generate_series(1, 100) g;
	SELECT ledger_enqueue('orders', ARRAY['p-1', 'p-2', 'p-3', 'p-4']);
	SELECT ledger_complete('orders', key, token, jsonb_build_object('key', key))
		FROM ledger_claim_next('orders', 1);
	SELECT ledger_fail('orders', key, token, 'boom') FROM ledger_claim_next('orders', 1);
	SELECT key FROM ledger_claim_next('orders', 1);
	SELECT ledger_claim('short', 's-1');
	SELECT checkpoint_advance('consumer', 42);
	SELECT checkpoint_advance('batches', 7, '\x0707');
});

my $snapshot = q{
	SELECT string_agg(concat_ws('|', l.name, l.lease, l.max_attempts, l.retention, k.key, k.status,
		k.token, k.attempts, k.available_at, encode(k.fingerprint, 'hex'), k.result, k.error,
		k.created_at, k.updated_at), E'\n' ORDER BY l.name, k.key)
	FROM pipelines.pgi_ledger l JOIN pipelines.pgi_ledger_key k ON k.ledger_id = l.id
	UNION ALL
	SELECT string_agg(concat_ws('|', name, position, encode(fingerprint, 'hex'), updated_at), E'\n' ORDER BY name)
	FROM pipelines.pgi_checkpoint
	UNION ALL
	SELECT concat_ws('|', (SELECT last_value FROM pipelines.pgi_ledger_token_seq),
		(SELECT last_value FROM pipelines.pgi_ledger_id_seq))
};
my $before = $node->safe_psql('src', $snapshot);
like($before, qr/orders\|.*\|p-2\|failed/, 'the snapshot sees the ledger');

my $dump = $node->basedir . '/src.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('src') ], 'pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE dst');
$node->command_ok([ 'pg_restore', '-d', $node->connstr('dst'), $dump ], 'pg_restore');

is($node->safe_psql('dst', $snapshot), $before,
	'every ledger, key, status, token, result and checkpoint is restored');

# the restored ledger works on: known keys are known, tokens keep increasing
is($node->safe_psql('dst', q{
	SET search_path = pipelines;
	SELECT ledger_record('orders', 'o-1', decode(md5('1'), 'hex'))::text
		|| ' ' || ledger_record('orders', 'o-new')::text
		|| ' ' || (SELECT status FROM ledger_claim('orders', 'p-1'))
		|| ' ' || (SELECT (token > (SELECT max(token) FROM pgi_ledger_key WHERE key <> 's-1'))::text
		           FROM ledger_claim('short', 's-1'))
		|| ' ' || checkpoint_advance('consumer', 42)::text
		|| ' ' || checkpoint_get('consumer');
}), 'false true done true false 42', 'the restored ledger and checkpoints carry on');

my ($ret, $out, $err) = $node->psql('dst',
	q{SELECT pipelines.checkpoint_advance('batches', 7, '\x0808')});
like($err, qr/different fingerprint/, 'the restored fingerprint is still checked');

$node->stop;
done_testing();
