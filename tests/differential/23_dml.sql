-- DML: INSERT (VALUES, SELECT, BY NAME, OR REPLACE/IGNORE, ON CONFLICT), UPDATE, DELETE,
-- RETURNING, and row counts.
----
CREATE TABLE inv(sku VARCHAR PRIMARY KEY, qty INTEGER NOT NULL, price DECIMAL(8,2), tags VARCHAR[], updated DATE)
----
INSERT INTO inv VALUES ('a', 10, 1.00, ['x'], '2024-01-01')
----
INSERT INTO inv VALUES ('b', 5, 2.50, [], '2024-01-01'), ('c', 0, NULL, NULL, NULL), ('d', 7, 9.99, ['y', 'z'], '2024-02-01')
----
INSERT INTO inv (sku, qty) VALUES ('e', 1) RETURNING *
----
INSERT INTO inv (sku, qty, price) VALUES ('f', 2, 3.00), ('g', 3, 4.00) RETURNING sku, qty * price AS value
----
SELECT * FROM inv ORDER BY sku
----
UPDATE inv SET qty = qty + 1 WHERE sku IN ('a', 'b')
----
UPDATE inv SET qty = qty * 2 WHERE price > 2 RETURNING sku, qty
----
UPDATE inv SET price = coalesce(price, 0), updated = DATE '2024-03-01' WHERE price IS NULL RETURNING *
----
UPDATE inv SET qty = qty WHERE false
----
UPDATE inv SET qty = NULL WHERE sku = 'a'
----
UPDATE inv SET nosuch = 1
----
UPDATE inv SET qty = 'many' WHERE sku = 'a'
----
DELETE FROM inv WHERE sku = 'g' RETURNING sku
----
DELETE FROM inv WHERE qty > 1000
----
DELETE FROM inv WHERE sku = 'f'
----
SELECT sku, qty, price, updated FROM inv ORDER BY sku
----
INSERT INTO inv VALUES ('a', 1, 1.00, NULL, NULL)
----
INSERT OR IGNORE INTO inv VALUES ('a', 1, 1.00, NULL, NULL)
----
INSERT OR REPLACE INTO inv VALUES ('a', 100, 1.11, ['replaced'], NULL)
----
SELECT * FROM inv WHERE sku = 'a'
----
INSERT INTO inv VALUES ('b', 50, 5.55, NULL, NULL) ON CONFLICT DO NOTHING
----
INSERT INTO inv VALUES ('b', 50, 5.55, NULL, NULL) ON CONFLICT (sku) DO UPDATE SET qty = inv.qty + excluded.qty
----
SELECT sku, qty, price FROM inv WHERE sku = 'b'
----
INSERT INTO inv VALUES ('b', 1, 1.00, NULL, NULL), ('h', 1, 1.00, NULL, NULL) ON CONFLICT (sku) DO UPDATE SET price = excluded.price WHERE inv.qty < 10 RETURNING sku, qty, price
----
INSERT INTO inv VALUES ('h', 1, 1.00, NULL, NULL), ('h', 2, 1.00, NULL, NULL) ON CONFLICT DO UPDATE SET qty = excluded.qty
----
INSERT INTO inv BY NAME SELECT 'i' AS sku, 4 AS qty
----
INSERT INTO inv BY NAME SELECT 5 AS qty, 'j' AS sku, ['t'] AS tags
----
INSERT INTO inv BY NAME SELECT 'k' AS sku, 1 AS nosuch
----
INSERT INTO inv SELECT 'l' || i, i, i * 1.5, [i::VARCHAR], DATE '2024-01-01' + i::INTEGER FROM range(3) r(i)
----
INSERT INTO inv (sku, qty) SELECT 'm', 1 UNION ALL SELECT 'n', 2 RETURNING sku
----
SELECT count(*), sum(qty), sum(price) FROM inv
----
SELECT sku FROM inv ORDER BY sku
----
INSERT INTO inv VALUES ('z')
----
INSERT INTO inv (sku, qty) VALUES ('z', 1, 2)
----
INSERT INTO inv (sku) VALUES ('z')
----
INSERT INTO inv (sku, qty) VALUES (NULL, 1)
----
CREATE TABLE log(id INTEGER, msg VARCHAR);
INSERT INTO log SELECT i, 'm' || i FROM range(1000) r(i)
----
SELECT count(*), min(id), max(id) FROM log
----
UPDATE log SET msg = upper(msg) WHERE id % 100 = 0
----
SELECT id, msg FROM log WHERE id % 100 = 0 ORDER BY id
----
DELETE FROM log WHERE id >= 500
----
SELECT count(*) FROM log
----
DELETE FROM log RETURNING count(*)
----
DELETE FROM log WHERE id < 10 RETURNING id, msg
----
SELECT count(*) FROM log
----
DELETE FROM log
----
SELECT count(*) FROM log
----
INSERT INTO log VALUES (1, 'one') RETURNING id + 1 AS next, upper(msg)
----
UPDATE log SET msg = msg || '!' RETURNING msg, length(msg)
----
INSERT INTO log VALUES (2, 'two'), (3, 'three');
UPDATE log SET msg = 'x' WHERE id > 1 RETURNING id
----
CREATE TABLE nested_dml(id INTEGER, s STRUCT(a INTEGER, b VARCHAR[]), m MAP(VARCHAR, INTEGER));
INSERT INTO nested_dml VALUES (1, {'a': 1, 'b': ['p']}, MAP {'k': 1}) RETURNING *
----
UPDATE nested_dml SET s.a = 5
----
UPDATE nested_dml SET s = struct_insert(s, c := 1)
----
UPDATE nested_dml SET m = MAP {'new': 2} RETURNING m
----
SELECT * FROM nested_dml
----
CREATE TABLE upd_from(id INTEGER, v INTEGER);
CREATE TABLE src(id INTEGER, v INTEGER);
INSERT INTO upd_from VALUES (1, 10), (2, 20), (3, 30);
INSERT INTO src VALUES (1, 100), (3, 300), (4, 400)
----
UPDATE upd_from SET v = src.v FROM src WHERE upd_from.id = src.id
----
SELECT * FROM upd_from ORDER BY id
----
DELETE FROM upd_from USING src WHERE upd_from.id = src.id AND src.v > 200 RETURNING upd_from.id
----
SELECT * FROM upd_from ORDER BY id
----
MERGE INTO upd_from USING src ON upd_from.id = src.id WHEN MATCHED THEN UPDATE SET v = src.v + 1 WHEN NOT MATCHED THEN INSERT VALUES (src.id, src.v)
----
SELECT * FROM upd_from ORDER BY id
----
MERGE INTO upd_from USING (SELECT 1 AS id) s ON upd_from.id = s.id WHEN MATCHED THEN DELETE
----
SELECT * FROM upd_from ORDER BY id
----
MERGE INTO upd_from t USING (VALUES (9, 9)) s(id, v) ON t.id = s.id WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.v) RETURNING merge_action, *
----
INSERT INTO upd_from VALUES (5, 5), (6, 6) RETURNING (SELECT count(*) FROM upd_from)
----
UPDATE upd_from SET id = id + 100 WHERE id > 5 RETURNING id
----
SELECT * FROM upd_from ORDER BY id
----
CREATE TABLE big_ins AS SELECT i, i::VARCHAR AS s FROM range(5000) r(i)
----
INSERT INTO big_ins SELECT * FROM big_ins
----
SELECT count(*), count(DISTINCT i) FROM big_ins
----
DELETE FROM big_ins WHERE i % 2 = 1
----
SELECT count(*) FROM big_ins
----
INSERT INTO big_ins VALUES (1, 'one') RETURNING i, s
----
INSERT INTO inv VALUES ('q', 1, 12345678.99, NULL, NULL)
----
INSERT INTO inv VALUES ('r', 1, 123456789.99, NULL, NULL)
----
INSERT INTO inv VALUES ('s', 2147483648, 1, NULL, NULL)
----
INSERT INTO inv VALUES ('t', '3', '4.5', '[a, b]', '2024-05-05') RETURNING *
----
UPDATE inv SET tags = list_append(coalesce(tags, []), 'new') WHERE sku = 't' RETURNING tags
----
UPDATE inv SET sku = 'b' WHERE sku = 't'
----
INSERT INTO inv VALUES ('u', 1, 1, NULL, NULL) ON CONFLICT (qty) DO NOTHING
----
SELECT sku, qty, price, tags, updated FROM inv ORDER BY sku
