-- JSON: the type, extraction, construction, transformation, aggregation.
----
CREATE TABLE j(id INTEGER, doc JSON);
INSERT INTO j VALUES
 (1, '{"name": "ann", "age": 31, "tags": ["a", "b"], "addr": {"city": "Oslo", "zip": "0150"}}'),
 (2, '{"name": "bob", "age": null, "tags": [], "addr": null}'),
 (3, NULL),
 (4, '[1, 2, {"x": 3}]'),
 (5, '"just a string"'),
 (6, '{"name": "eve", "score": 9.75, "ok": true, "nested": {"deep": {"deeper": [10, 20]}}}')
----
SELECT * FROM j ORDER BY id
----
SELECT id, doc->'name', doc->>'name', doc->'$.age', doc->>'$.addr.city' FROM j ORDER BY id
----
SELECT id, json_extract(doc, '$.tags'), json_extract_string(doc, '$.tags[0]'), doc->'tags'->>0 FROM j ORDER BY id
----
SELECT id, json_extract(doc, ['$.name', '$.age']) FROM j ORDER BY id
----
SELECT id, json_type(doc), json_valid(doc), json_array_length(doc) FROM j ORDER BY id
----
SELECT id, json_keys(doc) FROM j ORDER BY id
----
SELECT id, json_exists(doc, '$.addr'), json_contains(doc, '"ann"') FROM j ORDER BY id
----
SELECT id, json_extract(doc, '$.nested.deep.deeper[1]'), doc->'$.nested.deep.deeper[#-1]' FROM j WHERE id = 6
----
SELECT id, (doc->>'age')::INTEGER + 1 FROM j ORDER BY id
----
SELECT json_object('a', 1, 'b', [1, 2], 'c', NULL), json_array(1, 'two', 3.5, NULL, true)
----
SELECT json_quote('he said "hi"'), json_quote(1), to_json({'a': [1, 2], 'b': MAP {'k': 'v'}})
----
SELECT to_json(DATE '2024-01-01'), to_json(TIMESTAMP '2024-01-01 10:00'), to_json(1.5::DECIMAL(4,2)), to_json('x'::BLOB)
----
SELECT to_json(1::HUGEINT), to_json('nan'::DOUBLE), to_json('a1b2c3d4-0000-4000-8000-00000000abcd'::UUID)
----
SELECT json_merge_patch('{"a": 1, "b": 2}', '{"b": null, "c": 3}')
----
SELECT json_structure('{"a": [1, 2], "b": {"c": "x"}}'), json_structure(doc) FROM j WHERE id = 1
----
SELECT json_transform('{"a": 1, "b": "x"}', '{"a": "INTEGER", "b": "VARCHAR"}')
----
SELECT json_transform(doc, '{"name": "VARCHAR", "age": "INTEGER", "tags": ["VARCHAR"]}') FROM j WHERE id IN (1, 2) ORDER BY id
----
SELECT from_json('[1, 2, 3]', '["INTEGER"]'), from_json_strict('{"a": 1}', '{"a": "INTEGER"}')
----
SELECT from_json_strict('{"a": "x"}', '{"a": "INTEGER"}')
----
SELECT json_transform_strict('{"a": 1}', '{"b": "INTEGER"}')
----
SELECT json_group_array(id ORDER BY id), json_group_object(id::VARCHAR, doc->>'name') FROM j WHERE id IN (1, 2, 6)
----
SELECT json_group_structure(doc) FROM j WHERE json_type(doc) = 'OBJECT'
----
SELECT id, unnest(json_extract_string(doc, '$.tags[*]')) AS t FROM j WHERE id = 1 ORDER BY t
----
SELECT id, json_each.key, json_each.value FROM j, json_each(j.doc) WHERE id = 1 ORDER BY json_each.key
----
SELECT key, value, type FROM json_each('{"x": 1, "y": [2]}') ORDER BY key
----
SELECT key, value, type, path FROM json_tree('{"a": {"b": 1}}') ORDER BY id
----
SELECT '{"a": 1}'::JSON = '{"a":1}'::JSON, '{"a": 1}'::JSON::VARCHAR
----
SELECT '{bad json'::JSON
----
SELECT json_valid('{bad json'), json_extract('{bad', '$.a')
----
SELECT json('{"a" :  1}'), json_pretty('{"a":[1,2]}')
----
SELECT json_serialize_sql('SELECT 1 AS x')::JSON->'statements'->0->'node'->>'type'
----
SELECT typeof(doc), typeof(doc->'a'), typeof(doc->>'a') FROM j WHERE id = 1
----
SELECT doc->>'name' AS name, count(*) FROM j GROUP BY name ORDER BY name NULLS LAST
----
SELECT id FROM j WHERE doc->>'name' = 'ann'
----
SELECT id FROM j WHERE (doc->>'score')::DOUBLE > 5
----
SELECT [doc] FROM j WHERE id = 5
----
SELECT {'d': doc} FROM j WHERE id = 4
----
SELECT list(doc ORDER BY id) FILTER (WHERE id < 3) FROM j
----
SELECT json_array_length('[1, [2, 3]]', '$[1]'), json_array_length('{}')
----
SELECT json_extract('{"a.b": 1}', '$."a.b"'), '{"a": {"b": 2}}'::JSON->'a'->'b'
----
SELECT json_extract('[1,2,3]', '$[-1]'), json_extract('[1,2,3]', '$[5]')
----
SELECT json_contains('[1, 2, 3]', '2'), json_contains('{"a": {"b": 1}}', '{"b": 1}')
----
SELECT json_extract_path('{"a": {"b": 1}}', 'a', 'b'), json_extract_path_text('{"a": {"b": 1}}', 'a', 'b')
----
SELECT to_json([1, NULL]), to_json(NULL), to_json({'a': NULL})
----
SELECT row_to_json(t) FROM (SELECT 1 AS a, 'x' AS b) t
----
SELECT array_to_json([1, 2])
----
UPDATE j SET doc = json_merge_patch(doc, '{"updated": true}') WHERE id = 1
----
SELECT doc->>'updated', doc->>'name' FROM j WHERE id = 1
----
SELECT json_keys('{"b": 1, "a": 2}'), json_keys('[1]')
----
SELECT '[1, 2]'::JSON::INTEGER[], '{"a": 1}'::JSON::STRUCT(a INTEGER), '{"k": 2}'::JSON::MAP(VARCHAR, INTEGER)
----
SELECT '"str"'::JSON::VARCHAR, '123'::JSON::INTEGER, 'true'::JSON::BOOLEAN
----
SELECT {'a': 1}::JSON, [1, 2]::JSON, 'x'::VARCHAR::JSON
----
SELECT json_object('k', doc) FROM j WHERE id = 4
----
SELECT max(doc->>'name'), min((doc->>'age')::INTEGER) FROM j
----
SELECT id, doc->'$.addr' IS NULL, doc->>'$.addr' IS NULL FROM j ORDER BY id
