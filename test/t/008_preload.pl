# The library may be preloaded (shared_preload_libraries), as the install
# notes suggest for pipelines that open a connection per call: each new
# backend then starts with it loaded instead of loading it at its first
# call.  The server must start with it, its settings must be known from
# the start (before any CREATE EXTENSION: a setting in postgresql.conf is
# checked against the real definition, not kept as a placeholder), and the
# calls must work as when it is loaded on demand.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('preload');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_idempotent'
pg_idempotent.lock_timeout = 1500
});
$node->start;

# known before the extension exists in any database
is($node->safe_psql('postgres', 'SHOW pg_idempotent.lock_timeout'), '1500ms',
	'a setting from postgresql.conf is defined at startup');
my ($rc, $out, $err) = $node->psql('postgres', 'SET pg_idempotent.lock_timout = 5');
isnt($rc, 0, 'a mistyped pg_idempotent setting is refused');
like($err, qr/invalid configuration parameter name|unrecognized configuration parameter/,
	'with the server\'s error for a reserved prefix');

$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_idempotent;
	CREATE TABLE t (id int PRIMARY KEY, v text);
});
my $doc = q{'[{"id": 1, "v": "a"}, {"id": 2, "v": "b"}]'};
is($node->safe_psql('postgres', "SELECT inserted FROM idempotent_upsert_json('t', $doc)"),
	'2', 'an upsert in a preloaded backend writes');
is($node->safe_psql('postgres', "SELECT unchanged FROM idempotent_upsert_json('t', $doc)"),
	'2', 'and its replay writes nothing');
is($node->safe_psql('postgres',
		"SET pg_idempotent.run_time = '2025-01-02 00:00+00'; SELECT run_time() = '2025-01-02 00:00+00'"),
	't', 'run_time() reads its setting');

$node->stop;
done_testing();
