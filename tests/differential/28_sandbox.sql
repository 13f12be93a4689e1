-- Statements a Pond duckling's sandbox refuses (files, extensions, settings outside the
-- session list, SQL-level PREPARE). Reported apart from mismatches; the session must stay
-- usable after each. (Nothing here writes anywhere but /dev/null when the reference runs it.)
----
SELECT * FROM read_csv('/etc/hostname')
----
SELECT 'still alive'
----
COPY (SELECT 1) TO '/dev/null' (FORMAT csv)
----
LOAD httpfs
----
SET threads = 1
----
SET memory_limit = '20GB'
----
SET TimeZone = 'UTC'
----
SET enable_external_access = true
----
PREPARE p AS SELECT 42
----
ATTACH ':memory:' AS other
----
SELECT count(*) > 0 FROM glob('/*')
----
SELECT current_setting('threads') > 0
----
SELECT 'still alive at the end'
