-- Transactions through SQL (BEGIN / COMMIT / ROLLBACK), aborted transactions, visibility to a
-- second connection of the same user (records marked `-- @conn b`), conflicts.
----
CREATE TABLE acct(id INTEGER PRIMARY KEY, bal INTEGER)
----
INSERT INTO acct VALUES (1, 100), (2, 50)
----
BEGIN TRANSACTION
----
UPDATE acct SET bal = bal - 30 WHERE id = 1
----
UPDATE acct SET bal = bal + 30 WHERE id = 2
----
SELECT * FROM acct ORDER BY id
----
-- @conn b
SELECT * FROM acct ORDER BY id
----
COMMIT
----
-- @conn b
SELECT * FROM acct ORDER BY id
----
BEGIN
----
DELETE FROM acct
----
SELECT count(*) FROM acct
----
ROLLBACK
----
SELECT * FROM acct ORDER BY id
----
BEGIN;
INSERT INTO acct VALUES (3, 0);
COMMIT;
SELECT count(*) FROM acct
----
BEGIN;
INSERT INTO acct VALUES (4, 0);
ROLLBACK;
SELECT count(*) FROM acct
----
BEGIN
----
INSERT INTO acct VALUES (1, 999)
----
SELECT * FROM acct ORDER BY id
----
COMMIT
----
SELECT * FROM acct ORDER BY id
----
BEGIN
----
SELECT 1 / 0 AS ok_in_duckdb
----
SELECT nosuchcol FROM acct
----
SELECT 1
----
ROLLBACK
----
SELECT 2
----
COMMIT
----
ROLLBACK
----
BEGIN
----
BEGIN
----
ROLLBACK
----
START TRANSACTION
----
CREATE TABLE in_tx(x INTEGER)
----
INSERT INTO in_tx VALUES (1)
----
-- @conn b
SELECT * FROM in_tx
----
ROLLBACK
----
SELECT * FROM in_tx
----
BEGIN
----
CREATE TABLE in_tx2(x INTEGER);
INSERT INTO in_tx2 VALUES (1), (2)
----
COMMIT
----
-- @conn b
SELECT count(*) FROM in_tx2
----
BEGIN
----
UPDATE acct SET bal = 1 WHERE id = 1
----
-- @conn b
UPDATE acct SET bal = 2 WHERE id = 1
----
COMMIT
----
SELECT bal FROM acct WHERE id = 1
----
-- @conn b
BEGIN
----
-- @conn b
INSERT INTO acct VALUES (10, 10)
----
SELECT count(*) FROM acct
----
-- @conn b
COMMIT
----
SELECT count(*) FROM acct
----
BEGIN TRANSACTION READ ONLY
----
SELECT count(*) FROM acct
----
INSERT INTO acct VALUES (11, 11)
----
ROLLBACK
----
BEGIN;
UPDATE acct SET bal = bal + 1;
SELECT sum(bal) FROM acct
----
ROLLBACK
----
SELECT sum(bal) FROM acct
----
BEGIN;
SELECT * FROM nope;
COMMIT
----
ROLLBACK
----
ABORT
----
BEGIN;
END
----
CHECKPOINT
----
BEGIN
----
CHECKPOINT
----
ROLLBACK
----
CREATE TEMP TABLE session_tmp(x INTEGER);
INSERT INTO session_tmp VALUES (7)
----
SELECT * FROM session_tmp
----
-- @conn b
SELECT * FROM session_tmp
----
-- @conn b
CREATE TEMP TABLE session_tmp(y VARCHAR);
INSERT INTO session_tmp VALUES ('b side');
SELECT * FROM session_tmp
----
SELECT * FROM session_tmp
----
SELECT count(*) FROM acct
