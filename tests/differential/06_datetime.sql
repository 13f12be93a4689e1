-- Dates, times, timestamps and intervals (no time zones: see 07_timestamptz.sql).
----
CREATE TABLE ev(id INTEGER, d DATE, t TIME, ts TIMESTAMP, iv INTERVAL);
INSERT INTO ev VALUES
 (1, DATE '2024-01-31', TIME '08:30:00', TIMESTAMP '2024-01-31 08:30:00', INTERVAL 1 DAY),
 (2, DATE '2024-02-29', TIME '23:59:59.5', TIMESTAMP '2024-02-29 23:59:59.5', INTERVAL 1 MONTH),
 (3, DATE '2023-12-31', TIME '00:00:00', TIMESTAMP '2023-12-31 00:00:00', INTERVAL '2 hours 30 minutes'),
 (4, NULL, NULL, NULL, NULL),
 (5, DATE '1999-07-04', TIME '12:00:00.000001', TIMESTAMP '1999-07-04 12:00:00.000001', INTERVAL '-3 days')
----
SELECT * FROM ev ORDER BY id
----
SELECT id, d + 1, d - 1, d + INTERVAL 1 MONTH FROM ev ORDER BY id
----
SELECT id, ts + iv, ts - iv, d + iv FROM ev ORDER BY id
----
SELECT id, year(d), month(d), day(d), dayofweek(d), dayofyear(d), week(d), quarter(d) FROM ev ORDER BY id
----
SELECT id, isodow(d), isoyear(d), weekofyear(d), yearweek(d), dayname(d), monthname(d) FROM ev ORDER BY id
----
SELECT id, hour(ts), minute(ts), second(ts), millisecond(ts), microsecond(ts), epoch(ts) FROM ev ORDER BY id
----
SELECT id, date_part('hour', t), extract(minute FROM t), date_part(['hour', 'minute'], t) FROM ev ORDER BY id
----
SELECT id, date_trunc('month', d), date_trunc('hour', ts), date_trunc('week', ts), date_trunc('quarter', ts) FROM ev ORDER BY id
----
SELECT id, last_day(d), date_diff('day', d, DATE '2024-12-25'), datediff('month', d, DATE '2024-12-25') FROM ev ORDER BY id
----
SELECT date_sub('year', DATE '2000-06-15', DATE '2024-06-14'), date_diff('year', DATE '2000-06-15', DATE '2024-06-14')
----
SELECT age(TIMESTAMP '2024-03-01', TIMESTAMP '2023-01-15 12:00:00')
----
SELECT DATE '2024-03-01' - DATE '2024-02-01', TIMESTAMP '2024-03-01' - TIMESTAMP '2024-02-01 12:00:00'
----
SELECT typeof(DATE '2024-03-01' - DATE '2024-02-01'), typeof(TIMESTAMP '2024-03-01' - TIMESTAMP '2024-02-01')
----
SELECT DATE '2024-01-31' + INTERVAL 1 MONTH, DATE '2024-03-31' - INTERVAL 1 MONTH
----
SELECT TIMESTAMP '2024-01-01 00:00:00' + INTERVAL 36 HOUR, TIME '23:00:00' + INTERVAL 2 HOUR
----
SELECT make_date(2024, 2, 29), make_time(13, 14, 15.5), make_timestamp(2024, 1, 2, 3, 4, 5.25)
----
SELECT make_date(2023, 2, 29)
----
SELECT make_timestamp(1704164645000000), to_timestamp(1704164645), epoch_ms(1704164645123)
----
SELECT typeof(to_timestamp(0)), typeof(make_timestamp(0))
----
SELECT strftime(TIMESTAMP '2024-01-02 03:04:05.678', '%Y/%m/%d %H:%M:%S.%f %a %b %j')
----
SELECT strftime(DATE '2024-07-04', '%A, %B %-d, %Y'), strftime(TIMESTAMP '2024-07-04 15:00', '%I %p')
----
SELECT strptime('2024-02-29 13:14:15', '%Y-%m-%d %H:%M:%S'), strptime('04/07/2024', '%d/%m/%Y')
----
SELECT strptime('garbage', '%Y-%m-%d')
----
SELECT try_strptime('garbage', '%Y-%m-%d'), try_strptime('2024-01-01', ['%d/%m/%Y', '%Y-%m-%d'])
----
SELECT generate_series(DATE '2024-01-01', DATE '2024-01-05', INTERVAL 1 DAY)
----
SELECT * FROM generate_series(TIMESTAMP '2024-01-01', TIMESTAMP '2024-01-01 03:00', INTERVAL 1 HOUR) t(ts) ORDER BY ts
----
SELECT * FROM range(DATE '2024-01-01', DATE '2024-06-01', INTERVAL 1 MONTH) t(m) ORDER BY m
----
SELECT time_bucket(INTERVAL 15 MINUTE, TIMESTAMP '2024-01-01 10:37:00'), time_bucket(INTERVAL 1 WEEK, DATE '2024-01-10')
----
SELECT to_days(5), to_hours(2), to_minutes(90), to_seconds(3.5), to_months(14), to_years(2)
----
SELECT INTERVAL 1 DAY * 3, INTERVAL 90 MINUTE / 2, INTERVAL 1 HOUR + INTERVAL 30 MINUTE
----
SELECT INTERVAL 30 DAY = INTERVAL 1 MONTH, INTERVAL 24 HOUR = INTERVAL 1 DAY
----
SELECT INTERVAL 25 HOUR > INTERVAL 1 DAY, INTERVAL 1 MONTH > INTERVAL 29 DAY
----
SELECT datepart('epoch', INTERVAL 1 DAY), extract(day FROM INTERVAL '40 days'), extract(month FROM INTERVAL '14 months')
----
SELECT id, iv, to_json(iv)::VARCHAR FROM ev WHERE iv IS NOT NULL ORDER BY id
----
SELECT id, d::VARCHAR, ts::VARCHAR, t::VARCHAR FROM ev ORDER BY id
----
SELECT id FROM ev WHERE d BETWEEN DATE '2024-01-01' AND DATE '2024-12-31' ORDER BY id
----
SELECT id FROM ev WHERE ts > '2024-02-01' ORDER BY id
----
SELECT min(d), max(d), min(ts), max(t), count(iv) FROM ev
----
SELECT date_trunc('year', d) y, count(*) FROM ev GROUP BY y ORDER BY y NULLS LAST
----
SELECT id, d > ts, d = ts::DATE FROM ev ORDER BY id
----
SELECT DATE '2024-01-01' = TIMESTAMP '2024-01-01 00:00:00'
----
SELECT 'infinity'::DATE > DATE '9999-01-01', isinf('infinity'::DATE), isfinite(DATE '2024-01-01')
----
SELECT 'infinity'::TIMESTAMP + INTERVAL 1 DAY
----
SELECT year('infinity'::DATE)
----
SELECT DATE '2024-01-01' + 2147483647
----
SELECT TIMESTAMP_NS '2024-01-01 00:00:00.123456789' + INTERVAL 1 SECOND
----
SELECT TIMESTAMP_NS '2024-01-01 00:00:00.123456789'::TIMESTAMP, TIMESTAMP_NS '2024-01-01 00:00:00.123456789'::VARCHAR
----
SELECT TIMESTAMP_MS '2024-01-01 00:00:00.123' + INTERVAL 1 DAY, typeof(TIMESTAMP_MS '2024-01-01' + INTERVAL 1 DAY)
----
SELECT TIMESTAMP_S '2024-01-01 10:00:00'::DATE, TIMESTAMP_S '2024-01-01 10:00:00'::TIMESTAMP
----
SELECT epoch_ns(TIMESTAMP_NS '2024-01-01 00:00:00.000000001'), epoch_us(TIMESTAMP '2024-01-01'), epoch_ms(TIMESTAMP '2024-01-01')
----
SELECT make_timestamp_ns(1704067200000000001)
----
SELECT TIME '10:00' - TIME '08:30', TIME '10:00' > TIME '9:59:59'
----
SELECT '10:00'::TIME - INTERVAL 11 HOUR
----
SELECT TIMETZ '10:00:00+02', typeof(TIMETZ '10:00:00+02')
----
SELECT '2024-01-02'::DATE::VARCHAR || 'T', CAST(DATE '2024-01-02' AS TIMESTAMP_NS)
----
SELECT dayofmonth(DATE '2024-02-29'), era(DATE '2024-02-29'), decade(DATE '2024-02-29'), century(DATE '2024-02-29'), millennium(DATE '2024-02-29')
----
SELECT julian(DATE '2024-01-01'), yearweek(DATE '2024-12-30'), week(DATE '2024-12-30'), isoyear(DATE '2024-12-30')
----
SELECT date_part('dow', DATE '2024-06-09'), date_part('isodow', DATE '2024-06-09')
----
SELECT struct_pack(y := year(d), m := month(d)) FROM ev WHERE id = 1
----
SELECT date_part(['year', 'month', 'day'], DATE '2024-06-09')
----
SELECT list_transform([1, 2, 3], x -> DATE '2024-01-31' + to_months(x))
----
SELECT d, count(*) OVER (ORDER BY d RANGE BETWEEN INTERVAL 60 DAY PRECEDING AND CURRENT ROW) FROM ev WHERE d IS NOT NULL ORDER BY d
----
SELECT ts FROM ev WHERE ts IS NOT NULL ORDER BY ts DESC LIMIT 2
----
SELECT d FROM ev ORDER BY d NULLS FIRST
----
SELECT INTERVAL '1' YEAR, INTERVAL '1-2' YEAR TO MONTH
----
SELECT INTERVAL '2 weeks', INTERVAL '1 decade', INTERVAL '1 century'
----
SELECT '1 day 2 hours'::INTERVAL + '3 days'::INTERVAL
----
SELECT 'nonsense'::INTERVAL
----
SELECT DATE 'not a date'
----
SELECT TIMESTAMP '2024-01-01 10:00:00.1234567'
----
SELECT '2024-01-01 10:00:00.1234567'::TIMESTAMP_NS
----
SELECT current_date IS NOT NULL, current_timestamp IS NOT NULL, now() IS NOT NULL, today() IS NOT NULL
----
SELECT typeof(current_date), typeof(get_current_time()), typeof(get_current_timestamp())
----
SELECT date_add(DATE '2024-01-31', INTERVAL 1 MONTH), date_add(DATE '2024-01-31', INTERVAL 30 DAY)
----
SELECT monthname(DATE '2024-09-01'), dayname(TIMESTAMP '2024-09-01 10:00')
----
SELECT id, strftime(d, '%d.%m.%Y') FROM ev ORDER BY id
----
SELECT min(ts)::DATE, max(ts) - min(ts) FROM ev
----
SELECT count(DISTINCT date_trunc('month', ts)) FROM ev
----
SELECT TIMESTAMP '2024-01-01' + to_microseconds(1), TIMESTAMP '2024-01-01' + to_milliseconds(1.5)
----
SELECT to_weeks(2), to_centuries(1), to_decades(1), to_millennia(1)
----
SELECT (TIMESTAMP '2024-06-01 12:00' - TIMESTAMP '2024-01-01')::VARCHAR
----
SELECT epoch(INTERVAL '1 month'), epoch(TIME '01:00:00'), epoch(DATE '1970-01-02')
----
SELECT date_diff('hour', TIMESTAMP '2024-01-01 23:59', TIMESTAMP '2024-01-02 00:01'), date_sub('hour', TIMESTAMP '2024-01-01 23:59', TIMESTAMP '2024-01-02 00:01')
----
SELECT date_diff('microseconds', TIME '00:00', TIME '00:00:01'), date_diff('millennium', DATE '0999-01-01', DATE '3001-01-01')
----
SELECT ts::TIMESTAMP_S, ts::TIMESTAMP_MS, ts::TIMESTAMP_NS FROM ev WHERE id = 5
