-- Window functions: ranking, offsets, frames, named windows, QUALIFY, aggregates over windows.
----
CREATE TABLE w(id INTEGER, grp VARCHAR, v INTEGER, ts DATE);
INSERT INTO w VALUES
 (1, 'a', 10, DATE '2024-01-01'), (2, 'a', 20, DATE '2024-01-02'), (3, 'a', 20, DATE '2024-01-04'),
 (4, 'b', 5, DATE '2024-01-01'), (5, 'b', NULL, DATE '2024-01-03'), (6, 'b', 15, DATE '2024-01-03'),
 (7, 'c', 100, DATE '2024-01-10'), (8, 'a', 30, DATE '2024-01-05'), (9, 'b', 15, DATE '2024-01-06')
----
SELECT id, row_number() OVER (ORDER BY id) FROM w ORDER BY id
----
SELECT id, grp, v, row_number() OVER (PARTITION BY grp ORDER BY v, id) FROM w ORDER BY id
----
SELECT id, v, rank() OVER (ORDER BY v), dense_rank() OVER (ORDER BY v) FROM w ORDER BY id
----
SELECT id, v, percent_rank() OVER (ORDER BY v), cume_dist() OVER (ORDER BY v), ntile(3) OVER (ORDER BY id) FROM w ORDER BY id
----
SELECT id, lag(v) OVER (ORDER BY id), lead(v) OVER (ORDER BY id), lag(v, 2, 0) OVER (ORDER BY id) FROM w ORDER BY id
----
SELECT id, first_value(v) OVER (PARTITION BY grp ORDER BY id), last_value(v) OVER (PARTITION BY grp ORDER BY id) FROM w ORDER BY id
----
SELECT id, last_value(v) OVER (PARTITION BY grp ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) FROM w ORDER BY id
----
SELECT id, nth_value(v, 2) OVER (PARTITION BY grp ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) FROM w ORDER BY id
----
SELECT id, sum(v) OVER (ORDER BY id ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING) FROM w ORDER BY id
----
SELECT id, sum(v) OVER (PARTITION BY grp ORDER BY id ROWS UNBOUNDED PRECEDING) FROM w ORDER BY id
----
SELECT id, avg(v) OVER (PARTITION BY grp) FROM w ORDER BY id
----
SELECT id, count(*) OVER (), count(v) OVER (PARTITION BY grp) FROM w ORDER BY id
----
SELECT id, v, sum(v) OVER (ORDER BY v RANGE BETWEEN 5 PRECEDING AND 5 FOLLOWING) FROM w ORDER BY id
----
SELECT id, ts, count(*) OVER (ORDER BY ts RANGE BETWEEN INTERVAL 2 DAY PRECEDING AND CURRENT ROW) FROM w ORDER BY id
----
SELECT id, v, sum(v) OVER (ORDER BY v GROUPS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM w ORDER BY id
----
SELECT id, sum(v) OVER (ORDER BY id ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING EXCLUDE CURRENT ROW) FROM w ORDER BY id
----
SELECT id, v, sum(v) OVER (ORDER BY v ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW EXCLUDE TIES) FROM w ORDER BY v NULLS LAST, id
----
SELECT id, min(v) OVER win, max(v) OVER win FROM w WINDOW win AS (PARTITION BY grp ORDER BY id) ORDER BY id
----
SELECT id, rank() OVER (win ORDER BY v) FROM w WINDOW win AS (PARTITION BY grp) ORDER BY id
----
SELECT id, grp, v FROM w QUALIFY row_number() OVER (PARTITION BY grp ORDER BY v DESC NULLS LAST, id) = 1 ORDER BY grp
----
SELECT grp, v FROM w QUALIFY rank() OVER (ORDER BY v DESC NULLS LAST) <= 3 ORDER BY v DESC, grp
----
SELECT id, v - lag(v) OVER (ORDER BY id) AS delta FROM w ORDER BY id
----
SELECT id, v, v::DOUBLE / sum(v) OVER (PARTITION BY grp) AS share FROM w ORDER BY id
----
SELECT grp, sum(v), sum(sum(v)) OVER () FROM w GROUP BY grp ORDER BY grp
----
SELECT grp, count(*), rank() OVER (ORDER BY count(*) DESC) FROM w GROUP BY grp ORDER BY grp
----
SELECT id, list(v) OVER (PARTITION BY grp ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) FROM w ORDER BY id
----
SELECT id, string_agg(id::VARCHAR, ',') OVER (ORDER BY id ROWS 2 PRECEDING) FROM w ORDER BY id
----
SELECT id, first_value(v IGNORE NULLS) OVER (PARTITION BY grp ORDER BY id DESC) FROM w ORDER BY id
----
SELECT id, lag(v IGNORE NULLS) OVER (ORDER BY id) FROM w ORDER BY id
----
SELECT id, lead(v, 1) OVER (PARTITION BY grp ORDER BY ts, id) FROM w ORDER BY id
----
SELECT id, row_number() OVER (ORDER BY ts DESC, id DESC) FROM w ORDER BY id
----
SELECT id, median(v) OVER (PARTITION BY grp) FROM w ORDER BY id
----
SELECT id, quantile_cont(v, 0.5) OVER (ORDER BY id ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) FROM w ORDER BY id
----
SELECT id, mode(v) OVER (PARTITION BY grp) FROM w WHERE grp <> 'a' ORDER BY id
----
SELECT id, count(DISTINCT v) OVER (PARTITION BY grp) FROM w ORDER BY id
----
SELECT id, sum(v) FILTER (WHERE v > 10) OVER (ORDER BY id) FROM w ORDER BY id
----
SELECT id, v, rank() OVER (ORDER BY v DESC NULLS FIRST) FROM w ORDER BY id
----
SELECT id, row_number() OVER () IS NOT NULL FROM w ORDER BY id
----
SELECT id, ntile(4) OVER (PARTITION BY grp ORDER BY id) FROM w ORDER BY id
----
SELECT id, arg_max(id, v * 100 + id) OVER (PARTITION BY grp) FROM w ORDER BY id
----
SELECT id, bool_or(v > 50) OVER (ORDER BY id ROWS BETWEEN CURRENT ROW AND 2 FOLLOWING) FROM w ORDER BY id
----
SELECT * FROM (SELECT id, grp, row_number() OVER (PARTITION BY grp ORDER BY id) rn FROM w) WHERE rn <= 2 ORDER BY grp, rn
----
SELECT id, sum(v) OVER (ORDER BY id) AS running, sum(v) OVER (ORDER BY id DESC) AS rev FROM w ORDER BY id
----
SELECT id, avg(v) OVER (ORDER BY id ROWS BETWEEN 2 PRECEDING AND CURRENT ROW)::DECIMAL(10,2) FROM w ORDER BY id
----
SELECT id, rank() OVER (PARTITION BY grp ORDER BY v) - 1 FROM w ORDER BY id
----
SELECT i, sum(i) OVER (ORDER BY i ROWS BETWEEN 10 PRECEDING AND CURRENT ROW) AS s FROM range(5000) t(i) QUALIFY i % 1000 = 0 ORDER BY i
----
SELECT count(*) FROM (SELECT i, lag(i) OVER (ORDER BY i) FROM range(10000) t(i))
----
SELECT i % 3 AS k, i, row_number() OVER (PARTITION BY i % 3 ORDER BY i DESC) FROM range(9) t(i) ORDER BY k, i
----
SELECT id, row_number() OVER (ORDER BY grp) FROM w WHERE id = 1
----
SELECT rank() OVER (ORDER BY v) FROM w WHERE rank() OVER (ORDER BY v) = 1
----
SELECT id, lag(v, -1) OVER (ORDER BY id) FROM w ORDER BY id
----
SELECT id, nth_value(v, 0) OVER (ORDER BY id) FROM w ORDER BY id
----
SELECT id, sum(v) OVER (ORDER BY id ROWS BETWEEN 1 FOLLOWING AND 1 PRECEDING) FROM w ORDER BY id
----
SELECT id, sum(v) OVER nonexistent FROM w
----
SELECT id, fill(v) OVER (ORDER BY id) FROM w ORDER BY id
----
SELECT id, grp, v, ts, sum(v) OVER (PARTITION BY grp ORDER BY ts RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) FROM w ORDER BY id
----
SELECT id, count(*) OVER (PARTITION BY grp, ts) FROM w ORDER BY id
----
SELECT id, dense_rank() OVER (ORDER BY grp, v) FROM w ORDER BY id
----
SELECT DISTINCT grp, sum(v) OVER (PARTITION BY grp) FROM w ORDER BY grp
----
SELECT id, v, round(stddev_pop(v) OVER (PARTITION BY grp), 8) FROM w ORDER BY id
----
SELECT id, max(ts) OVER (PARTITION BY grp) - ts FROM w ORDER BY id
----
SELECT id, lead(ts) OVER (ORDER BY id) - ts FROM w ORDER BY id
----
SELECT grp, list(v ORDER BY id) FROM w GROUP BY grp ORDER BY grp
----
SELECT id, row_number() OVER (PARTITION BY grp ORDER BY id) * 10 + dense_rank() OVER (ORDER BY grp) FROM w ORDER BY id
