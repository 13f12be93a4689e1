-- UNION types.
----
SELECT union_value(i32 := 1)::UNION(i32 INT, str VARCHAR)
----
SELECT union_value(str := 'x')::UNION(i32 INT, str VARCHAR) AS u
----
SELECT union_value(k := 1)
----
SELECT typeof(union_value(k := 1)), typeof(union_value(i32 := 1)::UNION(i32 INT, str VARCHAR))
----
CREATE TABLE un(id INTEGER, u UNION(num INTEGER, txt VARCHAR, flag BOOLEAN));
INSERT INTO un VALUES (1, 42), (2, 'hello'), (3, true), (4, NULL), (5, union_value(txt := '7'))
----
SELECT * FROM un ORDER BY id
----
SELECT id, u FROM un WHERE id = 1
----
SELECT id, union_tag(u), union_extract(u, 'num'), union_extract(u, 'txt') FROM un ORDER BY id
----
SELECT id, u.num, u.txt, u.flag FROM un ORDER BY id
----
SELECT id, u::VARCHAR FROM un ORDER BY id
----
SELECT id, typeof(u) FROM un WHERE id = 1
----
SELECT union_tag(u) AS tag, count(*) FROM un GROUP BY tag ORDER BY tag NULLS LAST
----
SELECT id FROM un WHERE union_tag(u) = 'txt' ORDER BY id
----
SELECT id FROM un ORDER BY u NULLS LAST, id
----
SELECT list(u ORDER BY id) FROM un
----
SELECT [u] FROM un WHERE id = 2
----
SELECT {'u': u} FROM un WHERE id = 3
----
SELECT MAP {'k': u} FROM un WHERE id = 1
----
SELECT max(u), min(u) FROM un
----
SELECT count(DISTINCT u) FROM un
----
UPDATE un SET u = 'changed' WHERE id = 1
----
SELECT id, u FROM un ORDER BY id
----
SELECT 1::UNION(a INTEGER, b VARCHAR), 'x'::UNION(a INTEGER, b VARCHAR)
----
SELECT 1.5::UNION(a INTEGER, b VARCHAR)
----
SELECT union_value(a := 1)::UNION(a INTEGER, b VARCHAR) = union_value(a := 1)::UNION(a INTEGER, b VARCHAR)
----
SELECT [union_value(a := 1)::UNION(a INT, b VARCHAR), union_value(b := 'z')::UNION(a INT, b VARCHAR)]
----
SELECT union_extract(union_value(a := 1)::UNION(a INT, b VARCHAR), 'c')
----
SELECT NULL::UNION(a INT, b VARCHAR)
----
SELECT u FROM (VALUES (union_value(a := 1)::UNION(a INT, b DOUBLE)), (union_value(b := 2.5)::UNION(a INT, b DOUBLE))) t(u) ORDER BY u
----
CREATE TABLE un2(u UNION(d DATE, ts TIMESTAMP, l INTEGER[]));
INSERT INTO un2 VALUES (DATE '2024-01-01'), (TIMESTAMP '2024-01-01 10:00:00'), ([1, 2]);
SELECT u, union_tag(u) FROM un2 ORDER BY union_tag(u)
----
SELECT u.l FROM un2 WHERE union_tag(u) = 'l'
----
SELECT union_value(s := {'a': 1})
----
SELECT union_value(m := MAP {'a': 1})
----
SELECT union_value(e := 'x'::ENUM('x', 'y'))
----
SELECT union_value(h := 1::HUGEINT), union_value(dec := 1.5::DECIMAL(10,2))
----
SELECT union_value(tz := TIMESTAMPTZ '2024-01-01 00:00:00+00')
----
SELECT union_value(b := '\x01'::BLOB), union_value(uu := 'a1b2c3d4-0000-4000-8000-00000000abcd'::UUID)
----
SELECT union_value(i := INTERVAL 1 DAY)
----
SELECT CAST(union_value(a := 1)::UNION(a INT, b VARCHAR) AS UNION(a INT, b VARCHAR, c DOUBLE))
----
SELECT u FROM un WHERE id = 99
----
DELETE FROM un WHERE union_tag(u) = 'flag'
----
SELECT count(*) FROM un
