-- DDL: tables, constraints, defaults, generated columns, ALTER, views, sequences, schemas,
-- macros, indexes, types, comments, DROP, and reading the catalog back.
----
CREATE TABLE t1(a INTEGER, b VARCHAR)
----
CREATE TABLE t1(a INTEGER)
----
CREATE TABLE IF NOT EXISTS t1(a INTEGER)
----
CREATE OR REPLACE TABLE t2(x INTEGER PRIMARY KEY, y VARCHAR NOT NULL DEFAULT 'dflt', z DOUBLE CHECK (z >= 0), u VARCHAR UNIQUE)
----
INSERT INTO t2 (x) VALUES (1)
----
INSERT INTO t2 (x, z) VALUES (2, 1.5)
----
SELECT * FROM t2 ORDER BY x
----
INSERT INTO t2 (x, z) VALUES (3, -1)
----
INSERT INTO t2 (x, y) VALUES (4, NULL)
----
INSERT INTO t2 (x) VALUES (1)
----
INSERT INTO t2 (x, u) VALUES (5, 'same'), (6, 'same')
----
INSERT INTO t2 (x, u) VALUES (5, 'same')
----
SELECT x, y, z, u FROM t2 ORDER BY x
----
CREATE TABLE t3(id INTEGER, price DOUBLE, qty INTEGER, total DOUBLE GENERATED ALWAYS AS (price * qty) VIRTUAL)
----
INSERT INTO t3 (id, price, qty) VALUES (1, 2.5, 4), (2, 1.0, NULL)
----
SELECT * FROM t3 ORDER BY id
----
INSERT INTO t3 VALUES (3, 1.0, 1, 5.0)
----
CREATE TABLE t4 AS SELECT i AS id, i * 2 AS dbl, 'row' || i AS label FROM range(5) r(i)
----
SELECT * FROM t4 ORDER BY id
----
CREATE TABLE t5 AS SELECT * FROM t4 WHERE false
----
SELECT count(*) FROM t5
----
DESCRIBE t4
----
DESCRIBE SELECT 1 AS a, 'x' AS b, [1] AS c
----
SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_name = 't2' ORDER BY ordinal_position
----
SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = 'main' ORDER BY table_name
----
SELECT name, type, "notnull", dflt_value, pk FROM pragma_table_info('t2') ORDER BY cid
----
PRAGMA table_info('t4')
----
SHOW TABLES
----
SELECT table_name, estimated_size, column_count FROM duckdb_tables() WHERE schema_name = 'main' ORDER BY table_name
----
SELECT table_name, constraint_type, constraint_text FROM duckdb_constraints() WHERE table_name = 't2' ORDER BY constraint_index
----
ALTER TABLE t4 ADD COLUMN extra BOOLEAN DEFAULT true
----
ALTER TABLE t4 RENAME COLUMN label TO tag
----
ALTER TABLE t4 ALTER COLUMN dbl TYPE VARCHAR
----
ALTER TABLE t4 ALTER COLUMN dbl SET DEFAULT 'none'
----
SELECT * FROM t4 ORDER BY id
----
INSERT INTO t4 (id) VALUES (10)
----
SELECT * FROM t4 WHERE id = 10
----
ALTER TABLE t4 DROP COLUMN extra
----
ALTER TABLE t4 RENAME TO t4_renamed
----
SELECT count(*) FROM t4_renamed
----
SELECT count(*) FROM t4
----
ALTER TABLE t4_renamed ALTER COLUMN id SET NOT NULL
----
INSERT INTO t4_renamed (id) VALUES (NULL)
----
ALTER TABLE t4_renamed ADD COLUMN id INTEGER
----
ALTER TABLE nosuch ADD COLUMN c INTEGER
----
CREATE VIEW v1 AS SELECT id, tag FROM t4_renamed WHERE id < 3
----
SELECT * FROM v1 ORDER BY id
----
CREATE VIEW v1 AS SELECT 1
----
CREATE OR REPLACE VIEW v1 (ident, label) AS SELECT id, tag FROM t4_renamed WHERE id >= 3
----
SELECT * FROM v1 ORDER BY ident
----
SELECT view_name, sql IS NOT NULL FROM duckdb_views() WHERE NOT internal ORDER BY view_name
----
INSERT INTO v1 VALUES (1, 'x')
----
DROP VIEW v1
----
DROP VIEW v1
----
DROP VIEW IF EXISTS v1
----
CREATE SEQUENCE seq1 START 100 INCREMENT BY 5
----
SELECT nextval('seq1'), nextval('seq1')
----
SELECT currval('seq1')
----
CREATE TABLE t6(id INTEGER DEFAULT nextval('seq1'), v VARCHAR)
----
INSERT INTO t6 (v) VALUES ('a'), ('b')
----
SELECT * FROM t6 ORDER BY id
----
CREATE SEQUENCE seq2 MAXVALUE 2
----
SELECT nextval('seq2'), nextval('seq2')
----
SELECT nextval('seq2')
----
CREATE SEQUENCE seq3 START 1 MAXVALUE 2 CYCLE;
SELECT nextval('seq3'), nextval('seq3'), nextval('seq3')
----
SELECT sequence_name, start_value, increment_by FROM duckdb_sequences() ORDER BY sequence_name
----
DROP SEQUENCE seq1
----
DROP SEQUENCE seq1 CASCADE
----
SELECT * FROM t6
----
CREATE SCHEMA s1
----
CREATE TABLE s1.inner_t(k INTEGER);
INSERT INTO s1.inner_t VALUES (1), (2)
----
SELECT * FROM s1.inner_t ORDER BY k
----
SELECT schema_name FROM information_schema.schemata WHERE catalog_name = current_database() ORDER BY schema_name
----
DROP SCHEMA s1
----
DROP SCHEMA s1 CASCADE
----
SELECT * FROM s1.inner_t
----
CREATE MACRO add_one(x) AS x + 1
----
SELECT add_one(41), add_one(1.5)
----
CREATE MACRO clamp(x, lo := 0, hi := 10) AS greatest(lo, least(hi, x))
----
SELECT clamp(15), clamp(-3), clamp(5, hi := 4), clamp(5, lo := 6)
----
CREATE MACRO tbl_macro(n) AS TABLE SELECT i, i * i AS sq FROM range(n) r(i)
----
SELECT * FROM tbl_macro(4) ORDER BY i
----
CREATE OR REPLACE MACRO add_one(x) AS x + 100
----
SELECT add_one(1)
----
SELECT function_name, macro_definition IS NOT NULL FROM duckdb_functions() WHERE function_name IN ('add_one', 'clamp', 'tbl_macro') ORDER BY 1
----
DROP MACRO add_one
----
SELECT add_one(1)
----
DROP MACRO TABLE tbl_macro
----
CREATE INDEX idx_t6 ON t6(v)
----
CREATE UNIQUE INDEX idx_t2_y ON t2(y)
----
SELECT index_name, is_unique FROM duckdb_indexes() ORDER BY index_name
----
DROP INDEX idx_t6
----
CREATE TYPE color AS ENUM ('red', 'green')
----
CREATE TYPE pt AS STRUCT(x DOUBLE, y DOUBLE)
----
CREATE TABLE shapes(c color, p pt, ps pt[])
----
INSERT INTO shapes VALUES ('red', {'x': 1, 'y': 2}, [{'x': 0, 'y': 0}])
----
SELECT * FROM shapes
----
SELECT type_name FROM duckdb_types() WHERE type_name IN ('color', 'pt') ORDER BY 1
----
COMMENT ON TABLE t2 IS 'the second table'
----
COMMENT ON COLUMN t2.x IS 'key'
----
SELECT comment FROM duckdb_tables() WHERE table_name = 't2'
----
SELECT comment FROM duckdb_columns() WHERE table_name = 't2' AND column_name = 'x'
----
CREATE TABLE fk_parent(id INTEGER PRIMARY KEY);
CREATE TABLE fk_child(id INTEGER, pid INTEGER REFERENCES fk_parent(id));
INSERT INTO fk_parent VALUES (1)
----
INSERT INTO fk_child VALUES (1, 1)
----
INSERT INTO fk_child VALUES (2, 99)
----
DELETE FROM fk_parent WHERE id = 1
----
DROP TABLE fk_parent
----
DROP TABLE fk_child; DROP TABLE fk_parent
----
CREATE TABLE "Weird Name"("Col A" INTEGER, "col""b" VARCHAR)
----
INSERT INTO "Weird Name" VALUES (1, 'q')
----
SELECT "Col A", "col""b" FROM "Weird Name"
----
SELECT * FROM "weird name"
----
CREATE TABLE composite(a INTEGER, b INTEGER, c VARCHAR, PRIMARY KEY (a, b))
----
INSERT INTO composite VALUES (1, 1, 'x'), (1, 2, 'y')
----
INSERT INTO composite VALUES (1, 1, 'dup')
----
CREATE TEMP TABLE tmp1 AS SELECT 1 AS x
----
SELECT * FROM tmp1
----
SELECT table_name, temporary FROM duckdb_tables() WHERE table_name = 'tmp1'
----
CREATE TEMPORARY VIEW tv AS SELECT 2 AS y
----
SELECT * FROM tv
----
DROP TABLE tmp1
----
DROP TABLE t1, t3
----
DROP TABLE t1
----
DROP TABLE IF EXISTS t1
----
DROP TABLE IF EXISTS t3
----
SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1
----
CREATE TABLE bad_type(x NOTATYPE)
----
CREATE TABLE no_cols()
----
CREATE TABLE dup_cols(a INTEGER, a VARCHAR)
----
CREATE TABLE def_expr(a INTEGER DEFAULT 1 + 2, b TIMESTAMP DEFAULT TIMESTAMP '2024-01-01', c INTEGER[] DEFAULT [1, 2])
----
INSERT INTO def_expr DEFAULT VALUES
----
SELECT * FROM def_expr
----
TRUNCATE def_expr
----
SELECT count(*) FROM def_expr
----
CREATE TABLE every_type(b BOOLEAN, ti TINYINT, si SMALLINT, i INTEGER, bi BIGINT, hi HUGEINT, uti UTINYINT, usi USMALLINT, ui UINTEGER, ubi UBIGINT, uhi UHUGEINT, f FLOAT, d DOUBLE, dec DECIMAL(18,4), v VARCHAR, bl BLOB, dt DATE, tm TIME, ts TIMESTAMP, tstz TIMESTAMPTZ, iv INTERVAL, u UUID, js JSON, bt BIT)
----
INSERT INTO every_type VALUES (true, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1.5, 2.5, 3.1415, 'v', 'b'::BLOB, '2024-01-01', '01:02:03', '2024-01-01 01:02:03', '2024-01-01 01:02:03+00', INTERVAL 1 DAY, 'a1b2c3d4-0000-4000-8000-00000000abcd', '{"k": 1}', '101')
----
SELECT * FROM every_type
----
INSERT INTO every_type SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
----
SELECT * FROM every_type ORDER BY i NULLS LAST
----
SELECT column_name, column_type FROM (DESCRIBE every_type)
