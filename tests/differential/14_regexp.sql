-- Regular expressions.
----
CREATE TABLE r(id INTEGER, s VARCHAR);
INSERT INTO r VALUES (1, 'abc123def'), (2, 'no digits'), (3, NULL), (4, 'a1b22c333'), (5, 'Email: ann@example.com, bob@test.org'), (6, '')
----
SELECT id, regexp_matches(s, '\d+') FROM r ORDER BY id
----
SELECT id, regexp_full_match(s, '[a-z0-9]+') FROM r ORDER BY id
----
SELECT id, regexp_extract(s, '\d+') FROM r ORDER BY id
----
SELECT id, regexp_extract(s, '([a-z])(\d)', 2) FROM r ORDER BY id
----
SELECT id, regexp_extract_all(s, '\d+') FROM r ORDER BY id
----
SELECT id, regexp_extract_all(s, '(\w+)@(\w+)', 2) FROM r WHERE id = 5
----
SELECT regexp_extract('2024-06-09', '(\d+)-(\d+)-(\d+)', ['y', 'm', 'd'])
----
SELECT id, regexp_replace(s, '\d', '#') FROM r ORDER BY id
----
SELECT id, regexp_replace(s, '\d', '#', 'g') FROM r ORDER BY id
----
SELECT regexp_replace('Hello World', '(\w+) (\w+)', '\2 \1')
----
SELECT regexp_replace('aaa', 'a', 'b', 'gi'), regexp_replace('AAA', 'a', 'b', 'gi')
----
SELECT regexp_matches('ABC', 'abc', 'i'), regexp_matches('ABC', 'abc'), regexp_matches('a\nb', 'a.b', 's')
----
SELECT regexp_split_to_array('a1b2c3', '\d'), string_split_regex('one  two   three', '\s+')
----
SELECT unnest(regexp_split_to_array('x,y;z', '[,;]')) AS part ORDER BY part
----
SELECT regexp_split_to_table('a-b-c', '-')
----
SELECT id, s ~ '^[a-z]+\d' FROM r ORDER BY id
----
SELECT id FROM r WHERE regexp_matches(s, '^a') ORDER BY id
----
SELECT id FROM r WHERE s SIMILAR TO 'a.*\d' ORDER BY id
----
SELECT regexp_matches('abc', '(')
----
SELECT regexp_replace('abc', '[', 'x')
----
SELECT regexp_extract('abc', '(a)(b)', 5)
----
SELECT regexp_escape('a.b*c'), regexp_matches('a.b', regexp_escape('a.b'))
----
SELECT regexp_extract_all('aaa', 'a*'), regexp_extract_all('', 'x')
----
SELECT regexp_extract('abc', 'x'), regexp_extract(NULL, 'x'), regexp_extract('abc', NULL)
----
SELECT regexp_replace('日本語テキスト', '本', 'ホン'), regexp_matches('ü', '^.$')
----
SELECT regexp_extract('key=value; k2=v2', '(\w+)=(\w+)', ['k', 'v'])
----
SELECT regexp_extract_all('key=value; k2=v2', '(\w+)=(\w+)', 1)
----
SELECT count(*) FILTER (WHERE regexp_matches(s, '\d')) FROM r
----
SELECT regexp_replace(s, '(?i)E', '3', 'g') FROM r WHERE id = 5
----
SELECT regexp_full_match('abc', 'a.c'), regexp_full_match('abcd', 'a.c')
----
SELECT regexp_matches('foo', 'o{2}'), regexp_matches('fo', 'o{2}')
----
SELECT regexp_replace('a b  c', '\s+', ' ', 'g'), regexp_replace('x', '', '-', 'g')
----
SELECT regexp_matches('test', 't', 'z')
----
SELECT regexp_extract('2024-06-09', '(?P<year>\d+)-(\d+)', 1)
----
SELECT s, regexp_extract(s, '[A-Z]\w+') AS word FROM r WHERE id IN (5) ORDER BY s
----
SELECT list_transform(['a1', 'b2', 'c'], x -> regexp_extract(x, '\d'))
----
SELECT regexp_extract_all('a1b2', '([a-z])(\d)', 0)
----
SELECT regexp_matches(s, '[[:digit:]]') FROM r ORDER BY id
----
SELECT regexp_replace('CamelCaseString', '([a-z])([A-Z])', '\1_\2', 'g')
----
SELECT lower(regexp_replace('CamelCaseString', '([a-z])([A-Z])', '\1_\2', 'g'))
----
SELECT id, length(regexp_replace(s, '[^0-9]', '', 'g')) FROM r ORDER BY id
