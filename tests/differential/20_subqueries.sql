-- Subqueries: scalar, IN, EXISTS, correlated, ANY/ALL, derived tables, in SELECT/WHERE/HAVING.
----
CREATE TABLE o(oid INTEGER, cust VARCHAR, amount DECIMAL(8,2), placed DATE);
CREATE TABLE c(cust VARCHAR, country VARCHAR, vip BOOLEAN);
INSERT INTO o VALUES (1, 'ann', 120.00, '2024-01-03'), (2, 'ann', 80.50, '2024-02-11'), (3, 'bob', 15.25, '2024-02-12'),
 (4, 'cid', 300.00, '2024-03-01'), (5, 'bob', NULL, '2024-03-02'), (6, 'dee', 42.00, '2024-03-05'), (7, 'zed', 10.00, '2024-03-06');
INSERT INTO c VALUES ('ann', 'NO', true), ('bob', 'SE', false), ('cid', 'NO', false), ('dee', 'DK', NULL), ('eve', 'NO', true)
----
SELECT (SELECT 1), (SELECT NULL), (SELECT max(amount) FROM o)
----
SELECT oid, amount, amount - (SELECT avg(amount) FROM o) AS diff FROM o ORDER BY oid
----
SELECT cust FROM c WHERE cust IN (SELECT cust FROM o) ORDER BY cust
----
SELECT cust FROM c WHERE cust NOT IN (SELECT cust FROM o) ORDER BY cust
----
SELECT cust FROM c WHERE EXISTS (SELECT 1 FROM o WHERE o.cust = c.cust AND amount > 100) ORDER BY cust
----
SELECT cust FROM c WHERE NOT EXISTS (SELECT 1 FROM o WHERE o.cust = c.cust) ORDER BY cust
----
SELECT c.cust, (SELECT sum(amount) FROM o WHERE o.cust = c.cust) AS total FROM c ORDER BY c.cust
----
SELECT c.cust, (SELECT count(*) FROM o WHERE o.cust = c.cust) AS n FROM c ORDER BY n DESC, c.cust
----
SELECT oid FROM o o1 WHERE amount > (SELECT avg(amount) FROM o o2 WHERE o2.cust = o1.cust) ORDER BY oid
----
SELECT oid FROM o o1 WHERE amount = (SELECT max(amount) FROM o o2 WHERE o2.cust = o1.cust) ORDER BY oid
----
SELECT oid FROM o WHERE amount > ALL (SELECT amount FROM o WHERE cust = 'ann') ORDER BY oid
----
SELECT oid FROM o WHERE amount > ANY (SELECT amount FROM o WHERE cust = 'bob') ORDER BY oid
----
SELECT oid FROM o WHERE amount < ALL (SELECT amount FROM o WHERE cust = 'nobody') ORDER BY oid
----
SELECT 5 > ALL (SELECT unnest([1, 2, NULL])), 5 > ANY (SELECT unnest([1, NULL])), 0 > ANY (SELECT unnest([1, NULL]))
----
SELECT 1 IN (SELECT NULL), 1 NOT IN (SELECT NULL), 1 IN (SELECT 1 WHERE false), 1 NOT IN (SELECT 1 WHERE false)
----
SELECT (SELECT cust FROM o)
----
SELECT (SELECT cust FROM o ORDER BY oid LIMIT 1)
----
SELECT (SELECT 1, 2)
----
SELECT * FROM (SELECT cust, sum(amount) AS s FROM o GROUP BY cust) t WHERE s > 50 ORDER BY s DESC
----
SELECT t.n FROM (SELECT count(*) AS n FROM o) t
----
SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT 1 AS x)))
----
SELECT country, (SELECT list(cust ORDER BY cust) FROM c c2 WHERE c2.country = c1.country) FROM c c1 GROUP BY country ORDER BY country
----
SELECT cust, sum(amount) FROM o GROUP BY cust HAVING sum(amount) > (SELECT avg(amount) FROM o) ORDER BY cust
----
SELECT oid, EXISTS (SELECT 1 FROM c WHERE c.cust = o.cust AND vip) AS vip FROM o ORDER BY oid
----
SELECT oid, (SELECT country FROM c WHERE c.cust = o.cust) FROM o ORDER BY oid
----
SELECT oid FROM o WHERE cust IN (SELECT cust FROM c WHERE country = 'NO') AND amount IS NOT NULL ORDER BY oid
----
SELECT oid FROM o WHERE (cust, placed) IN (SELECT cust, max(placed) FROM o GROUP BY cust) ORDER BY oid
----
SELECT cust, ARRAY(SELECT oid FROM o WHERE o.cust = c.cust ORDER BY oid) FROM c ORDER BY cust
----
SELECT oid, (SELECT count(*) FROM o o2 WHERE o2.placed <= o1.placed) AS running FROM o o1 ORDER BY oid
----
SELECT max(x) FROM (SELECT (SELECT max(amount) FROM o WHERE cust = c.cust) AS x FROM c)
----
SELECT oid FROM o WHERE amount = (SELECT amount FROM o WHERE oid = 99)
----
SELECT c.cust FROM c WHERE c.cust = ANY (SELECT cust FROM o WHERE amount > 50) ORDER BY 1
----
SELECT (SELECT sum(amount) FROM o WHERE placed < d) FROM (VALUES (DATE '2024-02-15'), (DATE '2024-03-03')) t(d) ORDER BY d
----
SELECT * FROM o WHERE oid IN (1, 3, (SELECT max(oid) FROM o)) ORDER BY oid
----
SELECT * FROM c WHERE vip = (SELECT vip FROM c WHERE cust = 'ann') ORDER BY cust
----
SELECT (SELECT x FROM (VALUES (1), (2)) t(x))
----
SELECT (SELECT x FROM (VALUES (1), (2)) t(x) WHERE x > 5)
----
SELECT cust, amount FROM o WHERE amount >= (SELECT quantile_disc(amount, 0.5) FROM o) ORDER BY amount DESC
----
SELECT cust, (SELECT max(o2.amount) FROM o o2 WHERE o2.cust = o1.cust AND o2.oid <> o1.oid) FROM o o1 ORDER BY oid
----
SELECT count(*) FROM o WHERE EXISTS (SELECT * FROM c)
----
SELECT count(*) FROM o WHERE EXISTS (SELECT * FROM c WHERE false)
----
SELECT (SELECT list(x ORDER BY x) FROM unnest([3, 1, 2]) u(x))
----
SELECT l, (SELECT sum(v) FROM unnest(l) u(v)) FROM (VALUES ([1, 2]), ([10]), ([])) t(l) ORDER BY 2 NULLS FIRST
----
SELECT o.oid FROM o WHERE o.amount > (SELECT avg(amount) FROM o o2 WHERE o2.placed < o.placed) ORDER BY oid
----
SELECT cust FROM c WHERE (SELECT count(*) FROM o WHERE o.cust = c.cust) >= 2 ORDER BY cust
----
SELECT cust, lateral_total FROM c, LATERAL (SELECT sum(amount) AS lateral_total FROM o WHERE o.cust = c.cust) ORDER BY cust
----
SELECT oid FROM o WHERE cust = (SELECT cust FROM c WHERE vip)
----
SELECT oid FROM o WHERE nosuch IN (SELECT 1)
----
SELECT * FROM (SELECT 1) t(a, b)
----
SELECT * FROM o WHERE oid = (SELECT oid FROM o WHERE cust = 'cid') ORDER BY oid
----
SELECT sum(amount) FILTER (WHERE cust IN (SELECT cust FROM c WHERE vip)) FROM o
----
SELECT CASE WHEN EXISTS (SELECT 1 FROM o WHERE amount > 250) THEN 'big' ELSE 'small' END
----
SELECT oid, cust, amount FROM o WHERE amount IN (SELECT max(amount) FROM o GROUP BY cust) ORDER BY oid
----
UPDATE o SET amount = (SELECT max(amount) FROM o) WHERE oid = 7
----
SELECT amount FROM o WHERE oid = 7
----
DELETE FROM o WHERE cust NOT IN (SELECT cust FROM c)
----
SELECT count(*), min(oid), max(oid) FROM o
----
INSERT INTO o SELECT max(oid) + 1, 'eve', 1.00, DATE '2024-04-01' FROM o
----
SELECT oid, cust FROM o ORDER BY oid DESC LIMIT 2
