-- LIST: functions, lambdas, comprehensions, unnest, aggregates into lists, lists in tables.
----
CREATE TABLE l(id INTEGER, xs INTEGER[], ss VARCHAR[], nested INTEGER[][]);
INSERT INTO l VALUES
 (1, [3, 1, 2], ['b', 'a'], [[1], [2, 3]]),
 (2, [], [], []),
 (3, NULL, NULL, NULL),
 (4, [5, NULL, 5], ['x', NULL], [[NULL], NULL]),
 (5, [10], ['only'], [[10, 20, 30]])
----
SELECT * FROM l ORDER BY id
----
SELECT id, len(xs), array_length(xs), list_count(xs) FROM l ORDER BY id
----
SELECT id, xs[1], xs[-1], xs[2:3], xs[10] FROM l ORDER BY id
----
SELECT id, list_extract(xs, 1), list_element(ss, 2), array_extract(xs, 1) FROM l ORDER BY id
----
SELECT id, list_sort(xs), list_reverse_sort(xs), list_sort(xs, 'DESC', 'NULLS LAST') FROM l ORDER BY id
----
SELECT id, list_distinct(xs), list_unique(xs), array_distinct(ss) FROM l ORDER BY id
----
SELECT id, list_contains(xs, 5), list_has(ss, 'a'), array_position(xs, 2), list_position(xs, NULL) FROM l ORDER BY id
----
SELECT id, list_has_any(xs, [1, 10]), list_has_all(xs, [1, 2]), xs && [2], xs @> [1] FROM l ORDER BY id
----
SELECT id, list_concat(xs, [99]), xs || [0], array_cat(ss, ['z']) FROM l ORDER BY id
----
SELECT id, list_append(xs, 7), list_prepend(0, xs), array_push_back(xs, 1), array_push_front(xs, 1) FROM l ORDER BY id
----
SELECT id, list_transform(xs, x -> x * 10), list_apply(ss, s -> upper(s)) FROM l ORDER BY id
----
SELECT id, list_filter(xs, x -> x > 1), array_filter(xs, x -> x IS NULL) FROM l ORDER BY id
----
SELECT id, list_reduce(xs, (a, b) -> a + b), list_reduce(xs, (a, b) -> a + b, 100) FROM l WHERE len(xs) > 0 ORDER BY id
----
SELECT list_reduce([], (a, b) -> a + b)
----
SELECT id, list_sum(xs), list_min(xs), list_max(xs), list_avg(xs), list_product(xs) FROM l ORDER BY id
----
SELECT id, list_aggregate(xs, 'count'), list_aggregate(xs, 'string_agg', '-'), list_aggr(xs, 'median') FROM l ORDER BY id
----
SELECT id, flatten(nested), len(flatten(nested)) FROM l ORDER BY id
----
SELECT id, list_slice(xs, 1, 2), list_slice(xs, 1, 3, 2), xs[:-1] FROM l ORDER BY id
----
SELECT id, list_zip(xs, ss), list_zip(xs, ss, true) FROM l ORDER BY id
----
SELECT list_zip([1, 2, 3], ['a', 'b'])
----
SELECT id, array_to_string(ss, '/'), list_string_agg(ss) FROM l ORDER BY id
----
SELECT id, list_resize(xs, 4), list_resize(xs, 1, -1) FROM l ORDER BY id
----
SELECT id, list_select(xs, [2, 1]), list_where(xs, [true, false, true]) FROM l WHERE id = 1
----
SELECT id, list_grade_up(xs), array_reverse(xs) FROM l ORDER BY id
----
SELECT id, list_intersect(xs, [1, 2, 5]), array_except(xs, [1]) FROM l ORDER BY id
----
SELECT list_value(1, 2, 3), list_pack('a', NULL), array_value(1.5, 2)
----
SELECT range(5), range(2, 10, 3), generate_series(1, 3), range(5, 0, -2)
----
SELECT range(DATE '2024-01-01', DATE '2024-01-04', INTERVAL 1 DAY)
----
SELECT [x * 2 FOR x IN [1, 2, 3]], [x FOR x IN [1, 2, 3, 4] IF x % 2 = 0]
----
SELECT [upper(s) FOR s IN ['a', 'b'] IF s <> 'b']
----
SELECT list_transform([1, 2, 3], (x, i) -> x * i), list_filter([5, 6, 7], (x, i) -> i > 1)
----
SELECT list_transform([[1, 2], [3]], x -> list_sum(x))
----
SELECT list_transform([1, 2], lambda x: x + 1)
----
SELECT id, unnest(xs) AS x FROM l ORDER BY id, x NULLS LAST
----
SELECT unnest([1, 2, 3]) AS a, unnest(['x', 'y']) AS b
----
SELECT unnest([[1, 2], [3]]), unnest([[1, 2], [3]], recursive := true)
----
SELECT unnest(nested, max_depth := 2) AS v FROM l WHERE id = 1
----
SELECT id, x FROM l, unnest(xs) AS t(x) ORDER BY id, x
----
SELECT id, generate_subscripts(xs, 1) AS i FROM l WHERE id = 1 ORDER BY i
----
SELECT id, list(x ORDER BY x) FROM (SELECT id, unnest(xs) AS x FROM l) GROUP BY id ORDER BY id
----
SELECT list(id ORDER BY id), list(DISTINCT id % 2 ORDER BY id % 2), array_agg(id ORDER BY id DESC) FROM l
----
SELECT list(xs ORDER BY id) FROM l
----
SELECT id, xs = [3, 1, 2], xs < [4], xs IS NULL FROM l ORDER BY id
----
SELECT xs, count(*) FROM l GROUP BY xs ORDER BY xs NULLS FIRST
----
SELECT DISTINCT xs FROM l ORDER BY xs
----
SELECT id FROM l ORDER BY xs DESC NULLS LAST, id
----
SELECT id FROM l WHERE 5 = ANY(xs) ORDER BY id
----
SELECT id FROM l WHERE list_contains(ss, 'x') ORDER BY id
----
SELECT [1, 2] = [1, 2], [1, 2] < [1, 3], [1] < [1, 0], [NULL] = [NULL]
----
SELECT [1, 2, 3][2], ([1, 2, 3])[1:2], [[1, 2], [3]][1][2]
----
SELECT ['a', 'b'][0]
----
SELECT len([[1, 2], [3]]), len([]), list_count([NULL])
----
SELECT list_cosine_similarity([1.0, 2.0], [2.0, 4.0]), list_distance([0.0, 0.0], [3.0, 4.0]), list_inner_product([1, 2], [3, 4])
----
SELECT list_negative_inner_product([1.0, 2.0], [3.0, 4.0]), list_cosine_distance([1.0, 0.0], [0.0, 1.0])
----
SELECT list_distance([1.0], [1.0, 2.0])
----
SELECT array_length([[1, 2], [3]], 2)
----
SELECT list_concat([1], ['a'])
----
SELECT [1, 'a']
----
SELECT [1, 2]::VARCHAR[], ['1', '2']::BIGINT[], [[1]]::DOUBLE[][]
----
SELECT list_transform(['1', '2'], x -> x::INTEGER + 1)
----
SELECT list_any_value([NULL, 2, 3]), list_first([4, 5]), list_last([4, 5]), list_mode([1, 2, 2])
----
SELECT list_bool_and([true, false]), list_bool_or([true, false]), list_histogram([1, 1, 2])
----
SELECT list_entropy([1, 2]), list_kurtosis([1, 2, 3, 10]), list_stddev_pop([1, 2, 3])
----
SELECT list_approx_count_distinct([1, 1, 2]), list_sem([1, 2, 3])
----
SELECT list_has_any([], [1]), list_has_all([1], []), list_intersect([], [])
----
SELECT id, CASE WHEN len(xs) > 1 THEN xs[1] ELSE -1 END FROM l ORDER BY id
----
SELECT id, [x + 1 FOR x IN xs] FROM l ORDER BY id
----
SELECT id, list_sort(list_transform(ss, s -> s || '!')) FROM l ORDER BY id
----
UPDATE l SET xs = list_append(xs, 100) WHERE id IN (1, 2)
----
SELECT id, xs FROM l ORDER BY id
----
INSERT INTO l VALUES (6, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], ['a', 'b', 'c'], [[], [], [1]])
----
SELECT id, xs FROM l WHERE len(xs) > 5
----
SELECT sum(len(xs)), max(len(ss)) FROM l
----
SELECT list_sort([3, NULL, 1], 'ASC', 'NULLS FIRST')
----
SELECT list_sort(['b', 'A', 'a', 'B'])
----
SELECT list_sort([[2, 1], [1, 3], [1]])
----
SELECT list_sort([{'a': 2}, {'a': 1}])
----
SELECT list_sort([1, 2], 'SIDEWAYS')
----
SELECT [i FOR i IN range(3)]
----
SELECT list_transform(range(1, 4), x -> repeat('*', x::INTEGER))
----
SELECT array_to_string(list_transform(range(3), x -> x::VARCHAR), '+')
----
SELECT list_filter(['apple', 'fig', 'kiwi'], s -> len(s) > 3)
----
SELECT list_reduce(['a', 'b', 'c'], (acc, s) -> acc || s)
----
SELECT list_transform(MAP {'a': 1, 'b': 2}, e -> e.key)
----
SELECT len(repeat([1], 1000))
----
SELECT [NULL, NULL]::INTEGER[], [[NULL]]
----
SELECT list_value()
----
SELECT typeof([1, NULL]), typeof([[]]), typeof(list_value())
----
SELECT list_extract([1, 2], 'a')
