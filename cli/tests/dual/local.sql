-- Local-side fixture for the dual-execution differential tests.
-- Runs in the default (local) database. Fully deterministic: every value is
-- derived from range() with modular arithmetic (no random(), no hash(), no
-- clock functions), so it is stable across DuckDB versions.

-- 6 regions. 'ANZ' is used by no customer; customers also use 'XX', which is
-- not in this table, and some customers have a NULL region.
CREATE TABLE regions (code VARCHAR, label VARCHAR, tax_rate DECIMAL(4,3));
INSERT INTO regions VALUES
    ('NA',    'North America',              0.070),
    ('EU',    'Europe',                     0.200),
    ('APAC',  'Asia Pacific',               0.100),
    ('LATAM', 'Latin America',              0.150),
    ('MEA',   'Middle East and Africa',     0.050),
    ('ANZ',   'Australia and New Zealand',  0.125);

-- 2,000 customers, ids 1..2000.
--   region: NULL when id % 17 = 0, 'XX' (not in regions) when id % 23 = 0,
--           otherwise one of NA/EU/APAC/LATAM/MEA.
--   credit: NULL when id % 11 = 0, otherwise 0.00 .. 999.99.
--   names:  mixed-case first names so LIKE / ILIKE differ.
CREATE TABLE customers AS
SELECT
    CAST(i AS INTEGER) AS id,
    CAST(['Alice', 'bob', 'Carol', 'dave', 'Eve', 'Frank', 'grace', 'Heidi', 'Ivan', 'judy'][(i % 10) + 1]
         || ' '
         || ['Smith', 'Jones', 'Lee', 'Brown', 'Garcia', 'Miller', 'Davis', 'Wilson'][((i * 7) % 8) + 1]
         || ' #' || i AS VARCHAR) AS name,
    CAST(CASE
        WHEN i % 17 = 0 THEN NULL
        WHEN i % 23 = 0 THEN 'XX'
        ELSE ['NA', 'EU', 'APAC', 'LATAM', 'MEA'][((i * 31) % 5) + 1]
    END AS VARCHAR) AS region,
    CAST(DATE '2022-01-01' + CAST((i * 37) % 1200 AS INTEGER) AS DATE) AS signup,
    CAST(CASE
        WHEN i % 11 = 0 THEN NULL
        ELSE ((i * 7919) % 100000) * 0.01
    END AS DECIMAL(10,2)) AS credit,
    CAST((i % 13 = 0) OR ((i * 7919) % 100000 >= 95000 AND i % 11 <> 0) AS BOOLEAN) AS vip
FROM range(1, 2001) t(i);

-- 60 monthly targets: every month of 2024 for NA, EU, APAC, LATAM and ANZ
-- (no targets for MEA or XX).
CREATE TABLE targets AS
SELECT
    CAST(DATE '2024-01-01' + to_months(CAST(m AS INTEGER)) AS DATE) AS month,
    CAST(['NA', 'EU', 'APAC', 'LATAM', 'ANZ'][r + 1] AS VARCHAR) AS region,
    CAST(20000 + ((m * 131 + r * 977) % 5000) * 1.25 AS DECIMAL(12,2)) AS goal
FROM range(0, 12) mt(m), range(0, 5) rt(r);
