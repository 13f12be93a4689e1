-- Arithmetic, math functions, overflow, integer division, decimals.
----
SELECT 7 / 2, 7 // 2, 7 % 3, -7 % 3, -7 // 2
----
SELECT 7.0 / 2, 1 / 0, 1 // 0, 1 % 0
----
SELECT 1.0 / 0.0, -1.0 / 0.0, 0.0 / 0.0
----
SELECT 1::DOUBLE / 0, -1::DOUBLE / 0
----
SELECT 2147483647::INTEGER + 1
----
SELECT 2147483647::INTEGER + 1::BIGINT
----
SELECT 9223372036854775807::BIGINT + 1
----
SELECT -9223372036854775808::BIGINT - 1
----
SELECT 127::TINYINT + 1::TINYINT
----
SELECT 200::UTINYINT + 100::UTINYINT
----
SELECT 0::UINTEGER - 1::UINTEGER
----
SELECT 3037000500::BIGINT * 3037000500::BIGINT
----
SELECT 170141183460469231731687303715884105727::HUGEINT + 1
----
SELECT abs(-5), abs(-5.5), abs(-9223372036854775807::BIGINT)
----
SELECT abs(-9223372036854775808::BIGINT)
----
SELECT ceil(1.2), ceil(-1.2), floor(1.8), floor(-1.8), ceiling(2.0001)
----
SELECT round(2.5), round(-2.5), round(3.14159, 2), round(1234.5, -2), round(0.5::DOUBLE)
----
SELECT round(1.005::DOUBLE, 2), round(2.675::DOUBLE, 2), round_even(2.5, 0), round_even(3.5, 0)
----
SELECT trunc(3.99), trunc(-3.99), trunc(123.456, 1)
----
SELECT sign(-3), sign(0), sign(2.5), sign(-0.0)
----
SELECT sqrt(16), sqrt(2), cbrt(27), pow(2, 10), power(2.0, 0.5), 2 ** 3
----
SELECT sqrt(-1)
----
SELECT ln(1), ln(exp(1)), log(100), log10(1000), log2(8), log(2, 64)
----
SELECT ln(0)
----
SELECT ln(-1)
----
SELECT exp(0), exp(1), exp(710)
----
SELECT pi(), sin(pi() / 2), cos(0), tan(0), asin(1), acos(1), atan(1), atan2(1, 1)
----
SELECT degrees(pi()), radians(180), cot(1), sinh(1), cosh(0), tanh(0)
----
SELECT asin(2)
----
SELECT factorial(5), factorial(20), 5!
----
SELECT factorial(21)
----
SELECT gcd(12, 18), lcm(4, 6), gcd(0, 0), lcm(0, 5)
----
SELECT even(3), even(-3.5), odd(2)
----
SELECT isnan('nan'::DOUBLE), isinf('inf'::DOUBLE), isfinite(1.0), isnan(1.0)
----
SELECT 'nan'::DOUBLE = 'nan'::DOUBLE, 'nan'::DOUBLE > 1e308, 'inf'::DOUBLE > 'nan'::DOUBLE
----
SELECT x FROM (VALUES (1.0::DOUBLE), ('nan'::DOUBLE), ('-inf'::DOUBLE), (0.0::DOUBLE), ('inf'::DOUBLE)) t(x) ORDER BY x
----
SELECT max(x), min(x) FROM (VALUES (1.0::DOUBLE), ('nan'::DOUBLE), (2.0::DOUBLE)) t(x)
----
SELECT 5 & 3, 5 | 3, xor(5, 3), ~5, 1 << 4, 256 >> 2
----
SELECT bit_count(255), bit_count(-1::BIGINT)
----
SELECT 1::TINYINT << 7
----
SELECT 1 << 64
----
SELECT 1.1 + 2.2, 1.1::DOUBLE + 2.2::DOUBLE, 0.1::FLOAT + 0.2::FLOAT
----
SELECT typeof(1.1 + 2.2), typeof(1.10 * 2.2), typeof(1.5 / 2)
----
SELECT 1.23::DECIMAL(5,2) * 4.5::DECIMAL(3,1), 10.00::DECIMAL(4,2) / 3
----
SELECT 99999999999999999.99::DECIMAL(19,2) * 10
----
SELECT 9999999999999999999999999999999999999::DECIMAL(38,0) + 1
----
SELECT 99999999999999999999999999999999999999::DECIMAL(38,0) + 1
----
SELECT sum(x) FROM (VALUES (0.1), (0.2), (0.3)) t(x)
----
SELECT sum(x::DOUBLE) FROM (VALUES (0.1), (0.2), (0.3)) t(x)
----
SELECT avg(x), typeof(avg(x)) FROM (VALUES (1), (2), (4)) t(x)
----
SELECT avg(x), typeof(avg(x)) FROM (VALUES (1.5::DECIMAL(4,1)), (2.0::DECIMAL(4,1))) t(x)
----
SELECT sum(x), typeof(sum(x)) FROM (VALUES (9223372036854775807::BIGINT), (1::BIGINT)) t(x)
----
SELECT sum(x::INTEGER), typeof(sum(x::INTEGER)), typeof(sum(x::TINYINT)), typeof(sum(x::DOUBLE)) FROM (VALUES (1)) t(x)
----
SELECT sum(i) FROM range(1000001) t(i)
----
SELECT sum(i::HUGEINT * i) FROM range(100000) t(i)
----
SELECT 10 % 3.5, -10 % 3.5, fmod(10, 3.5), fmod(-10, 3)
----
SELECT mod(10, 3), 10::DOUBLE % 0
----
SELECT greatest(1, 2.5, 2), least(1, '0', 3), greatest('b', 'a', 'c')
----
SELECT greatest(DATE '2024-01-01', DATE '2023-01-01')
----
SELECT bit_and(x), bit_or(x), bit_xor(x) FROM (VALUES (12), (10), (6)) t(x)
----
SELECT 1 + 2 * 3 - 4 / 2, (1 + 2) * 3, -2 ^ 2, (-2) ^ 2
----
SELECT 2 ^ 0.5, 4 ^ -1, 0 ^ 0
----
SELECT 10::TINYINT * 20::TINYINT
----
SELECT typeof(10::TINYINT * 20::TINYINT), typeof(1::UTINYINT + 1::TINYINT)
----
SELECT -(-128::TINYINT)
----
SELECT (-128)::TINYINT * -1
----
SELECT 5 // 0.0, 5.0 // 2
----
SELECT random() BETWEEN 0 AND 1
----
SELECT setseed(0.5); SELECT random() < 2
----
SELECT round(x, 3), round(x * 100) / 100 FROM (VALUES (1.23456::DOUBLE), (-9.87654::DOUBLE)) t(x) ORDER BY x
----
SELECT floor(-0.5), ceil(-0.5)
----
SELECT 1e308 * 10
----
SELECT 1e308::DOUBLE * 10::DOUBLE
----
SELECT 3.4e38::FLOAT * 10::FLOAT
----
SELECT 12345678901234567890::UBIGINT, 12345678901234567890 AS lit, typeof(12345678901234567890)
----
SELECT typeof(170141183460469231731687303715884105728)
----
SELECT 1::BIGINT / 3, 1::BIGINT // 3, typeof(1::BIGINT / 3), typeof(1::BIGINT // 3)
----
SELECT SET_BIT('0110'::BIT, 0, 1), get_bit('0110'::BIT, 1), bit_length('0110'::BIT)
----
SELECT '1010'::BIT & '0110'::BIT, '1010'::BIT | '0110'::BIT, ~'1010'::BIT
----
SELECT x, x::INTEGER FROM (VALUES (0.5), (1.5), (2.5), (-0.5), (-1.5)) t(x) ORDER BY x
----
SELECT x, x::BIGINT FROM (VALUES (0.5::DOUBLE), (1.5::DOUBLE), (2.5::DOUBLE), (-1.5::DOUBLE)) t(x) ORDER BY x
----
SELECT count(*), sum(i), avg(i), stddev_samp(i), var_pop(i) FROM range(1, 11) t(i)
----
SELECT width_bucket(5.35, 0.024, 10.06, 5)
----
SELECT 0.1 + 0.2 = 0.3, 0.1::DOUBLE + 0.2::DOUBLE = 0.3::DOUBLE
----
SELECT 1::DOUBLE / 3 * 3 = 1
----
SELECT 1e-320::DOUBLE, 5e-324::DOUBLE, 2.2250738585072014e-308::DOUBLE
----
SELECT 1.7976931348623157e308::DOUBLE
----
SELECT 16777217::FLOAT, 16777217::FLOAT::INTEGER
----
SELECT 123.456::FLOAT, 0.1::FLOAT
----
SELECT list_sum([1, 2, 3]), list_product([1, 2, 3, 4]), list_avg([1, 2])
----
SELECT x, x % 2 = 0 AS even FROM range(6) t(x) ORDER BY x
----
SELECT i, i * 1.5 FROM range(4) t(i) ORDER BY i
