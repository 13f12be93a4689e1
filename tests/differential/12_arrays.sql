-- Fixed-size ARRAY.
----
SELECT [1, 2, 3]::INTEGER[3]
----
SELECT array_value(1.0, 2.0, 3.0), typeof(array_value(1, 2))
----
CREATE TABLE arr(id INTEGER, v FLOAT[3], s VARCHAR[2], n INTEGER[2][2]);
INSERT INTO arr VALUES
 (1, [1.0, 2.0, 3.0], ['a', 'b'], [[1, 2], [3, 4]]),
 (2, [0.0, 0.0, 1.0], ['c', NULL], [[5, 6], NULL]),
 (3, NULL, NULL, NULL),
 (4, [-1.5, 2.5, NULL], ['d', 'e'], [[7, 8], [9, 10]])
----
SELECT * FROM arr ORDER BY id
----
SELECT id, v[1], v[3], s[2], n[2][1] FROM arr ORDER BY id
----
SELECT id, array_length(v), len(s) FROM arr ORDER BY id
----
SELECT id, array_cosine_similarity(v, [1.0, 2.0, 3.0]::FLOAT[3]) FROM arr WHERE id IN (1, 2) ORDER BY id
----
SELECT id, array_distance(v, [0.0, 0.0, 0.0]::FLOAT[3]), array_inner_product(v, [1.0, 1.0, 1.0]::FLOAT[3]) FROM arr WHERE id < 3 ORDER BY id
----
SELECT id, array_cross_product(v, [0.0, 1.0, 0.0]::FLOAT[3]) FROM arr WHERE id = 1
----
SELECT id, v::DOUBLE[3] FROM arr WHERE id = 1
----
SELECT id, v::FLOAT[] FROM arr ORDER BY id
----
SELECT id, v::VARCHAR FROM arr ORDER BY id
----
SELECT [1, 2]::INTEGER[3]
----
INSERT INTO arr VALUES (5, [1.0, 2.0], NULL, NULL)
----
SELECT id, unnest(s) AS x FROM arr ORDER BY id, x NULLS LAST
----
SELECT id FROM arr ORDER BY v NULLS FIRST, id
----
SELECT v, count(*) FROM arr GROUP BY v ORDER BY v NULLS LAST
----
SELECT list(v ORDER BY id) FROM arr
----
SELECT {'a': v} FROM arr WHERE id = 1
----
SELECT MAP {'a': s} FROM arr WHERE id = 1
----
SELECT [v, v] FROM arr WHERE id = 1
----
SELECT id, list_transform(v, x -> x * 2) FROM arr ORDER BY id
----
SELECT id, list_sum(v) FROM arr ORDER BY id
----
SELECT id, v = [1.0, 2.0, 3.0]::FLOAT[3] FROM arr ORDER BY id
----
SELECT [1, 2, 3]::INTEGER[3] < [1, 2, 4]::INTEGER[3]
----
SELECT array_value('a', 'b')::VARCHAR[2], [DATE '2024-01-01']::DATE[1]
----
SELECT [[1, 2], [3, 4]]::INTEGER[2][2]
----
SELECT [[1.5]]::DOUBLE[1][]
----
SELECT [{'a': 1}, {'a': 2}]::STRUCT(a INT)[2]
----
SELECT [MAP {'k': 1}]::MAP(VARCHAR, INT)[1]
----
SELECT ['a1b2c3d4-0000-4000-8000-00000000abcd'::UUID]::UUID[1]
----
SELECT [1::HUGEINT, 2]::HUGEINT[2]
----
SELECT [TIMESTAMPTZ '2024-01-01 00:00:00+00']::TIMESTAMPTZ[1]
----
SELECT ['x'::ENUM('x', 'y')]::ENUM('x', 'y')[1]
----
UPDATE arr SET v = [9.0, 9.0, 9.0] WHERE id = 3
----
SELECT id, v FROM arr ORDER BY id
----
SELECT array_value(1, 2, 3)[2:3]
----
SELECT typeof([1, 2, 3]::INTEGER[3][1:2])
----
SELECT [1, 2, 3]::BIGINT[3] + 1
----
SELECT array_length([[1, 2], [3, 4]]::INTEGER[2][2], 2)
----
SELECT count(*) FROM arr WHERE v IS NOT NULL
----
CREATE TABLE emb AS SELECT i AS id, [i::FLOAT, (i * 2)::FLOAT] :: FLOAT[2] AS e FROM range(5) t(i);
SELECT id, e FROM emb ORDER BY array_distance(e, [2.0, 4.0]::FLOAT[2]), id
----
SELECT id FROM emb ORDER BY array_cosine_distance(e, [1.0, 2.0]::FLOAT[2]), id LIMIT 3
