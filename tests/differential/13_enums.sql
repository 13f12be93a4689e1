-- ENUM types: as columns, casts, comparison and ordering (by position), nested.
----
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')
----
CREATE TABLE pe(id INTEGER, name VARCHAR, m mood, ms mood[], mm MAP(VARCHAR, mood));
INSERT INTO pe VALUES
 (1, 'ann', 'happy', ['ok', 'sad'], MAP {'mon': 'sad'}),
 (2, 'bob', 'sad', [], MAP {}),
 (3, 'cid', NULL, NULL, NULL),
 (4, 'dee', 'ok', ['happy'], MAP {'tue': 'happy', 'wed': 'ok'}),
 (5, 'eli', 'happy', [NULL, 'ok'], MAP {'x': NULL})
----
SELECT * FROM pe ORDER BY id
----
SELECT m FROM pe WHERE id = 1
----
SELECT id, m FROM pe ORDER BY m, id
----
SELECT id, m FROM pe ORDER BY m DESC NULLS LAST, id
----
SELECT id FROM pe WHERE m > 'sad' ORDER BY id
----
SELECT id FROM pe WHERE m = 'happy' ORDER BY id
----
SELECT m, count(*) FROM pe GROUP BY m ORDER BY m NULLS LAST
----
SELECT min(m), max(m) FROM pe
----
SELECT id, m::VARCHAR, m::VARCHAR || '!' FROM pe ORDER BY id
----
SELECT id, enum_code(m) FROM pe ORDER BY id
----
SELECT enum_range(NULL::mood), enum_first(NULL::mood), enum_last(NULL::mood)
----
SELECT enum_range_boundary('ok'::mood, NULL)
----
SELECT typeof(m) FROM pe WHERE id = 1
----
SELECT 'ok'::mood, 'meh'::mood
----
SELECT TRY_CAST('meh' AS mood)
----
INSERT INTO pe (id, m) VALUES (6, 'angry')
----
INSERT INTO pe (id, m) VALUES (7, 'ok')
----
SELECT id, ms, ms[1] FROM pe ORDER BY id
----
SELECT id, mm, mm['tue'] FROM pe ORDER BY id
----
SELECT id, unnest(ms) AS x FROM pe ORDER BY id, x NULLS LAST
----
SELECT list(m ORDER BY id) FROM pe
----
SELECT {'m': m, 'id': id} FROM pe WHERE id = 4
----
SELECT 'happy'::mood > 'ok'::mood, 'happy' > 'ok'
----
SELECT 'a'::ENUM('a', 'b', 'c')
----
SELECT v::ENUM('x', 'y', 'z') AS e FROM (VALUES ('z'), ('x'), ('y')) t(v) ORDER BY e
----
SELECT typeof('a'::ENUM('a', 'b'))
----
CREATE TABLE big_enum AS SELECT ('v' || (i % 300))::VARCHAR AS s FROM range(600) t(i);
CREATE TYPE big AS ENUM (SELECT DISTINCT s FROM big_enum ORDER BY s);
SELECT count(*), min(s::big), max(s::big) FROM big_enum
----
SELECT s::big FROM big_enum WHERE s IN ('v1', 'v299') ORDER BY s LIMIT 2
----
SELECT typeof('v1'::big), enum_code('v299'::big)
----
ALTER TABLE pe ADD COLUMN m2 ENUM('lo', 'hi') DEFAULT 'lo'
----
SELECT id, m2 FROM pe ORDER BY id
----
UPDATE pe SET m = 'ok' WHERE m IS NULL
----
SELECT id, m FROM pe ORDER BY id
----
UPDATE pe SET m = 'nope' WHERE id = 1
----
SELECT m, string_agg(name, ',' ORDER BY name) FROM pe GROUP BY m ORDER BY m
----
SELECT DISTINCT m FROM pe ORDER BY m
----
SELECT a.id, b.id FROM pe a JOIN pe b ON a.m = b.m AND a.id < b.id ORDER BY 1, 2
----
SELECT m FROM pe WHERE id = 1 UNION ALL SELECT 'sad'::mood ORDER BY 1
----
SELECT m FROM pe WHERE id = 1 UNION ALL SELECT 'other' ORDER BY 1
----
SELECT CASE WHEN id = 1 THEN m ELSE 'sad' END FROM pe ORDER BY id
----
SELECT coalesce(m, 'ok') FROM pe ORDER BY id
----
SELECT m IN ('ok', 'sad') FROM pe ORDER BY id
----
SELECT * FROM pe WHERE id = 99
----
SELECT [m] FROM pe WHERE id = 99
----
CREATE TABLE pe_copy AS SELECT * FROM pe;
SELECT count(*), count(m) FROM pe_copy
----
DESCRIBE pe
----
DROP TYPE mood
----
DROP TABLE pe_copy; DROP TABLE pe; DROP TYPE mood
----
SELECT 'sad'::mood
