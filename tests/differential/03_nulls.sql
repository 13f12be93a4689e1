-- NULL handling: three-valued logic, NULL-aware functions, NULLs in keys, ordering and aggregates.
----
CREATE TABLE n(id INTEGER, a INTEGER, b VARCHAR, c DOUBLE);
INSERT INTO n VALUES (1, 1, 'x', 1.5), (2, NULL, 'y', NULL), (3, 3, NULL, 2.5), (4, NULL, NULL, NULL), (5, 5, 'x', 0.0)
----
SELECT * FROM n ORDER BY id
----
SELECT NULL = NULL, NULL <> NULL, NULL IS NULL, NULL IS NOT NULL
----
SELECT NULL AND true, NULL AND false, NULL OR true, NULL OR false, NOT NULL
----
SELECT NULL IS DISTINCT FROM NULL, 1 IS DISTINCT FROM NULL, 1 IS NOT DISTINCT FROM 1
----
SELECT id, a IS NULL, b IS NOT NULL FROM n ORDER BY id
----
SELECT id, coalesce(a, -1), coalesce(b, c::VARCHAR, 'none') FROM n ORDER BY id
----
SELECT id, ifnull(a, 0), nullif(a, 3), nullif(b, 'x') FROM n ORDER BY id
----
SELECT count(*), count(a), count(b), count(c) FROM n
----
SELECT sum(a), avg(a), min(a), max(a) FROM n
----
SELECT sum(a) FROM n WHERE a IS NULL
----
SELECT count(*) FROM n WHERE a = NULL
----
SELECT id FROM n WHERE a IN (1, NULL) ORDER BY id
----
SELECT id FROM n WHERE a NOT IN (1, NULL) ORDER BY id
----
SELECT id FROM n WHERE a NOT IN (1, 3) ORDER BY id
----
SELECT a, count(*) FROM n GROUP BY a ORDER BY a NULLS FIRST
----
SELECT b, count(*) FROM n GROUP BY b ORDER BY b NULLS LAST
----
SELECT id, a FROM n ORDER BY a, id
----
SELECT id, a FROM n ORDER BY a DESC, id
----
SELECT id, a FROM n ORDER BY a ASC NULLS FIRST, id
----
SELECT id, a FROM n ORDER BY a DESC NULLS LAST, id
----
SELECT DISTINCT a FROM n ORDER BY a
----
SELECT count(DISTINCT a), count(DISTINCT b) FROM n
----
SELECT x.id, y.id FROM n x JOIN n y ON x.a = y.a ORDER BY 1, 2
----
SELECT x.id, y.id FROM n x JOIN n y ON x.a IS NOT DISTINCT FROM y.a ORDER BY 1, 2
----
SELECT 1 + NULL, 'a' || NULL, concat('a', NULL, 'b'), NULL * 0
----
SELECT greatest(1, NULL, 3), least(NULL, 2), greatest(NULL::INTEGER, NULL)
----
SELECT CASE WHEN NULL THEN 'yes' ELSE 'no' END, CASE NULL WHEN NULL THEN 'eq' ELSE 'neq' END
----
SELECT id, CASE WHEN a IS NULL THEN 'missing' WHEN a > 2 THEN 'big' ELSE 'small' END FROM n ORDER BY id
----
SELECT [1, NULL, 3], list_count([1, NULL, 3]), len([1, NULL, 3])
----
SELECT list_filter([1, NULL, 3], x -> x IS NOT NULL)
----
SELECT {'a': NULL, 'b': 1} IS NULL, NULL::STRUCT(a INT) IS NULL
----
SELECT string_agg(b, ',' ORDER BY id) FROM n
----
SELECT list(b ORDER BY id) FROM n
----
SELECT list(a ORDER BY id) FILTER (WHERE a IS NOT NULL) FROM n
----
SELECT array_agg(a ORDER BY a NULLS FIRST) FROM n
----
SELECT first(a ORDER BY id), last(a ORDER BY id), any_value(a ORDER BY id) FROM n
----
SELECT bool_and(a > 0), bool_or(a > 4) FROM n
----
SELECT min(b), max(b) FROM n
----
SELECT id, lag(a) OVER (ORDER BY id), lead(a, 1, -1) OVER (ORDER BY id) FROM n ORDER BY id
----
SELECT id, last_value(a IGNORE NULLS) OVER (ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) FROM n ORDER BY id
----
SELECT id, sum(a) OVER (ORDER BY id) FROM n ORDER BY id
----
SELECT NULL::INTEGER UNION SELECT NULL::INTEGER
----
SELECT a FROM n INTERSECT SELECT NULL
----
SELECT a FROM n EXCEPT SELECT NULL ORDER BY a
----
SELECT id FROM n WHERE b LIKE NULL
----
SELECT NULL LIKE 'a', 'a' LIKE NULL
----
SELECT length(NULL), upper(NULL), substr(NULL, 1, 2)
----
SELECT abs(NULL), round(NULL::DOUBLE, 2), sqrt(NULL)
----
SELECT NULL::DATE + 1, date_part('year', NULL::DATE)
----
SELECT count(*) FILTER (WHERE a IS NULL), count(*) FILTER (WHERE b IS NULL) FROM n
----
SELECT id, a BETWEEN 1 AND 3 FROM n ORDER BY id
----
SELECT NULL BETWEEN 1 AND 2, 1 BETWEEN NULL AND 2, 3 BETWEEN NULL AND 2
----
SELECT id, if(a IS NULL, 'n', 'v') FROM n ORDER BY id
----
SELECT a / NULLIF(a - a, 0) FROM n ORDER BY id
----
SELECT max(a) FROM n WHERE false
----
SELECT count(*), sum(a), list(a) FROM n WHERE false
----
SELECT a, sum(c) FROM n WHERE false GROUP BY a
----
UPDATE n SET a = coalesce(a, 0) WHERE id IN (2, 4)
----
SELECT id, a FROM n ORDER BY id
----
DELETE FROM n WHERE b IS NULL
----
SELECT id, b FROM n ORDER BY id
----
INSERT INTO n (id) VALUES (9)
----
SELECT * FROM n WHERE id = 9
----
SELECT NULL::INTEGER AS x ORDER BY x
----
SELECT unnest([NULL, 1, NULL]) AS u ORDER BY u NULLS FIRST
