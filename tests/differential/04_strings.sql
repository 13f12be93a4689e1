-- String functions.
----
CREATE TABLE s(id INTEGER, v VARCHAR);
INSERT INTO s VALUES (1, 'Hello World'), (2, 'duck'), (3, ''), (4, NULL), (5, '  padded  '), (6, 'ünïcödé 世界'), (7, 'a,b,,c')
----
SELECT id, length(v), strlen(v), octet_length(v::BLOB) FROM s ORDER BY id
----
SELECT id, upper(v), lower(v) FROM s ORDER BY id
----
SELECT id, trim(v), ltrim(v), rtrim(v) FROM s ORDER BY id
----
SELECT trim('xxhixx', 'x'), ltrim('xxhi', 'x'), rtrim('hixx', 'x')
----
SELECT id, substr(v, 2, 3), substring(v, 1, 1), v[1:3] FROM s ORDER BY id
----
SELECT substring('hello' FROM 2 FOR 3), substr('hello', -3), substr('hello', 0, 2)
----
SELECT left('hello', 2), right('hello', 3), left('hi', 10), right('hi', -1)
----
SELECT id, reverse(v) FROM s ORDER BY id
----
SELECT id, replace(v, 'o', '0') FROM s ORDER BY id
----
SELECT id, position('o' IN v), strpos(v, 'l'), instr(v, 'd') FROM s ORDER BY id
----
SELECT id, contains(v, 'uc'), starts_with(v, 'He'), ends_with(v, 'ck') FROM s ORDER BY id
----
SELECT id, v LIKE '%o%', v ILIKE 'h%', v NOT LIKE 'd%' FROM s ORDER BY id
----
SELECT 'a_c' LIKE 'a\_c' ESCAPE '\', 'abc' LIKE 'a_c', 'ABC' ILIKE 'a%'
----
SELECT 'abc' SIMILAR TO 'a.c', 'abc' GLOB 'a*', 'abc' GLOB '?b?'
----
SELECT id, concat(v, '!'), v || '?' FROM s ORDER BY id
----
SELECT concat_ws('-', 'a', NULL, 'b', 'c'), concat_ws(', ', 1, 2.5, true)
----
SELECT repeat('ab', 3), repeat('x', 0), lpad('7', 3, '0'), rpad('7', 3, '*')
----
SELECT lpad('hello', 3, 'x'), rpad('hi', 5, 'ab')
----
SELECT split_part('a,b,c', ',', 2), split_part('a,b,c', ',', 5), split_part('a,b,c', ',', -1)
----
SELECT string_split('a,b,,c', ','), str_split('a b c', ' ')
----
SELECT id, string_split(v, ',') FROM s ORDER BY id
----
SELECT string_split_regex('a1b22c333d', '[0-9]+')
----
SELECT ascii('A'), chr(66), unicode('é'), chr(19990)
----
SELECT format('{} + {} = {}', 1, 2, 3), format('{:>5}|{:<5}|', 'a', 'b')
----
SELECT printf('%05d|%.2f|%s|%x', 42, 3.14159, 'str', 255)
----
SELECT printf('%-6s|', 'ab'), printf('%e', 12345.678)
----
SELECT md5('duck'), sha256('duck'), sha1('duck')
----
SELECT hash('duck') = hash('duck'), md5_number('duck')
----
SELECT base64('hello'::BLOB), from_base64('aGVsbG8=')
----
SELECT to_base64('\x00\xFF'::BLOB), encode('héllo'), decode('h\xC3\xA9llo'::BLOB)
----
SELECT hex('duck'), unhex('6475636B'), to_hex(255), bin(5)
----
SELECT url_encode('a b&c=d/é'), url_decode('a%20b%26c')
----
SELECT levenshtein('kitten', 'sitting'), damerau_levenshtein('ab', 'ba'), hamming('abc', 'abd')
----
SELECT jaccard('duck', 'luck'), jaro_similarity('duck', 'duke'), jaro_winkler_similarity('duck', 'duke')
----
SELECT mismatches('duck', 'luck'), editdist3('kitten', 'sitting')
----
SELECT id, v < 'e', v >= 'Hello' FROM s ORDER BY id
----
SELECT v FROM s WHERE v IS NOT NULL ORDER BY v
----
SELECT v FROM s WHERE v IS NOT NULL ORDER BY v COLLATE nocase
----
SELECT v FROM s WHERE v IS NOT NULL ORDER BY lower(v) DESC
----
SELECT 'B' < 'a', 'B' COLLATE nocase < 'a', 'é' > 'z'
----
SELECT 'abc' COLLATE NOCASE = 'ABC', 'ñ' COLLATE NOACCENT = 'n'
----
SELECT upper('straße'), lower('İSTANBUL'), length('straße')
----
SELECT initcap('hello world'), title('hello world')
----
SELECT id, array_to_string(string_split(v, ' '), '|') FROM s ORDER BY id
----
SELECT translate('12345', '143', 'ax'), strip_accents('Ünïcödé')
----
SELECT prefix('duckdb', 'duck'), suffix('duckdb', 'db')
----
SELECT nfc_normalize('e' || chr(769)) = 'é', length(nfc_normalize('e' || chr(769)))
----
SELECT id, length_grapheme(v) FROM s ORDER BY id
----
SELECT 'abc'[2], 'abc'[-1], 'abcdef'[2:4], 'abcdef'[:2], 'abcdef'[4:]
----
SELECT string_agg(v, '; ' ORDER BY id DESC) FROM s
----
SELECT listagg(v, '|') WITHIN GROUP (ORDER BY id) FROM s
----
SELECT group_concat(v ORDER BY v) FROM s WHERE id < 4
----
SELECT id, regexp_replace(v, '[aeiou]', '*', 'g') FROM s ORDER BY id
----
SELECT id, v FROM s WHERE v ~~ '%o%' ORDER BY id
----
SELECT 'duck' ^@ 'du', starts_with('duck', 'uc')
----
SELECT lcase('ABC'), ucase('abc'), len('four')
----
SELECT bit_length('abc'), octet_length('é'), length('é')
----
SELECT char_length('hello'), character_length('')
----
SELECT 'hello' SIMILAR TO 'h%'
----
SELECT 'x' * 3
----
SELECT repeat('-', 3) || '>' || repeat('=', 2)
----
SELECT string_to_array('a-b-c', '-'), regexp_split_to_array('a1b2c', '\d')
----
SELECT array_to_string(['a', NULL, 'c'], ','), list_aggregate(['b', 'a'], 'string_agg', '+')
----
SELECT format('{:d}', 42), format('{:.3f}', 2.0/3), format('{:,}', 1234567)
----
SELECT format('{0} {1} {0}', 'a', 'b')
----
SELECT printf('%d', 'notanumber')
----
SELECT format('{}', 1, 2)
----
SELECT substring('hello', 2)
----
SELECT ord('a'), ascii(''), chr(0) = ''
----
SELECT 'A' || chr(10) || 'B', length('A' || chr(10) || 'B')
----
SELECT concat('a', 1, 2.5, DATE '2024-01-01', [1,2])
----
SELECT 'abc' || 1::INTEGER, 1 || 2
----
SELECT lower(NULL) IS NULL, coalesce(upper(NULL), 'd')
----
SELECT id, v FROM s WHERE v SIMILAR TO '.*[0-9].*' ORDER BY id
----
SELECT to_hex('AB'::BLOB), to_binary('A')
----
SELECT parse_dirname('/a/b/c.txt'), parse_filename('/a/b/c.txt'), parse_path('/a/b/c.txt')
----
SELECT parse_filename('/a/b/c.txt', true), parse_dirpath('/a/b/c.txt')
----
SELECT like_escape('a%c', 'a$%c', '$'), ilike_escape('A%C', 'a$%c', '$')
----
SELECT contains('abc', ''), position('' IN 'abc'), strpos('', 'a')
----
SELECT id, v, rank() OVER (ORDER BY length(v) DESC NULLS LAST, id) FROM s ORDER BY id
----
SELECT list_sort(string_split('pear apple fig banana', ' '))
----
SELECT v, count(*) FROM (VALUES ('a'), ('A'), ('b'), ('a')) t(v) GROUP BY v ORDER BY v
----
SELECT max(v), min(v) FROM (VALUES ('apple'), ('Banana'), ('cherry')) t(v)
----
SELECT concat(v, NULL) FROM s WHERE id = 1
----
SELECT id, regexp_matches(v, '^[A-Z]') FROM s ORDER BY id
----
SELECT sha256(''), md5('')
----
SELECT 'duck' COLLATE nocase IN ('DUCK', 'goose')
----
SELECT repeat('abc', -1)
----
SELECT lpad('abc', -1, 'x')
----
SELECT substring('abc', 1, -1)
----
SELECT unicode(''), unicode(NULL)
----
SELECT split('a.b.c', '.'), string_split('abc', '')
----
SELECT string_split(NULL, ','), string_split('abc', NULL)
