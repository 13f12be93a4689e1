-- Aggregates: GROUP BY, HAVING, FILTER, DISTINCT, ordered aggregates, grouping sets, statistics.
----
CREATE TABLE sales(id INTEGER, region VARCHAR, product VARCHAR, qty INTEGER, price DECIMAL(10,2), day DATE);
INSERT INTO sales VALUES
 (1, 'north', 'apple', 10, 1.50, DATE '2024-01-01'),
 (2, 'north', 'pear', 5, 2.25, DATE '2024-01-02'),
 (3, 'south', 'apple', 7, 1.40, DATE '2024-01-02'),
 (4, 'south', 'fig', NULL, 5.00, DATE '2024-01-03'),
 (5, 'east', 'apple', 3, 1.55, DATE '2024-01-03'),
 (6, 'north', 'apple', 8, 1.45, DATE '2024-01-04'),
 (7, NULL, 'pear', 2, 2.30, DATE '2024-01-05'),
 (8, 'south', 'pear', 12, 2.10, NULL),
 (9, 'east', 'fig', 1, 4.75, DATE '2024-01-05'),
 (10, 'north', 'fig', 4, 5.10, DATE '2024-01-06')
----
SELECT count(*), count(qty), sum(qty), avg(qty), min(qty), max(qty) FROM sales
----
SELECT region, count(*), sum(qty) FROM sales GROUP BY region
----
SELECT region, product, sum(qty) FROM sales GROUP BY region, product ORDER BY region NULLS LAST, product
----
SELECT region, sum(qty * price) AS revenue FROM sales GROUP BY region HAVING sum(qty) > 10 ORDER BY revenue DESC
----
SELECT product, avg(price), typeof(avg(price)) FROM sales GROUP BY product ORDER BY product
----
SELECT region, count(*) FILTER (WHERE product = 'apple') AS apples, sum(qty) FILTER (WHERE qty > 5) FROM sales GROUP BY region ORDER BY region NULLS FIRST
----
SELECT count(DISTINCT product), count(DISTINCT region), sum(DISTINCT qty) FROM sales
----
SELECT region, string_agg(product, ',' ORDER BY product) FROM sales GROUP BY region ORDER BY region
----
SELECT region, string_agg(DISTINCT product, '|' ORDER BY product) FROM sales GROUP BY region ORDER BY region
----
SELECT region, list(qty ORDER BY id) FROM sales GROUP BY region ORDER BY region NULLS LAST
----
SELECT region, array_agg(DISTINCT product ORDER BY product DESC) FROM sales GROUP BY ALL ORDER BY ALL
----
SELECT region, product, count(*) FROM sales GROUP BY ALL ORDER BY ALL
----
SELECT region, product, sum(qty) FROM sales GROUP BY GROUPING SETS ((region), (product), ()) ORDER BY region NULLS LAST, product NULLS LAST, 3
----
SELECT region, product, sum(qty), grouping(region), grouping(product) FROM sales GROUP BY ROLLUP (region, product) ORDER BY region NULLS LAST, product NULLS LAST, 4
----
SELECT region, product, count(*), grouping_id(region, product) FROM sales GROUP BY CUBE (region, product) ORDER BY 4, region NULLS LAST, product NULLS LAST
----
SELECT region, product, sum(qty) FROM sales WHERE region IS NOT NULL GROUP BY region, ROLLUP (product) ORDER BY 1, 2 NULLS LAST
----
SELECT median(qty), quantile_cont(qty, 0.25), quantile_disc(qty, 0.5), quantile_cont(qty, [0.1, 0.9]) FROM sales
----
SELECT mode(product), approx_count_distinct(product), entropy(product) FROM sales
----
SELECT stddev_samp(qty), stddev_pop(qty), var_samp(qty), var_pop(qty) FROM sales
----
SELECT round(corr(qty, price), 10), round(covar_pop(qty, price), 10), round(covar_samp(qty, price), 10) FROM sales
----
SELECT round(regr_slope(qty, price), 10), round(regr_intercept(qty, price), 10), regr_count(qty, price), round(regr_r2(qty, price), 10) FROM sales
----
SELECT round(skewness(qty), 10), round(kurtosis(qty), 10), round(kurtosis_pop(qty), 10) FROM sales
----
SELECT arg_min(product, price), arg_max(product, price), min_by(id, qty), max_by(id, qty) FROM sales
----
SELECT arg_max(product, qty, 3), min_by(id, price, 2) FROM sales
----
SELECT first(product ORDER BY id), last(product ORDER BY id), any_value(product ORDER BY id DESC) FROM sales
----
SELECT product, first(region ORDER BY id DESC) FROM sales GROUP BY product ORDER BY product
----
SELECT bool_and(qty > 0), bool_or(qty > 10), every(price > 1) FROM sales
----
SELECT sum(qty)::DOUBLE / count(*), fsum(price::DOUBLE), sumkahan(price::DOUBLE), favg(price::DOUBLE) FROM sales
----
SELECT product_agg FROM (SELECT product(qty) AS product_agg FROM sales WHERE qty < 6)
----
SELECT histogram(product), histogram(qty) FROM sales
----
SELECT count(*) FROM sales GROUP BY () 
----
SELECT region FROM sales GROUP BY region HAVING count(*) > 1 ORDER BY region
----
SELECT region, max(qty) FROM sales GROUP BY 1 ORDER BY 2 DESC NULLS LAST, 1
----
SELECT region AS r, count(*) AS c FROM sales GROUP BY r HAVING c >= 3 ORDER BY r
----
SELECT year(day) AS y, month(day) AS m, sum(qty) FROM sales GROUP BY y, m ORDER BY y NULLS LAST, m
----
SELECT qty > 5 AS big, count(*) FROM sales GROUP BY big ORDER BY big NULLS FIRST
----
SELECT product, sum(qty) AS total FROM sales GROUP BY product QUALIFY row_number() OVER (ORDER BY total DESC) = 1
----
SELECT region, count(*) FROM sales GROUP BY region ORDER BY count(*) DESC, region NULLS LAST LIMIT 2
----
SELECT count(*), sum(qty) FROM sales WHERE product = 'nothing'
----
SELECT product, count(*) FROM sales WHERE product = 'nothing' GROUP BY product
----
SELECT sum(price), typeof(sum(price)), max(price), min(day), max(day) FROM sales
----
SELECT avg(qty::DOUBLE), avg(DISTINCT qty) FROM sales
----
SELECT string_agg(id::VARCHAR, '') FROM (SELECT id FROM sales ORDER BY id)
----
SELECT list(DISTINCT region ORDER BY region NULLS FIRST) FROM sales
----
SELECT region, sum(qty) FROM sales GROUP BY region ORDER BY sum(qty) NULLS FIRST, region
----
SELECT count(*) FILTER (WHERE true), count(*) FILTER (WHERE false), count(*) FILTER (WHERE NULL) FROM sales
----
SELECT max(qty) FILTER (WHERE region = 'east') AS e, min(qty) FILTER (WHERE region = 'north') AS n FROM sales
----
SELECT product, max(qty) - min(qty) AS spread FROM sales GROUP BY product HAVING max(qty) IS NOT NULL ORDER BY spread DESC, product
----
SELECT sum(qty) OVER () AS total, region FROM sales WHERE id = 1
----
SELECT count(*) AS c FROM sales HAVING count(*) > 100
----
SELECT sum(qty) FROM sales HAVING sum(qty) > 0
----
SELECT region, sum(qty) FROM sales
----
SELECT region, qty FROM sales GROUP BY region
----
SELECT sum(product) FROM sales
----
SELECT count(*) FROM sales WHERE count(*) > 1
----
SELECT avg(count(*)) FROM sales
----
SELECT bit_and(qty), bit_or(qty), bit_xor(qty) FROM sales
----
SELECT bitstring_agg(qty, 1, 12) FROM sales
----
SELECT approx_quantile(qty, 0.5), reservoir_quantile(qty, 0.5) FROM sales
----
SELECT mad(qty), median(price) FROM sales
----
SELECT quantile_cont(day, 0.5), median(day) FROM sales
----
SELECT weighted_avg(price, qty) FROM sales
----
SELECT count(*) FROM (SELECT DISTINCT ON (product) product, id FROM sales ORDER BY product, id)
----
SELECT DISTINCT ON (product) product, id FROM sales ORDER BY product, id DESC
----
SELECT region, product FROM sales GROUP BY region, product HAVING sum(qty) IS NULL
----
SELECT sum(i), count(*), avg(i), min(i), max(i) FROM range(100000) t(i)
----
SELECT i % 7 AS k, count(*), sum(i) FROM range(10000) t(i) GROUP BY k ORDER BY k
----
SELECT count(DISTINCT i % 1000) FROM range(100000) t(i)
----
SELECT i % 3 AS k, list(i ORDER BY i DESC)[1:3] FROM range(30) t(i) GROUP BY k ORDER BY k
----
SELECT i % 5 AS k, string_agg(i::VARCHAR, ',' ORDER BY i) FROM range(20) t(i) GROUP BY ALL ORDER BY k
----
SELECT sum(x), avg(x) FROM (VALUES (1::HUGEINT), (170141183460469231731687303715884105727::HUGEINT)) t(x)
----
SELECT sum(x) FROM (VALUES (170141183460469231731687303715884105727::HUGEINT), (1::HUGEINT)) t(x)
----
SELECT min(x), max(x) FROM (VALUES ([1, 2]), ([1]), ([3])) t(x)
----
SELECT count(*) FROM (VALUES (1), (2)) t(x) GROUP BY CUBE (x) ORDER BY 1
----
SELECT region, product, count(*) FROM sales GROUP BY GROUPING SETS ((region, product), (region)) HAVING count(*) > 1 ORDER BY 1, 2 NULLS FIRST
----
SELECT sum(qty) AS s FROM sales GROUP BY region ORDER BY s NULLS LAST
----
SELECT count(1), count(NULL), count('x') FROM sales
----
SELECT any_value(qty) IS NOT NULL FROM sales WHERE id = 4
----
SELECT avg(x) FROM (VALUES (9223372036854775807::BIGINT), (9223372036854775807::BIGINT)) t(x)
----
SELECT sem(qty) FROM sales
----
SELECT list_sort(list(product)) FROM sales
----
SELECT product, count(*) c FROM sales GROUP BY product ORDER BY c DESC, product
----
SELECT array_agg(qty ORDER BY qty NULLS FIRST) FROM sales
----
SELECT count(*) FROM sales s1, sales s2
----
SELECT max(length(product)), min(length(product)) FROM sales
----
SELECT sum(CASE WHEN region = 'north' THEN qty ELSE 0 END) AS n, sum(CASE WHEN region = 'south' THEN qty END) AS s FROM sales
----
SELECT region, sum(qty) FILTER (WHERE day > DATE '2024-01-02') FROM sales GROUP BY region ORDER BY region NULLS LAST
