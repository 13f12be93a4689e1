-- Errors of every class: parser, binder, catalog, conversion, constraint, out of range,
-- invalid input, not implemented. Both sides erroring is a match.
----
SELEC 1
----
SELECT 1 +
----
SELECT * FROM
----
SELECT 'unterminated
----
SELECT (1
----
SELECT 1 FROM t WHERE
----
SELECT nosuchfunc(1)
----
SELECT abs('x', 'y')
----
SELECT * FROM nosuchtable
----
SELECT nosuchcol
----
SELECT * FROM my_db.main.nosuch
----
SELECT * FROM nosuchdb.main.t
----
SELECT 1::NOTATYPE
----
SELECT 'abc'::INTEGER
----
SELECT '2024-99-99'::DATE
----
SELECT 256::UTINYINT
----
SELECT -1::UINTEGER
----
SELECT (-1)::UINTEGER
----
SELECT 10::DECIMAL(2,1)
----
SELECT 1 / 0
----
SELECT 1 // 0
----
SELECT 2147483647::INTEGER * 2
----
SELECT [1, 2][1:2:0]
----
SELECT list_element([1], 1.5)
----
SELECT substring('abc', 'x')
----
SELECT date_part('nope', DATE '2024-01-01')
----
SELECT date_trunc('nope', DATE '2024-01-01')
----
SELECT strftime(DATE '2024-01-01', 42)
----
SELECT error('custom message')
----
SELECT error('')
----
SELECT CASE WHEN true THEN error('boom') END
----
SELECT CASE WHEN false THEN error('never') ELSE 1 END
----
SELECT coalesce(1, error('lazy'))
----
SELECT 1 WHERE error('in where') IS NULL
----
SELECT count(*) FROM range(10) WHERE CASE WHEN range > 5 THEN error('late') ELSE true END
----
SELECT i, 100 / (i - 3) FROM range(5) r(i)
----
SELECT sum(i) FROM range(3) r(i) GROUP BY nosuch
----
SELECT i FROM range(3) r(i) ORDER BY 5
----
SELECT i FROM range(3) r(i) ORDER BY nosuch
----
SELECT DISTINCT i FROM range(3) r(i) ORDER BY i + 1
----
SELECT 1 AS x, 2 AS x ORDER BY x
----
SELECT * FROM range(3) a(i), range(3) b(i) WHERE i = 1
----
SELECT i FROM range(3) a(i) JOIN range(3) b(i) ON a.i = b.i
----
SELECT ?
----
SELECT $1
----
SELECT $name
----
SELECT * FROM range('a')
----
SELECT * FROM range(1, 10, 0)
----
SELECT * FROM generate_series(1, 3, 0)
----
SELECT * FROM unnest(1)
----
SELECT array_slice()
----
SELECT list_value(1, 'a', [1])
----
SELECT [1] + 1
----
SELECT {'a': 1} + 1
----
SELECT MAP {'a': 1} + 1
----
SELECT 'a' + 1
----
SELECT DATE '2024-01-01' + DATE '2024-01-02'
----
SELECT TIMESTAMP '2024-01-01' * 2
----
SELECT INTERVAL 1 DAY / 0
----
SELECT true + 1
----
SELECT NOT 'x'
----
SELECT 1 AND 'x'
----
SELECT 1 LIKE 1
----
SELECT 'x' ~ 1
----
SELECT hash()
----
SELECT sum()
----
SELECT count(DISTINCT *)
----
SELECT max(*) FROM range(3)
----
SELECT row_number()
----
SELECT lag(1)
----
SELECT sum(sum(1))
----
SELECT 1 HAVING 1 = 1
----
SELECT * EXCLUDE (nope) FROM range(3)
----
SELECT COLUMNS('zzz') FROM range(3)
----
SELECT 1 LIMIT -1
----
SELECT 1 LIMIT 'x'
----
SELECT 1 OFFSET -1
----
SELECT * FROM range(10) LIMIT 2 OFFSET 8
----
SELECT * FROM range(10) t(i) ORDER BY i LIMIT 2 OFFSET 8
----
SELECT * FROM range(10) t(i) ORDER BY i LIMIT 0
----
SELECT * FROM range(10) t(i) ORDER BY i LIMIT NULL
----
SELECT * FROM range(10) t(i) ORDER BY i LIMIT 20%
----
CREATE TABLE e1(x INTEGER CHECK (x > 0))
----
INSERT INTO e1 VALUES (0)
----
INSERT INTO e1 VALUES (1), (-1)
----
SELECT count(*) FROM e1
----
INSERT INTO e1 VALUES ('notint')
----
INSERT INTO e1 VALUES (1, 2)
----
INSERT INTO e1 VALUES (3000000000)
----
UPDATE e1 SET x = -x
----
SELECT * FROM e1
----
CREATE TABLE e1(y INTEGER)
----
DROP TABLE nosuch
----
ALTER TABLE e1 RENAME COLUMN nosuch TO z
----
CREATE TABLE e2 AS SELECT 1 / 0 AS boom
----
CREATE TABLE e2 AS SELECT 1 AS ok
----
CREATE VIEW e3 AS SELECT * FROM nosuch
----
SELECT * FROM e1 e1alias WHERE e1.x = 1
----
SELECT x FROM e1 GROUP BY x HAVING y > 1
----
SELECT 'x' AS a UNION SELECT 1, 2
----
SELECT (SELECT 1 UNION ALL SELECT 2)
----
SELECT * FROM (SELECT 1) AS t(a, b, c)
----
WITH RECURSIVE t AS (SELECT 1) SELECT * FROM t, t
----
SELECT json_extract('{}', 1.5)
----
SELECT '{"a":'::JSON
----
SELECT regexp_matches('a', '[')
----
SELECT strptime('2024', 'nonsense%Q')
----
SELECT make_date(2024, 13, 1)
----
SELECT make_time(25, 0, 0)
----
SELECT to_timestamp(1e20)
----
SELECT 'a1b2'::UUID
----
SELECT 'xyz'::BLOB::INTEGER
----
SELECT '\xZZ'::BLOB
----
SELECT '2'::BIT
----
SELECT CAST([1, 2, 3] AS INTEGER[2])
----
SELECT [1, 2]::STRUCT(a INTEGER)
----
SELECT {'a': 1}::INTEGER
----
SELECT MAP {'a': 1}::INTEGER[]
----
SELECT union_value(a := 1, b := 2)
----
SELECT enum_range('x')
----
SELECT nextval('nosuchseq')
----
SELECT currval('nosuchseq')
----
SELECT setseed(2)
----
SELECT * FROM pragma_table_info('nosuch')
----
DESCRIBE nosuch
----
SHOW nosuch
----
SUMMARIZE nosuch
----
EXPLAIN SELECT * FROM nosuch
----
SELECT 1 FROM range(3) QUALIFY x = 1
----
SELECT * FROM range(3) SAMPLE -1
----
PIVOT nosuch ON x USING sum(y)
----
COPY nosuch TO STDOUT
----
SELECT 1 1
----
SELECT * FROM range(3) r(i) WHERE i IN ()
----
SELECT 99999999999999999999999999999999999999999::DECIMAL(38,0)
----
SELECT 1e309
----
SELECT 0::DECIMAL(39,0)
----
SELECT 'a' COLLATE nosuchcollation
----
VALUES (1), (1, 2)
----
INSERT INTO nosuch VALUES (1)
----
UPDATE nosuch SET x = 1
----
DELETE FROM nosuch
----
SELECT 42 AS still_alive
