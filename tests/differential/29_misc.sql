-- DuckDB's friendlier SQL and odds and ends: FROM-first, PIVOT/UNPIVOT, COLUMNS, EXCLUDE/REPLACE,
-- ORDER BY ALL, SAMPLE with a seed, table functions, CASE, IN, BETWEEN, LIKE ANY, SUMMARIZE.
----
CREATE TABLE city(name VARCHAR, country VARCHAR, year INTEGER, pop INTEGER);
INSERT INTO city VALUES ('Oslo', 'NO', 2000, 500), ('Oslo', 'NO', 2010, 580), ('Oslo', 'NO', 2020, 690),
 ('Bergen', 'NO', 2000, 230), ('Bergen', 'NO', 2020, 285), ('Lund', 'SE', 2010, 110), ('Lund', 'SE', 2020, 125), ('Malmo', 'SE', 2020, 350)
----
FROM city ORDER BY name, year
----
FROM city SELECT name, pop WHERE year = 2020 ORDER BY pop DESC
----
FROM city WHERE country = 'SE' SELECT DISTINCT name ORDER BY name
----
SELECT * EXCLUDE (country) FROM city WHERE year = 2000 ORDER BY name
----
SELECT * REPLACE (pop * 1000 AS pop) FROM city WHERE year = 2010 ORDER BY name
----
SELECT * RENAME (pop AS population) FROM city WHERE year = 2010 ORDER BY name
----
SELECT COLUMNS('^(name|pop)$') FROM city WHERE year = 2020 ORDER BY name
----
SELECT max(COLUMNS(* EXCLUDE (name, country))) FROM city
----
SELECT COLUMNS(c -> c LIKE '%o%') FROM city WHERE year = 2000 ORDER BY 1
----
SELECT min(COLUMNS(['year', 'pop'])) FROM city
----
SELECT name, year, pop FROM city ORDER BY ALL
----
SELECT name, year, pop FROM city ORDER BY ALL DESC
----
SELECT country, name, sum(pop) FROM city GROUP BY ALL ORDER BY ALL
----
SELECT #1, #3 FROM city ORDER BY #1, #2
----
PIVOT city ON year USING sum(pop) GROUP BY name ORDER BY name
----
PIVOT city ON year IN (2000, 2020) USING sum(pop) GROUP BY name ORDER BY name
----
PIVOT city ON country USING count(*)
----
SELECT * FROM (PIVOT city ON year USING sum(pop) GROUP BY country) ORDER BY country
----
PIVOT city ON year, country USING sum(pop) GROUP BY name ORDER BY name
----
SELECT * FROM city PIVOT (sum(pop) FOR year IN (2000, 2010, 2020) GROUP BY name) ORDER BY name
----
CREATE TABLE wide AS SELECT * FROM (VALUES ('a', 1, 2, 3), ('b', 4, NULL, 6)) t(k, q1, q2, q3)
----
UNPIVOT wide ON q1, q2, q3 INTO NAME quarter VALUE amount ORDER BY k, quarter
----
UNPIVOT INCLUDE NULLS wide ON COLUMNS(* EXCLUDE (k)) INTO NAME quarter VALUE amount ORDER BY k, quarter
----
SELECT * FROM wide UNPIVOT (amount FOR quarter IN (q1, q2, q3)) ORDER BY k, quarter
----
SELECT name, CASE country WHEN 'NO' THEN 'Norway' WHEN 'SE' THEN 'Sweden' ELSE '?' END FROM city WHERE year = 2020 ORDER BY name
----
SELECT name FROM city WHERE name LIKE ANY ('O%', 'L%') AND year = 2020 ORDER BY name
----
SELECT name FROM city WHERE name NOT LIKE ALL ('O%', 'L%') AND year = 2020 ORDER BY name
----
SELECT name FROM city WHERE pop BETWEEN 200 AND 400 ORDER BY name, pop
----
SELECT name FROM city WHERE (country, year) IN (('NO', 2000), ('SE', 2010)) ORDER BY name
----
SELECT * FROM city USING SAMPLE 100% ORDER BY name, year
----
SELECT count(*) FROM city USING SAMPLE 3 ROWS
----
SELECT count(*) FROM range(10000) USING SAMPLE 10% (bernoulli, 42)
----
SELECT count(*) FROM range(10000) TABLESAMPLE reservoir(50 ROWS) REPEATABLE (7)
----
SELECT * FROM range(3)
----
SELECT * FROM range(0, 10, 3) ORDER BY 1
----
SELECT * FROM generate_series(5, 1, -2)
----
SELECT * FROM range(TIMESTAMP '2024-01-01', TIMESTAMP '2024-01-02', INTERVAL 8 HOUR)
----
SELECT * FROM unnest([1, 2, 3]) AS u(x) WHERE x > 1
----
SELECT * FROM (VALUES (1, 'a')) v(id, s), (VALUES (2, 'b')) w(id2, s2)
----
SELECT * FROM repeat('x', 3)
----
SELECT * FROM repeat_row(1, 'a', num_rows := 3)
----
SELECT i, i % 2 = 0 ? 'even' : 'odd' FROM range(3) t(i)
----
SELECT if(true, 'y', 'n'), iif(false, 'y', 'n'), ifnull(NULL, 'd')
----
SELECT 5 IN (1, 2, 5), 5 NOT IN (1, 2), NULL IN (1), 'a' IN ('a', NULL)
----
SELECT 1 IN (), 1 NOT IN ()
----
SUMMARIZE city
----
SUMMARIZE SELECT pop FROM city
----
SELECT column_name, min, max, approx_unique, null_percentage FROM (SUMMARIZE city) ORDER BY column_name
----
EXPLAIN SELECT 1
----
SELECT current_database(), current_schema(), current_schemas(false)
----
SELECT current_catalog(), current_role() IS NOT NULL, user IS NOT NULL
----
SELECT version() LIKE 'v1.%'
----
SELECT pg_typeof(1), pg_typeof('a'), format_type(23, NULL)
----
SELECT alias(1 + 1), typeof(alias(1))
----
SELECT stats(1) IS NOT NULL
----
SELECT struct_pack(a := 1).a, [1, 2, 3][2], 'abc'[1]
----
SELECT 1 AS x, x + 1 AS y, y * 2 AS z
----
SELECT pop AS p FROM city WHERE p > 600
----
SELECT name AS n, count(*) FROM city GROUP BY n HAVING count(*) > 2 ORDER BY n
----
SELECT sum(pop) FILTER (country = 'NO') FROM city
----
SELECT name FROM city WHERE year = 2020 ORDER BY pop DESC LIMIT 2 OFFSET 1
----
SELECT name, year FROM city ORDER BY name, year DESC LIMIT 3
----
SELECT name, pop FROM city WHERE year = 2020 ORDER BY pop DESC LIMIT 50%
----
SELECT DISTINCT country FROM city ORDER BY country
----
SELECT country, count(DISTINCT name) FROM city GROUP BY country ORDER BY country
----
SELECT name, list(year ORDER BY year) AS years FROM city GROUP BY name ORDER BY name
----
SELECT name, max(pop) - min(pop) AS growth FROM city GROUP BY name HAVING count(*) > 1 ORDER BY growth DESC
----
SELECT name, year, pop, pop - lag(pop) OVER (PARTITION BY name ORDER BY year) AS delta FROM city ORDER BY name, year
----
SELECT country, name FROM city QUALIFY row_number() OVER (PARTITION BY country ORDER BY pop DESC) = 1 ORDER BY country
----
SELECT c.name FROM city c WHERE c.pop = (SELECT max(pop) FROM city WHERE country = c.country) ORDER BY 1
----
SELECT name, string_agg(year::VARCHAR, '-' ORDER BY year) FROM city GROUP BY name ORDER BY name
----
SELECT * FROM city WHERE name = 'Oslo' AND year = (SELECT max(year) FROM city)
----
SELECT format('{}: {}', name, pop) FROM city WHERE year = 2010 ORDER BY 1
----
SELECT name, year, pop FROM city WHERE year = 2020 UNION ALL SELECT 'total', 2020, sum(pop) FROM city WHERE year = 2020 ORDER BY pop
----
SELECT 'a' AS x ORDER BY 1 COLLATE nocase
----
SELECT i FROM range(5) t(i) ORDER BY i % 2, i
----
SELECT i FROM range(5) t(i) ORDER BY -i
----
SELECT i FROM range(5) t(i) WHERE i > 2 OR i < 1 ORDER BY i
----
SELECT x FROM (VALUES ('b'), ('a'), ('C'), ('B')) t(x) ORDER BY x
----
SELECT x FROM (VALUES ('b'), ('a'), ('C'), ('B')) t(x) ORDER BY x COLLATE nocase, x
----
SELECT x FROM (VALUES (2.5), (-1.0), (10.25)) t(x) ORDER BY x DESC
----
SELECT x FROM (VALUES (DATE '2024-01-02'), (DATE '2023-12-31')) t(x) ORDER BY x
----
SELECT x FROM (VALUES (true), (false), (NULL)) t(x) ORDER BY x NULLS FIRST
----
SELECT count(*) FROM duckdb_functions() WHERE function_name = 'abs'
----
SELECT function_name, function_type FROM duckdb_functions() WHERE function_name IN ('list_sum', 'range', 'sum') AND schema_name = 'main' GROUP BY ALL ORDER BY ALL
----
SELECT keyword_name, keyword_category FROM duckdb_keywords() WHERE keyword_name IN ('select', 'pivot') ORDER BY 1
----
SELECT collname FROM pragma_collations() WHERE collname IN ('nocase', 'noaccent', 'nfc') ORDER BY 1
----
SELECT type_name FROM duckdb_types() WHERE type_name IN ('INTEGER', 'VARCHAR', 'UNION') AND database_name = 'system' GROUP BY 1 ORDER BY 1
----
SELECT count(*) > 10 FROM duckdb_settings()
----
SELECT name, value FROM duckdb_settings() WHERE name IN ('default_order', 'default_null_order') ORDER BY name
----
SELECT * FROM test_all_types() LIMIT 0
----
SELECT bool, tinyint, smallint, int, bigint, utinyint, usmallint, uint, ubigint FROM test_all_types()
----
SELECT hugeint, uhugeint, date, time, timestamp, timestamp_s, timestamp_ms, timestamp_ns FROM test_all_types()
----
SELECT time_tz, timestamp_tz, float, double, dec_4_1, dec_9_4, dec_18_6, dec38_10 FROM test_all_types()
----
SELECT uuid, interval, varchar, blob, bit FROM test_all_types()
----
SELECT small_enum, medium_enum, large_enum FROM test_all_types()
----
SELECT int_array, double_array, date_array, timestamp_array, timestamptz_array, varchar_array FROM test_all_types()
----
SELECT nested_int_array, struct, struct_of_arrays, array_of_structs, map FROM test_all_types()
----
SELECT "union", fixed_int_array, fixed_varchar_array, fixed_nested_int_array, fixed_nested_varchar_array, fixed_struct_array, struct_of_fixed_array, fixed_array_of_int_list, list_of_fixed_int_array FROM test_all_types()
----
SELECT varint FROM test_all_types()
----
SELECT bignum FROM test_all_types()
----
SELECT * FROM test_all_types()
