-- Joins: inner, outer, cross, semi, anti, natural, USING, lateral, ASOF, positional, self joins.
----
CREATE TABLE dept(did INTEGER PRIMARY KEY, dname VARCHAR);
CREATE TABLE emp(eid INTEGER, name VARCHAR, did INTEGER, boss INTEGER, salary INTEGER);
INSERT INTO dept VALUES (1, 'eng'), (2, 'ops'), (3, 'sales'), (4, 'empty');
INSERT INTO emp VALUES (1, 'ann', 1, NULL, 100), (2, 'bob', 1, 1, 80), (3, 'cat', 2, 1, 70), (4, 'dan', NULL, 2, 60), (5, 'eve', 3, 3, 90), (6, 'fay', 9, 3, 50)
----
SELECT e.name, d.dname FROM emp e JOIN dept d ON e.did = d.did
----
SELECT e.name, d.dname FROM emp e INNER JOIN dept d ON e.did = d.did ORDER BY e.name
----
SELECT e.name, d.dname FROM emp e LEFT JOIN dept d ON e.did = d.did ORDER BY e.name
----
SELECT e.name, d.dname FROM emp e RIGHT JOIN dept d ON e.did = d.did ORDER BY d.dname, e.name
----
SELECT e.name, d.dname FROM emp e FULL OUTER JOIN dept d ON e.did = d.did ORDER BY e.name NULLS LAST, d.dname
----
SELECT count(*) FROM emp CROSS JOIN dept
----
SELECT e.name, d.dname FROM emp e, dept d WHERE e.did = d.did AND d.dname <> 'eng' ORDER BY 1
----
SELECT name, dname FROM emp JOIN dept USING (did) ORDER BY name
----
SELECT * FROM emp JOIN dept USING (did) ORDER BY eid
----
SELECT * FROM emp NATURAL JOIN dept ORDER BY eid
----
SELECT * FROM emp e SEMI JOIN dept d ON e.did = d.did ORDER BY eid
----
SELECT * FROM emp e ANTI JOIN dept d ON e.did = d.did ORDER BY eid
----
SELECT e.name FROM emp e WHERE EXISTS (SELECT 1 FROM dept d WHERE d.did = e.did) ORDER BY 1
----
SELECT e.name, b.name AS boss FROM emp e LEFT JOIN emp b ON e.boss = b.eid ORDER BY e.name
----
SELECT e.name, b.name, bb.name FROM emp e JOIN emp b ON e.boss = b.eid JOIN emp bb ON b.boss = bb.eid ORDER BY e.name
----
SELECT d.dname, count(e.eid), coalesce(sum(e.salary), 0) FROM dept d LEFT JOIN emp e ON e.did = d.did GROUP BY d.dname ORDER BY d.dname
----
SELECT e.name, d.dname FROM emp e JOIN dept d ON e.did = d.did AND e.salary > 75 ORDER BY 1
----
SELECT e.name, d.dname FROM emp e LEFT JOIN dept d ON e.did = d.did AND d.dname = 'eng' ORDER BY 1
----
SELECT e.name, d.dname FROM emp e LEFT JOIN dept d ON e.did = d.did WHERE d.dname IS NULL ORDER BY 1
----
SELECT a.name, b.name FROM emp a JOIN emp b ON a.salary < b.salary AND a.did = b.did ORDER BY 1, 2
----
SELECT a.eid, b.eid FROM emp a JOIN emp b ON a.salary BETWEEN b.salary - 10 AND b.salary + 10 AND a.eid < b.eid ORDER BY 1, 2
----
SELECT d.dname, top.name FROM dept d, LATERAL (SELECT name FROM emp e WHERE e.did = d.did ORDER BY salary DESC LIMIT 1) top ORDER BY d.dname
----
SELECT d.dname, x.n FROM dept d LEFT JOIN LATERAL (SELECT count(*) AS n FROM emp e WHERE e.did = d.did) x ON true ORDER BY d.dname
----
SELECT d.dname, (SELECT max(salary) FROM emp e WHERE e.did = d.did) FROM dept d ORDER BY 1
----
SELECT * FROM (VALUES (1), (2), (3)) a(x) POSITIONAL JOIN (VALUES ('a'), ('b')) b(y)
----
CREATE TABLE trades(sym VARCHAR, t TIMESTAMP, price DOUBLE);
CREATE TABLE quotes(sym VARCHAR, t TIMESTAMP, bid DOUBLE);
INSERT INTO trades VALUES ('A', '2024-01-01 10:00:05', 10.5), ('A', '2024-01-01 10:00:15', 10.7), ('B', '2024-01-01 10:00:01', 20.1), ('A', '2024-01-01 09:59:00', 9.9);
INSERT INTO quotes VALUES ('A', '2024-01-01 10:00:00', 10.4), ('A', '2024-01-01 10:00:10', 10.6), ('B', '2024-01-01 10:00:00', 20.0)
----
SELECT tr.sym, tr.t, tr.price, q.bid FROM trades tr ASOF JOIN quotes q ON tr.sym = q.sym AND tr.t >= q.t ORDER BY tr.sym, tr.t
----
SELECT tr.sym, tr.t, q.bid FROM trades tr ASOF LEFT JOIN quotes q ON tr.sym = q.sym AND tr.t >= q.t ORDER BY tr.sym, tr.t
----
SELECT tr.sym, tr.t, q.t FROM trades tr ASOF JOIN quotes q USING (sym, t) ORDER BY 1, 2
----
SELECT * FROM emp e JOIN dept d ON true ORDER BY e.eid, d.did LIMIT 5
----
SELECT * FROM emp e JOIN dept d ON false
----
SELECT count(*) FROM emp e LEFT JOIN dept d ON false
----
SELECT e.name FROM emp e JOIN dept d ON e.did = d.did OR e.boss = d.did ORDER BY 1
----
SELECT e.name FROM emp e WHERE e.did IN (SELECT did FROM dept WHERE dname LIKE 'e%') ORDER BY 1
----
SELECT e.name FROM emp e WHERE e.did NOT IN (SELECT did FROM dept) ORDER BY 1
----
SELECT e.name FROM emp e WHERE e.did NOT IN (SELECT did FROM emp) ORDER BY 1
----
SELECT x.a, y.b FROM (SELECT unnest([1, 2, NULL]) a) x FULL JOIN (SELECT unnest([2, 3, NULL]) b) y ON x.a = y.b ORDER BY x.a NULLS LAST, y.b NULLS LAST
----
SELECT x.a, y.b FROM (SELECT unnest([1, 2, NULL]) a) x JOIN (SELECT unnest([2, 3, NULL]) b) y ON x.a IS NOT DISTINCT FROM y.b ORDER BY 1 NULLS FIRST
----
SELECT * FROM emp JOIN dept ON emp.did = dept.did JOIN emp e2 ON e2.boss = emp.eid ORDER BY emp.eid, e2.eid
----
SELECT name FROM emp JOIN dept ON did = did
----
SELECT * FROM emp JOIN nosuch ON true
----
SELECT * FROM emp e1 JOIN emp e2 USING (nope)
----
SELECT count(*) FROM range(100) a(i) JOIN range(100) b(j) ON i = j
----
SELECT count(*), sum(i * j) FROM range(300) a(i) JOIN range(300) b(j) ON i % 10 = j % 10
----
SELECT a.i, b.j FROM range(5) a(i) JOIN range(5) b(j) ON a.i + b.j = 4 ORDER BY a.i
----
SELECT a.i FROM range(10) a(i) WHERE a.i IN (SELECT j * 2 FROM range(5) b(j)) ORDER BY 1
----
SELECT d.dname, e.names FROM dept d LEFT JOIN (SELECT did, list(name ORDER BY name) AS names FROM emp GROUP BY did) e USING (did) ORDER BY d.dname
----
SELECT d.*, e.* FROM dept d JOIN emp e ON d.did = e.did WHERE d.did = 2
----
SELECT * EXCLUDE (boss) FROM emp JOIN dept USING (did) WHERE eid < 3 ORDER BY eid
----
SELECT e.* REPLACE (upper(name) AS name) FROM emp e WHERE eid < 3 ORDER BY eid
----
SELECT e.name, d.dname FROM emp e JOIN dept d ON e.did = d.did WHERE d.did = (SELECT min(did) FROM dept) ORDER BY 1
----
SELECT e.name FROM emp e JOIN (SELECT did FROM dept WHERE dname IN ('eng', 'ops')) d ON d.did = e.did ORDER BY 1
----
SELECT t1.x, t2.x FROM (VALUES (1, 'a'), (2, 'b')) t1(x, y) JOIN (VALUES (1, 'z'), (1, 'y')) t2(x, y) USING (x) ORDER BY t2.y
----
SELECT x, t1.y, t2.y FROM (VALUES (1, 'a'), (2, 'b')) t1(x, y) FULL JOIN (VALUES (1, 'z'), (3, 'y')) t2(x, y) USING (x) ORDER BY x
----
SELECT * FROM (SELECT 1 AS k, [1, 2] AS l) a JOIN (SELECT 1 AS k, {'s': 1} AS s) b USING (k)
----
SELECT a.l, b.l FROM (SELECT [1, 2] AS l) a JOIN (SELECT [1, 2] AS l) b ON a.l = b.l
----
SELECT a.s FROM (SELECT {'x': 1} AS s) a JOIN (SELECT {'x': 1} AS s) b ON a.s = b.s
----
SELECT count(*) FROM emp e1, emp e2, emp e3 WHERE e1.eid < e2.eid AND e2.eid < e3.eid
----
SELECT e.name, d.dname FROM emp e JOIN dept d ON e.did = d.did ORDER BY d.dname DESC, e.name LIMIT 3 OFFSET 1
----
SELECT dname FROM dept d WHERE NOT EXISTS (SELECT * FROM emp e WHERE e.did = d.did)
----
UPDATE emp SET salary = salary + 5 FROM dept WHERE emp.did = dept.did AND dept.dname = 'eng'
----
SELECT name, salary FROM emp ORDER BY eid
----
DELETE FROM emp USING dept WHERE emp.did = dept.did AND dept.dname = 'sales'
----
SELECT name FROM emp ORDER BY eid
----
SELECT e.name, d.dname FROM emp AS e JOIN dept AS d ON (e.did = d.did) ORDER BY e.eid
