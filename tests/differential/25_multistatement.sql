-- Texts of several statements sent as one: DuckDB's clients run them all and return the last
-- statement's result.
----
CREATE TABLE t(d TIMESTAMP); INSERT INTO t VALUES ('2024-01-01 10:00:00'), ('2024-06-01 12:30:00'); SELECT * FROM t ORDER BY d
----
SELECT 1; SELECT 2
----
SELECT 1 AS a; SELECT 'x' AS b, 2 AS c
----
CREATE TABLE m1(x INTEGER); INSERT INTO m1 VALUES (1), (2), (3)
----
INSERT INTO m1 VALUES (4); INSERT INTO m1 VALUES (5); SELECT count(*) FROM m1
----
UPDATE m1 SET x = x * 10 WHERE x > 3; SELECT list(x ORDER BY x) FROM m1
----
SELECT count(*) FROM m1; DELETE FROM m1 WHERE x > 10
----
SELECT * FROM m1 ORDER BY x
----
CREATE TABLE m2 AS SELECT 1 AS a; ALTER TABLE m2 ADD COLUMN b VARCHAR DEFAULT 'z'; SELECT * FROM m2
----
CREATE TEMP TABLE m3(v INTEGER); INSERT INTO m3 SELECT * FROM range(10); SELECT sum(v) FROM m3
----
SELECT 1;
----
;SELECT 2
----
SELECT 1;;SELECT 3
----
-- a comment first
SELECT 'after comment'
----
SELECT 1; -- trailing comment
----
SELECT 1 /* inline ; not a separator */ AS x
----
SELECT 'a;b' AS s; SELECT 'c;d' AS s2
----
SELECT $$dollar; quoted$$ AS q
----
CREATE TABLE m4(x INTEGER); INSERT INTO m4 VALUES (1); SELECT * FROM nope; INSERT INTO m4 VALUES (2)
----
SELECT count(*) FROM m4
----
SELECT * FROM m4 ORDER BY x
----
INSERT INTO m4 VALUES (10); SELECT 1 / 0; SELECT x FROM m4 ORDER BY x
----
INSERT INTO m4 VALUES ('bad'); INSERT INTO m4 VALUES (20)
----
SELECT list(x ORDER BY x) FROM m4
----
CREATE VIEW mv AS SELECT x * 2 AS y FROM m4; SELECT * FROM mv ORDER BY y
----
CREATE MACRO twice(x) AS x * 2; SELECT twice(21)
----
CREATE TYPE lvl AS ENUM ('lo', 'hi'); CREATE TABLE m5(l lvl); INSERT INTO m5 VALUES ('hi'), ('lo'); SELECT l FROM m5 ORDER BY l
----
CREATE SEQUENCE ms; SELECT nextval('ms'), nextval('ms')
----
BEGIN; INSERT INTO m4 VALUES (100); ROLLBACK; SELECT count(*) FROM m4 WHERE x = 100
----
BEGIN; INSERT INTO m4 VALUES (200); COMMIT; SELECT count(*) FROM m4 WHERE x = 200
----
SET SESSION default_null_order = 'nulls_first'; SELECT x FROM (VALUES (1), (NULL)) t(x) ORDER BY x
----
RESET SESSION default_null_order; SELECT x FROM (VALUES (1), (NULL)) t(x) ORDER BY x
----
SELECT 1 AS first; CREATE TABLE m6(z INTEGER)
----
SELECT * FROM m6
----
INSERT INTO m6 VALUES (1), (2) RETURNING z; SELECT 'done'
----
SELECT 'start'; INSERT INTO m6 VALUES (3) RETURNING z * 10
----
DROP TABLE m6; SELECT count(*) FROM information_schema.tables WHERE table_name = 'm6'
----
SELECT [1, 2] AS l; SELECT {'a': 1} AS s; SELECT MAP {'k': 'v'} AS m
----
SELECT 1; SELECT union_value(i32 := 1)::UNION(i32 INT, str VARCHAR) AS u
----
SELECT 1; SELECT 'a'::ENUM('a', 'b') AS e
----
SELECT 1; SELECT TIMESTAMPTZ '2024-01-01 00:00:00+00' AS tz
----
CREATE TABLE m7 AS SELECT * FROM range(3000) r(i); SELECT count(*), sum(i) FROM m7
----
SELECT 1; SELECT i FROM range(3000) r(i) ORDER BY i DESC LIMIT 3
----
SELECT * FROM range(5000) r(i) WHERE i % 1000 = 0 ORDER BY i; SELECT 'tail'
----
SELECT 1 AS a; SELECT 1 AS a, 2 AS a
----
PRAGMA table_info('m4'); SELECT 42
----
DESCRIBE m4; SELECT 43
----
SELECT 44; DESCRIBE m4
----
SELECT 45; SHOW TABLES
----
SELECT 46; EXPLAIN SELECT 1
----
WITH a AS (SELECT 1 AS x) SELECT x FROM a; WITH b AS (SELECT 2 AS y) SELECT y FROM b
----
INSERT INTO m4 VALUES (300); INSERT INTO m4 VALUES (301)
----
SELECT x FROM m4 WHERE x >= 300 ORDER BY x
----
DELETE FROM m4; SELECT count(*) FROM m4
----
SELECT 'x' AS v; SELECT 'y' AS v; SELECT 'z' AS v
----
SELECT 1 AS "select 2; select 3"
----
SELECT 1
;
SELECT 2
