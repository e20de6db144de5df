-- Property checks for the ledger's set-based calls, over random cases from
-- a fixed seed: each batch function must do exactly what its single-key
-- function does key by key, in array order, on a twin ledger in the same
-- state.  ledger_record_batch against ledger_record (the new keys, each
-- once, and the keys left behind); ledger_complete_batch against
-- ledger_complete (the keys done by the token given, and every key's
-- status, attempts, result and token afterwards), with repeated keys,
-- current, stale and unknown tokens, and keys never seen.

\ir include/begin.sql
SET LOCAL search_path = public, pg_catalog;

SELECT plan(100);
SELECT setseed(0.4242);
SELECT diag('seed 0.4242');

-- a ledger's keys as comparable rows (tokens differ between twins: they
-- come from one sequence; what is compared is which key has one)
CREATE FUNCTION pg_temp.keys_of(ledger text)
RETURNS TABLE (key text, status text, attempts int, has_token boolean, result jsonb)
LANGUAGE sql AS $$
	SELECT k.key, k.status, k.attempts, k.token IS NOT NULL, k.result
	FROM pgi_ledger_key k JOIN pgi_ledger l ON l.id = k.ledger_id
	WHERE l.name = ledger
$$;

CREATE FUNCTION pg_temp.token_of(ledger text, k text) RETURNS bigint
LANGUAGE sql AS $$
	SELECT t.token FROM pgi_ledger_key t JOIN pgi_ledger l ON l.id = t.ledger_id
	WHERE l.name = ledger AND t.key = k
$$;

-- n keys drawn from k1..k<universe>, repeats allowed
CREATE FUNCTION pg_temp.draw(n int, universe int) RETURNS text[]
LANGUAGE sql AS $$
	SELECT coalesce(array_agg('k' || (1 + floor(random() * universe))::int), '{}')
	FROM generate_series(1, n)
$$;

--
-- ledger_record_batch = ledger_record, key by key
--
CREATE FUNCTION pg_temp.record_case(c int) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
	a text := 'rec_a_' || c;
	b text := 'rec_b_' || c;
	earlier text[] := pg_temp.draw((random() * 15)::int, 25);
	batch text[] := pg_temp.draw((random() * 30)::int, 25);
	k text;
	from_batch text[];
	from_singles text[] := '{}';
BEGIN
	PERFORM ledger_create(a);
	PERFORM ledger_create(b);
	PERFORM ledger_record_batch(a, earlier);
	PERFORM ledger_record_batch(b, earlier);
	SELECT coalesce(array_agg(r ORDER BY r), '{}') INTO from_batch
	FROM ledger_record_batch(a, batch) r;
	FOREACH k IN ARRAY batch LOOP
		IF ledger_record(b, k) THEN
			from_singles := from_singles || k;
		END IF;
	END LOOP;
	RETURN NEXT is(from_batch, (SELECT coalesce(array_agg(x ORDER BY x), '{}') FROM unnest(from_singles) x),
		format('record case %s: the batch returns the keys single calls find new (%s keys, %s repeats)',
			c, cardinality(batch), cardinality(batch) - (SELECT count(DISTINCT x) FROM unnest(batch) x)));
	RETURN NEXT is((SELECT count(*) FROM unnest(from_batch) x), (SELECT count(DISTINCT x) FROM unnest(from_batch) x),
		format('record case %s: each new key once', c));
	RETURN NEXT bag_eq(format('SELECT * FROM pg_temp.keys_of(%L)', a),
		format('SELECT * FROM pg_temp.keys_of(%L)', b),
		format('record case %s: the same keys recorded, in the same states', c));
	RETURN NEXT is(cardinality(from_batch),
		(SELECT count(DISTINCT x)::int FROM unnest(batch) x WHERE x <> ALL (earlier)),
		format('record case %s: new means not recorded before', c));
END $$;

SELECT pg_temp.record_case(c) FROM generate_series(1, 10) c;

--
-- ledger_complete_batch = ledger_complete, key by key
--
-- Each twin gets the same history: keys enqueued, some claimed, some of
-- those completed, some claimed twice (a takeover: the first token is
-- stale).  The batch then names keys (repeats, keys never seen) with a
-- token that is, for that key in that twin, current, stale or unknown.
CREATE FUNCTION pg_temp.complete_case(c int) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
	a text := 'done_a_' || c;
	b text := 'done_b_' || c;
	queued text[] := ARRAY(SELECT DISTINCT unnest(pg_temp.draw(25, 20)));
	claimed text[] := ARRAY(SELECT x FROM unnest(queued) x WHERE random() < 0.7);
	completed text[] := ARRAY(SELECT x FROM unnest(claimed) x WHERE random() < 0.3);
	retaken text[] := ARRAY(SELECT x FROM unnest(claimed) x WHERE x <> ALL (completed) AND random() < 0.3);
	names text[] := pg_temp.draw(5 + (random() * 20)::int, 22);
	kinds text[];
	l text;
	k text;
	i int;
	ta bigint[] := '{}';
	tb bigint[] := '{}';
	first_token jsonb := '{}';
	from_batch text[];
	from_singles text[] := '{}';
BEGIN
	SELECT array_agg(CASE WHEN r < 0.6 THEN 'current' WHEN r < 0.8 THEN 'stale' ELSE 'unknown' END)
	INTO kinds FROM (SELECT random() AS r FROM unnest(names)) s;
	FOREACH l IN ARRAY ARRAY[a, b] LOOP
		-- lease 0: a second claim takes the key over with a new token
		PERFORM ledger_create(l, lease => '0');
		PERFORM ledger_enqueue(l, queued);
		FOREACH k IN ARRAY claimed LOOP
			PERFORM ledger_claim(l, k);
			first_token := first_token || jsonb_build_object(l || '/' || k, pg_temp.token_of(l, k));
		END LOOP;
		FOREACH k IN ARRAY completed LOOP
			PERFORM ledger_complete(l, k, pg_temp.token_of(l, k), jsonb_build_object('first', k));
		END LOOP;
		FOREACH k IN ARRAY retaken LOOP
			PERFORM ledger_claim(l, k);
		END LOOP;
	END LOOP;
	-- the tokens the batch names, per twin: the key's token now, an older
	-- one of the same key where it has one (else a token nobody has), or
	-- a token nobody has
	FOR i IN 1 .. cardinality(names) LOOP
		FOREACH l IN ARRAY ARRAY[a, b] LOOP
			k := names[i];
			DECLARE
				t bigint := CASE kinds[i]
					WHEN 'current' THEN coalesce(pg_temp.token_of(l, k), -1)
					WHEN 'stale' THEN coalesce(CASE WHEN (first_token ->> (l || '/' || k))::bigint
												   IS DISTINCT FROM pg_temp.token_of(l, k)
												   THEN (first_token ->> (l || '/' || k))::bigint END, -2)
					ELSE -3 END;
			BEGIN
				IF l = a THEN ta := ta || t; ELSE tb := tb || t; END IF;
			END;
		END LOOP;
	END LOOP;
	SELECT coalesce(array_agg(DISTINCT r ORDER BY r), '{}') INTO from_batch
	FROM ledger_complete_batch(a, names, ta,
		ARRAY(SELECT jsonb_build_object('second', x) FROM unnest(names) x)) r;
	FOR i IN 1 .. cardinality(names) LOOP
		IF ledger_complete(b, names[i], tb[i], jsonb_build_object('second', names[i])) THEN
			from_singles := from_singles || names[i];
		END IF;
	END LOOP;
	RETURN NEXT is(from_batch, (SELECT coalesce(array_agg(DISTINCT x ORDER BY x), '{}') FROM unnest(from_singles) x),
		format('complete case %s: the batch returns the keys single calls complete (%s named: %s; %s keys done)',
			c, cardinality(names),
			(SELECT string_agg(kind || ' ' || n, ', ' ORDER BY kind)
			 FROM (SELECT x AS kind, count(*) AS n FROM unnest(kinds) x GROUP BY x) s),
			cardinality(from_batch)));
	RETURN NEXT bag_eq(format('SELECT * FROM pg_temp.keys_of(%L)', a),
		format('SELECT * FROM pg_temp.keys_of(%L)', b),
		format('complete case %s: every key in the same state, attempts and result', c));
	RETURN NEXT ok(NOT EXISTS (SELECT FROM pg_temp.keys_of(a) WHERE status = 'done' AND has_token IS NOT TRUE),
		format('complete case %s: a done key keeps the token that completed it', c));
	-- guard against cases that compare nothing
	RETURN NEXT cmp_ok(cardinality(names), '>', 0, format('complete case %s: the batch names keys', c));
END $$;

SELECT pg_temp.complete_case(c) FROM generate_series(1, 10) c;

--
-- a replay of the same batch changes nothing and returns the same keys
--
CREATE FUNCTION pg_temp.replay_case(c int) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
	l text := 'replay_' || c;
	keys text[] := ARRAY(SELECT DISTINCT unnest(pg_temp.draw(12, 15)));
	toks bigint[];
	first_keys text[];
	again_keys text[];
BEGIN
	PERFORM ledger_create(l);
	PERFORM ledger_enqueue(l, keys);
	SELECT array_agg(key ORDER BY key), array_agg(token ORDER BY key) INTO keys, toks
	FROM ledger_claim_next(l, 100);
	SELECT array_agg(r ORDER BY r) INTO first_keys FROM ledger_complete_batch(l, keys, toks) r;
	CREATE TEMP TABLE after_first ON COMMIT DROP AS SELECT * FROM pg_temp.keys_of(l);
	SELECT array_agg(r ORDER BY r) INTO again_keys FROM ledger_complete_batch(l, keys, toks) r;
	RETURN NEXT is(again_keys, first_keys, format('replay case %s: the same keys again', c));
	RETURN NEXT bag_eq(format('SELECT * FROM pg_temp.keys_of(%L)', l), 'SELECT * FROM after_first',
		format('replay case %s: nothing changed', c));
	DROP TABLE after_first;
END $$;

SELECT pg_temp.replay_case(c) FROM generate_series(1, 10) c;

SELECT * FROM finish();
ROLLBACK;
