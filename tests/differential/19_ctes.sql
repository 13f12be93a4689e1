-- Common table expressions, recursive CTEs, materialization.
----
WITH t AS (SELECT 1 AS x) SELECT * FROM t
----
WITH a AS (SELECT 1 AS x), b AS (SELECT x + 1 AS y FROM a) SELECT * FROM a, b
----
WITH t(a, b) AS (VALUES (1, 'one'), (2, 'two')) SELECT b FROM t ORDER BY a DESC
----
WITH t AS (SELECT i FROM range(10) r(i)) SELECT sum(i) FROM t WHERE i % 2 = 0
----
WITH t AS (SELECT 1 AS x) SELECT * FROM t AS t1 JOIN t AS t2 ON t1.x = t2.x
----
WITH t AS MATERIALIZED (SELECT i, i * i AS sq FROM range(5) r(i)) SELECT count(*), sum(sq) FROM t
----
WITH t AS NOT MATERIALIZED (SELECT 42 AS x) SELECT x FROM t
----
WITH RECURSIVE cnt(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM cnt WHERE n < 10) SELECT * FROM cnt ORDER BY n
----
WITH RECURSIVE fib(a, b, n) AS (SELECT 0::HUGEINT, 1::HUGEINT, 1 UNION ALL SELECT b, a + b, n + 1 FROM fib WHERE n < 100) SELECT n, a FROM fib WHERE n IN (10, 50, 100) ORDER BY n
----
WITH RECURSIVE fact(n, f) AS (SELECT 1, 1::BIGINT UNION ALL SELECT n + 1, f * (n + 1) FROM fact WHERE n < 20) SELECT max(f) FROM fact
----
CREATE TABLE tree(id INTEGER, parent INTEGER, name VARCHAR);
INSERT INTO tree VALUES (1, NULL, 'root'), (2, 1, 'a'), (3, 1, 'b'), (4, 2, 'a1'), (5, 2, 'a2'), (6, 4, 'a1x'), (7, 3, 'b1')
----
WITH RECURSIVE sub(id, name, depth) AS (SELECT id, name, 0 FROM tree WHERE parent IS NULL UNION ALL SELECT t.id, t.name, s.depth + 1 FROM tree t JOIN sub s ON t.parent = s.id) SELECT * FROM sub ORDER BY id
----
WITH RECURSIVE path(id, p) AS (SELECT id, name FROM tree WHERE parent IS NULL UNION ALL SELECT t.id, p || '/' || t.name FROM tree t JOIN path ON t.parent = path.id) SELECT p FROM path ORDER BY p
----
WITH RECURSIVE anc(id, parent) AS (SELECT id, parent FROM tree WHERE name = 'a1x' UNION ALL SELECT t.id, t.parent FROM tree t JOIN anc ON t.id = anc.parent) SELECT list(id ORDER BY id) FROM anc
----
WITH RECURSIVE r(i) AS (SELECT 1 UNION SELECT i % 3 + 1 FROM r) SELECT i FROM r ORDER BY i
----
WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 3) SELECT * FROM r r1, r r2 ORDER BY 1, 2
----
WITH RECURSIVE paths(node, visited) AS (SELECT 1, [1] UNION ALL SELECT t.id, list_append(visited, t.id) FROM tree t JOIN paths ON t.parent = paths.node) SELECT node, visited FROM paths ORDER BY node
----
WITH RECURSIVE edges(a, b) AS (VALUES (1, 2), (2, 3), (3, 1), (3, 4)), reach(n) AS (SELECT 1 UNION SELECT b FROM edges JOIN reach ON a = n) SELECT n FROM reach ORDER BY n
----
WITH RECURSIVE t(n) USING KEY (n) AS (SELECT 1 UNION SELECT n + 1 FROM t WHERE n < 5) SELECT count(*) FROM t
----
WITH RECURSIVE r(d, x) AS (SELECT 0, 1.0::DOUBLE UNION ALL SELECT d + 1, x / 2 FROM r WHERE d < 10) SELECT d, x FROM r ORDER BY d
----
WITH RECURSIVE collatz(n, steps) AS (SELECT 27, 0 UNION ALL SELECT CASE WHEN n % 2 = 0 THEN n // 2 ELSE 3 * n + 1 END, steps + 1 FROM collatz WHERE n > 1) SELECT max(steps), max(n) FROM collatz
----
WITH RECURSIVE s(str) AS (SELECT 'a' UNION ALL SELECT str || chr(ascii(right(str, 1)) + 1) FROM s WHERE length(str) < 5) SELECT str FROM s ORDER BY length(str)
----
WITH RECURSIVE bad AS (SELECT 1 AS x UNION ALL SELECT x + 1 FROM bad WHERE x < 5) SELECT * FROM bad ORDER BY x DESC LIMIT 2
----
WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 3) SELECT i FROM r WHERE i < 0
----
WITH t AS (SELECT 1 AS x) SELECT * FROM t, (WITH t AS (SELECT 2 AS x) SELECT x FROM t) u
----
WITH t AS (SELECT 1 AS x), t AS (SELECT 2 AS x) SELECT * FROM t
----
WITH t AS (SELECT * FROM nonexistent) SELECT 1
----
WITH t AS (SELECT 1 AS x) SELECT y FROM t
----
WITH agg AS (SELECT parent, count(*) AS n FROM tree WHERE parent IS NOT NULL GROUP BY parent) SELECT t.name, coalesce(a.n, 0) FROM tree t LEFT JOIN agg a ON a.parent = t.id ORDER BY t.id
----
WITH x AS (SELECT id FROM tree WHERE id > 3), y AS (SELECT id FROM x WHERE id < 6) SELECT * FROM y ORDER BY id
----
WITH t AS (SELECT id, name FROM tree) UPDATE tree SET name = upper(name) WHERE id IN (SELECT id FROM t WHERE id > 5)
----
SELECT name FROM tree ORDER BY id
----
WITH doomed AS (SELECT id FROM tree WHERE name = 'B1') DELETE FROM tree WHERE id IN (SELECT id FROM doomed)
----
SELECT count(*) FROM tree
----
INSERT INTO tree WITH n AS (SELECT 100 AS id) SELECT id, 1, 'new' FROM n
----
SELECT * FROM tree WHERE id = 100
----
CREATE TABLE tree_copy AS WITH RECURSIVE d(id, depth) AS (SELECT 1, 0 UNION ALL SELECT t.id, depth + 1 FROM tree t JOIN d ON t.parent = d.id) SELECT * FROM d;
SELECT depth, count(*) FROM tree_copy GROUP BY depth ORDER BY depth
----
CREATE VIEW v_depth AS WITH RECURSIVE d(id, depth) AS (SELECT 1, 0 UNION ALL SELECT t.id, depth + 1 FROM tree t JOIN d ON t.parent = d.id) SELECT * FROM d
----
SELECT max(depth) FROM v_depth
----
WITH t AS (SELECT [1, 2, 3] AS l) SELECT unnest(l) FROM t
----
WITH t AS (SELECT {'a': 1} AS s) SELECT s.a FROM t
----
WITH "quoted name" AS (SELECT 1 AS v) SELECT * FROM "quoted name"
----
WITH RECURSIVE r(i, l) AS (SELECT 0, []::INTEGER[] UNION ALL SELECT i + 1, list_append(l, i) FROM r WHERE i < 4) SELECT l FROM r ORDER BY i
----
WITH RECURSIVE r(i, m) AS (SELECT 0, MAP {}::MAP(INTEGER, INTEGER) UNION ALL SELECT i + 1, map_concat(m, MAP {i: i * i}) FROM r WHERE i < 3) SELECT m FROM r ORDER BY i
----
WITH a AS (SELECT 1 AS x UNION ALL SELECT 2), b AS (SELECT x * 10 AS y FROM a) SELECT x, y FROM a JOIN b ON y = x * 10 ORDER BY x
----
FROM (WITH q AS (SELECT 5 AS v) SELECT v FROM q)
----
WITH t AS (SELECT i FROM range(3) r(i)) SELECT (SELECT max(i) FROM t), (SELECT min(i) FROM t)
----
WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 2000) SELECT count(*), sum(i) FROM r
----
WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT 'x' FROM r WHERE i < 2) SELECT * FROM r
