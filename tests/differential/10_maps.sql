-- MAP: construction, access, functions, maps in tables and nested.
----
CREATE TABLE m(id INTEGER, kv MAP(VARCHAR, INTEGER), deep MAP(INTEGER, VARCHAR[]));
INSERT INTO m VALUES
 (1, MAP {'a': 1, 'b': 2}, MAP {1: ['x', 'y']}),
 (2, MAP {}, MAP {}),
 (3, NULL, NULL),
 (4, MAP {'z': NULL}, MAP {7: NULL, 8: []}),
 (5, map_from_entries([('k', 10), ('j', 20)]), MAP {2: ['only']})
----
SELECT * FROM m ORDER BY id
----
SELECT id, kv['a'], kv['missing'], element_at(kv, 'b'), map_extract(kv, 'a') FROM m ORDER BY id
----
SELECT id, map_extract_value(kv, 'a'), kv.a FROM m ORDER BY id
----
SELECT id, map_keys(kv), map_values(kv), cardinality(kv), len(kv) FROM m ORDER BY id
----
SELECT id, map_entries(kv) FROM m ORDER BY id
----
SELECT id, map_contains(kv, 'a'), map_contains_key(kv, 'z'), map_contains_value(kv, 20) FROM m ORDER BY id
----
SELECT id, deep[1], deep[7], deep[2][1] FROM m ORDER BY id
----
SELECT MAP(['a', 'b'], [1, 2]), map(), MAP {}
----
SELECT map_from_entries([{'k': 1, 'v': 'one'}, {'k': 2, 'v': 'two'}])
----
SELECT map_concat(MAP {'a': 1}, MAP {'b': 2, 'a': 3})
----
SELECT MAP {'a': 1, 'a': 2}
----
SELECT MAP {NULL: 1}
----
SELECT MAP(['a'], [1, 2])
----
SELECT typeof(MAP {'a': 1}), typeof(MAP {1: [1.5]}), typeof(map())
----
SELECT MAP {'a': 1} = MAP {'a': 1}, MAP {'a': 1} = MAP {'a': 2}
----
SELECT id, kv::VARCHAR FROM m ORDER BY id
----
SELECT id, to_json(kv) FROM m ORDER BY id
----
SELECT id, unnest(map_keys(kv)) AS k FROM m ORDER BY id, k
----
SELECT id, e.key, e.value FROM m, unnest(map_entries(kv)) u(e) ORDER BY id, e.key
----
SELECT id, map_from_entries(list_filter(map_entries(kv), e -> e.value > 1)) FROM m WHERE kv IS NOT NULL ORDER BY id
----
SELECT id, list_transform(map_entries(kv), e -> e.key || '=' || e.value) FROM m ORDER BY id
----
SELECT kv, count(*) FROM m GROUP BY kv ORDER BY id_min NULLS LAST
----
SELECT min(id) AS id_min, kv FROM m GROUP BY kv ORDER BY id_min
----
SELECT id FROM m ORDER BY kv NULLS FIRST, id
----
SELECT list(kv ORDER BY id) FROM m
----
SELECT [MAP {'a': 1}, NULL, MAP {}]
----
SELECT {'m': MAP {'a': [1, 2]}}
----
SELECT MAP {[1, 2]: 'list key', [3]: 'other'}
----
SELECT MAP {{'a': 1}: 'struct key'}
----
SELECT MAP {DATE '2024-01-01': 'new year'}[DATE '2024-01-01']
----
SELECT MAP {1.5: 'a'}[1.5], MAP {true: 'yes'}[true]
----
SELECT histogram(x) FROM (VALUES (1), (1), (2), (NULL)) t(x)
----
SELECT histogram(s) FROM (VALUES ('a'), ('b'), ('a')) t(s)
----
SELECT map_from_entries(list(struct_pack(k := s, v := n) ORDER BY s)) FROM (VALUES ('a', 1), ('b', 2)) t(s, n)
----
UPDATE m SET kv = map_concat(kv, MAP {'new': 0}) WHERE id = 1
----
SELECT kv FROM m WHERE id = 1
----
INSERT INTO m VALUES (6, MAP {'x': '5'}, NULL)
----
INSERT INTO m VALUES (7, MAP {'x': 'nope'}, NULL)
----
SELECT id, kv FROM m WHERE id > 5 ORDER BY id
----
SELECT MAP {'a': 1}::MAP(VARCHAR, DOUBLE), MAP {1: 'a'}::MAP(VARCHAR, VARCHAR)
----
SELECT '{a=1, b=2}'::MAP(VARCHAR, INTEGER)
----
SELECT MAP {'k': MAP {'inner': 1}}['k']['inner']
----
SELECT map_keys(MAP {}), map_values(MAP {})
----
SELECT cardinality(NULL::MAP(INTEGER, INTEGER))
----
SELECT MAP {'a': 'a1b2c3d4-0000-4000-8000-00000000abcd'::UUID}
----
SELECT MAP {'a': 1::HUGEINT, 'b': 2}
----
SELECT MAP {'t': TIMESTAMP '2024-01-01', 'u': NULL}
----
SELECT MAP {'e': 'x'::ENUM('x', 'y')}
----
SELECT MAP {'x'::ENUM('x', 'y'): 1}
----
SELECT map_from_entries([])
----
SELECT map_normalize(MAP {'b': 1, 'a': 2})
