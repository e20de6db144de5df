-- Every object of the extension pg_idempotent, described without OIDs, one
-- line each: test/upgrade/run prints this for a fresh installation and for
-- one updated from 0.1.0, and the two must be identical.
WITH member AS (
	SELECT d.classid, d.objid, d.objsubid
	FROM pg_catalog.pg_depend d
	JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
	WHERE d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
		AND d.deptype = 'e' AND e.extname = 'pg_idempotent'
),
member_proc AS (
	SELECT objid AS oid FROM member WHERE classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
),
member_rel AS (
	SELECT objid AS oid FROM member WHERE classid = 'pg_catalog.pg_class'::pg_catalog.regclass
)
SELECT line FROM (
	-- the members, and their comments
	SELECT 'member ' || pg_catalog.pg_describe_object(m.classid, m.objid, m.objsubid)
		|| coalesce(' -- ' || c.description, '') AS line
	FROM member m
	LEFT JOIN pg_catalog.pg_description c
		ON c.classoid = m.classid AND c.objoid = m.objid AND c.objsubid = m.objsubid
	UNION ALL
	-- functions: signature, result, attributes, the C symbol or the body
	SELECT format('function %s.%s(%s) returns %s kind %s volatile %s strict %s parallel %s '
		'secdef %s leakproof %s cost %s rows %s config %s lang %s src %s bin %s acl %s',
		n.nspname, p.proname, pg_catalog.pg_get_function_arguments(p.oid),
		pg_catalog.pg_get_function_result(p.oid), p.prokind, p.provolatile, p.proisstrict,
		p.proparallel, p.prosecdef, p.proleakproof, p.procost, p.prorows, p.proconfig,
		l.lanname, p.prosrc, p.probin, p.proacl)
	FROM member_proc mp
	JOIN pg_catalog.pg_proc p ON p.oid = mp.oid
	JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
	JOIN pg_catalog.pg_language l ON l.oid = p.prolang
	UNION ALL
	-- aggregates' support functions
	SELECT format('aggregate %s sfunc %s combine %s serial %s deserial %s final %s stype %s',
		a.aggfnoid::pg_catalog.regprocedure, a.aggtransfn, a.aggcombinefn, a.aggserialfn,
		a.aggdeserialfn, a.aggfinalfn, a.aggtranstype::pg_catalog.regtype)
	FROM member_proc mp
	JOIN pg_catalog.pg_aggregate a ON a.aggfnoid = mp.oid
	UNION ALL
	-- relations: kind, privileges, options; their columns, constraints, indexes, triggers
	SELECT format('relation %s kind %s persistence %s acl %s options %s',
		r.oid::pg_catalog.regclass, r.relkind, r.relpersistence, r.relacl, r.reloptions)
	FROM member_rel mr
	JOIN pg_catalog.pg_class r ON r.oid = mr.oid
	UNION ALL
	SELECT format('column %s.%s %s notnull %s default %s generated %s identity %s collation %s acl %s',
		a.attrelid::pg_catalog.regclass, a.attname,
		pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull,
		pg_catalog.pg_get_expr(ad.adbin, ad.adrelid), a.attgenerated, a.attidentity,
		a.attcollation::pg_catalog.regcollation, a.attacl)
	FROM member_rel mr
	JOIN pg_catalog.pg_attribute a ON a.attrelid = mr.oid
	LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
	WHERE a.attnum > 0 AND NOT a.attisdropped
	UNION ALL
	SELECT format('constraint %s on %s: %s', c.conname, c.conrelid::pg_catalog.regclass,
		pg_catalog.pg_get_constraintdef(c.oid))
	FROM member_rel mr
	JOIN pg_catalog.pg_constraint c ON c.conrelid = mr.oid
	UNION ALL
	SELECT 'index ' || pg_catalog.pg_get_indexdef(i.indexrelid)
	FROM member_rel mr
	JOIN pg_catalog.pg_index i ON i.indrelid = mr.oid
	UNION ALL
	SELECT 'trigger ' || pg_catalog.pg_get_triggerdef(t.oid)
	FROM member_rel mr
	JOIN pg_catalog.pg_trigger t ON t.tgrelid = mr.oid
	UNION ALL
	SELECT format('sequence %s type %s start %s increment %s min %s max %s cache %s cycle %s',
		s.seqrelid::pg_catalog.regclass, s.seqtypid::pg_catalog.regtype, s.seqstart,
		s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle)
	FROM member_rel mr
	JOIN pg_catalog.pg_sequence s ON s.seqrelid = mr.oid
	UNION ALL
	-- privileges pg_dump would restore for members
	SELECT format('init privileges %s %s',
		pg_catalog.pg_describe_object(i.classoid, i.objoid, i.objsubid), i.initprivs)
	FROM member m
	JOIN pg_catalog.pg_init_privs i ON i.classoid = m.classid AND i.objoid = m.objid
	UNION ALL
	-- the extension itself: version, schema, tables pg_dump dumps with their data
	SELECT format('extension %s version %s schema %s relocatable %s config %s condition %s',
		e.extname, e.extversion, e.extnamespace::pg_catalog.regnamespace, e.extrelocatable,
		e.extconfig::pg_catalog.regclass[], e.extcondition)
	FROM pg_catalog.pg_extension e
	WHERE e.extname = 'pg_idempotent'
) l
ORDER BY line COLLATE "C";
