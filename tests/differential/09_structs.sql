-- STRUCT: construction, access, comparison, nesting, in tables, unnest.
----
CREATE TABLE st(id INTEGER, p STRUCT(name VARCHAR, age INTEGER), tags STRUCT(k VARCHAR, v DOUBLE)[]);
INSERT INTO st VALUES
 (1, {'name': 'ann', 'age': 31}, [{'k': 'a', 'v': 1.5}]),
 (2, {'name': 'bob', 'age': NULL}, []),
 (3, NULL, NULL),
 (4, {'name': NULL, 'age': 7}, [{'k': 'x', 'v': NULL}, NULL]),
 (5, row('eve', 40), [{'k': 'b', 'v': 2.0}, {'k': 'c', 'v': -1.0}])
----
SELECT * FROM st ORDER BY id
----
SELECT id, p.name, p.age, p['name'], struct_extract(p, 'age') FROM st ORDER BY id
----
SELECT id, (p).name FROM st ORDER BY id
----
SELECT id, p.* FROM st ORDER BY id
----
SELECT id, unnest(p) FROM st ORDER BY id
----
SELECT id, tags[1].k, tags[1]['v'], len(tags) FROM st ORDER BY id
----
SELECT id, unnest(tags).k AS k FROM st ORDER BY id, k
----
SELECT id, t.k, t.v FROM st, unnest(tags) u(t) ORDER BY id, t.k NULLS LAST
----
SELECT id, unnest(tags, recursive := true) FROM st WHERE id = 5 ORDER BY k
----
SELECT {'a': 1, 'b': [1, 2], 'c': {'d': 'e'}}
----
SELECT struct_pack(a := 1, b := 'two'), row(1, 'x'), (1, 'x')
----
SELECT typeof(row(1, 'x')), typeof({'a': 1}), typeof(struct_pack(x := 1.5))
----
SELECT struct_insert({'a': 1}, b := 2), struct_extract_at({'a': 1, 'b': 2}, 2)
----
SELECT struct_concat({'a': 1}, {'b': 'x'})
----
SELECT {'a': 1, 'b': 2} = {'a': 1, 'b': 2}, {'a': 1} < {'a': 2}, {'a': NULL} = {'a': NULL}
----
SELECT {'a': 1, 'b': 'x'} = {'b': 'x', 'a': 1}
----
SELECT p, count(*) FROM st GROUP BY p ORDER BY p NULLS LAST
----
SELECT id FROM st ORDER BY p DESC NULLS FIRST, id
----
SELECT id FROM st WHERE p.age > 30 ORDER BY id
----
SELECT id FROM st WHERE p IS NULL OR p.name IS NULL ORDER BY id
----
SELECT max(p), min(p) FROM st
----
SELECT list(p ORDER BY id) FROM st
----
SELECT id, {'id': id, 'p': p} AS wrapped FROM st ORDER BY id
----
SELECT id, to_json(p) FROM st ORDER BY id
----
SELECT id, p::VARCHAR FROM st ORDER BY id
----
SELECT {'x': 1}.x, {'x': {'y': 2}}.x.y
----
SELECT {'x': 1}.y
----
SELECT {'a': 1, 'a': 2}
----
SELECT {'a': 1}::STRUCT(a VARCHAR), {'a': 1}::STRUCT(b INTEGER)
----
SELECT {'a': 1, 'b': NULL}::STRUCT(a BIGINT, b DATE)
----
SELECT struct_pack("Mixed Case" := 1, "with space" := 2)
----
SELECT {'a': [{'b': MAP {'c': [1]}}]}
----
SELECT [{'a': 1, 'b': 'x'}, {'a': 2, 'b': 'y'}]
----
SELECT [{'a': 1}, {'a': 2}][2].a
----
SELECT [{'a': 1}, {'b': 2}]
----
SELECT unnest([{'a': 1, 'b': 2}, {'a': 3, 'b': 4}], recursive := true)
----
SELECT a.* FROM (SELECT {'x': 1, 'y': 'z'} AS a)
----
SELECT * FROM (SELECT unnest([{'x': 1, 'y': 'z'}], recursive := true))
----
UPDATE st SET p = {'name': upper(p.name), 'age': p.age + 1} WHERE p IS NOT NULL
----
SELECT id, p FROM st ORDER BY id
----
INSERT INTO st VALUES (6, {'name': 'zed', 'age': 99}, NULL)
----
INSERT INTO st VALUES (7, {'name': 'q'}, NULL)
----
INSERT INTO st VALUES (7, {'nom': 'q', 'age': 1}, NULL)
----
INSERT INTO st (id, p) VALUES (8, ROW('r', 2))
----
SELECT id, p FROM st WHERE id >= 6 ORDER BY id
----
ALTER TABLE st ADD COLUMN extra STRUCT(a INTEGER, b VARCHAR[]) DEFAULT {'a': 0, 'b': []}
----
SELECT id, extra FROM st ORDER BY id
----
SELECT count(*), count(p), count(p.name) FROM st
----
SELECT struct_pack(s := sum(p.age), n := count(*)) FROM st
----
SELECT id, row_number() OVER (ORDER BY p.age DESC NULLS LAST, id) FROM st ORDER BY id
----
SELECT {'t': TIMESTAMP '2024-01-01 10:00', 'd': DATE '2024-01-01', 'i': INTERVAL 1 DAY, 'b': '\xFF'::BLOB}
----
SELECT {'h': 1::HUGEINT, 'dec': 1.25::DECIMAL(10,2), 'u': 1::UTINYINT, 'f': 1.5::FLOAT}
----
SELECT {'e': 'a'::ENUM('a', 'b')}
----
SELECT {'uuid': 'a1b2c3d4-0000-4000-8000-00000000abcd'::UUID}
----
SELECT {}
----
SELECT row()
----
SELECT struct_pack()
----
SELECT {'a': 1} IN ({'a': 1}, {'a': 2})
----
SELECT id, p.name || '/' || p.age FROM st ORDER BY id
----
SELECT * EXCLUDE (tags) FROM st WHERE id = 1
----
SELECT COLUMNS('p|id') FROM st WHERE id < 3 ORDER BY id
----
SELECT struct_update({'a': 1, 'b': 2}, b := 3)
----
SELECT struct_keys({'a': 1, 'b': 2})
----
SELECT struct_values({'a': 1, 'b': 'x'})
