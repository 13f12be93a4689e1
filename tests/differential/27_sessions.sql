-- Session state across two connections of one user (records marked `-- @conn b` run on the
-- second): session settings, SET SESSION vs DuckDB's global SET, USE and search_path, temp
-- objects, variables.
----
CREATE TABLE so(x INTEGER);
INSERT INTO so VALUES (1), (NULL), (3)
----
SELECT x FROM so ORDER BY x
----
SET SESSION default_null_order = 'nulls_first'
----
SELECT x FROM so ORDER BY x
----
-- @conn b
SELECT x FROM so ORDER BY x
----
RESET SESSION default_null_order
----
SELECT x FROM so ORDER BY x
----
SET SESSION default_order = 'desc'
----
SELECT x FROM so ORDER BY x
----
-- @conn b
SELECT x FROM so ORDER BY x
----
RESET SESSION default_order
----
SELECT current_setting('default_order')
----
SET SESSION integer_division = true
----
SELECT 7 / 2
----
-- @conn b
SELECT 7 / 2
----
RESET SESSION integer_division
----
SELECT 7 / 2
----
SET default_null_order = 'nulls_first'
----
SELECT x FROM so ORDER BY x
----
-- @conn b
SELECT x FROM so ORDER BY x
----
RESET default_null_order
----
SELECT x FROM so ORDER BY x
----
-- @conn b
SELECT x FROM so ORDER BY x
----
SET integer_division = true
----
-- @conn b
SELECT 7 / 2
----
RESET integer_division
----
-- @conn b
SELECT 7 / 2
----
SELECT current_setting('integer_division'), current_setting('default_null_order')
----
SET ieee_floating_point_ops = false
----
SELECT 1.0 / 0.0
----
RESET ieee_floating_point_ops
----
SET preserve_insertion_order = false
----
SELECT count(*) FROM so
----
RESET preserve_insertion_order
----
SET scalar_subquery_error_on_multiple_rows = false
----
SELECT (SELECT unnest([5, 6]))
----
RESET scalar_subquery_error_on_multiple_rows
----
SELECT (SELECT unnest([5, 6]))
----
SET default_collation = 'nocase'
----
SELECT 'a' = 'A'
----
RESET default_collation
----
SELECT 'a' = 'A'
----
SET order_by_non_integer_literal = true
----
SELECT x FROM so ORDER BY 'x'
----
RESET order_by_non_integer_literal
----
SET VARIABLE my_var = 42
----
SELECT getvariable('my_var')
----
-- @conn b
SELECT getvariable('my_var')
----
RESET VARIABLE my_var
----
SELECT getvariable('my_var')
----
SET VARIABLE lst = [1, 2, 3];
SELECT getvariable('lst')
----
CREATE SCHEMA other;
CREATE TABLE other.so(y VARCHAR);
INSERT INTO other.so VALUES ('in other')
----
SET SESSION search_path = 'other'
----
SELECT * FROM so
----
-- @conn b
SELECT * FROM so ORDER BY x
----
RESET SESSION search_path
----
SELECT * FROM so ORDER BY x
----
USE my_db.other
----
SELECT * FROM so
----
SELECT current_schema(), current_database()
----
-- @conn b
SELECT current_schema(), current_database()
----
USE my_db.main
----
SELECT current_schema()
----
SET SESSION schema = 'other'
----
SELECT current_schema()
----
RESET SESSION schema
----
SELECT current_schema(), current_database()
----
USE my_db
----
CREATE TEMP TABLE tt(v INTEGER);
INSERT INTO tt VALUES (1)
----
-- @conn b
SELECT * FROM tt
----
-- @conn b
CREATE TEMP MACRO tm(x) AS x + 1;
SELECT tm(1)
----
SELECT tm(1)
----
CREATE TEMP SEQUENCE tseq;
SELECT nextval('tseq')
----
-- @conn b
SELECT nextval('tseq')
----
SELECT nextval('tseq')
----
SET SESSION errors_as_json = true
----
SELECT * FROM nosuch_for_json
----
RESET SESSION errors_as_json
----
SELECT current_setting('preserve_identifier_case')
----
SET SESSION preserve_identifier_case = false
----
SELECT 1 AS MixedCase
----
RESET SESSION preserve_identifier_case
----
SELECT 1 AS MixedCase
----
SET SESSION null_order = 'nulls_last'
----
SELECT x FROM so ORDER BY x DESC
----
RESET SESSION null_order
----
SELECT x FROM so ORDER BY x DESC
