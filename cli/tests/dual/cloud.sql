-- Cloud-side fixture for the dual-execution differential tests.
-- Runs with the cloud database as the CURRENT database, so every table name is
-- unqualified. Fully deterministic (range() + integer arithmetic only; a
-- hand-written integer hash decorrelates columns that would otherwise all be
-- linear in i, e.g. so that one customer's orders land on unrelated days).

-- 50,000 orders, ids 1..50000, dated 2023-01-01 .. 2025-12-31.
--   customer_id: NULL when id % 50 = 0; otherwise derived from `base`
--                (20% of orders go to heavy buyers 1..150, the rest to
--                1..2100), so 2001..2100 are customers that do not exist
--                locally; customers whose id % 40 = 7 never order (their
--                orders are redirected to ids 3007.. which do not exist
--                either). 87 local customers have no orders at all (the
--                id % 40 = 7 ones, plus ids > 150 with id % 50 = 1, whose
--                only source rows are the NULL ones).
--   status:      NULL when id % 73 = 0.
--   qty:         NULL when id % 61 = 0.
CREATE TABLE orders AS
SELECT
    CAST(i AS BIGINT) AS id,
    CAST(CASE
        WHEN i % 50 = 0 THEN NULL
        WHEN base % 40 = 7 THEN base + 3000
        ELSE base
    END AS INTEGER) AS customer_id,
    CAST(1.00 + ((i * 104729) % 100000) * 0.01 AS DECIMAL(12,2)) AS amount,
    CAST(CASE
        WHEN i % 73 = 0 THEN NULL
        WHEN (h >> 8) % 20 < 2 THEN 'pending'
        WHEN (h >> 8) % 20 < 7 THEN 'shipped'
        WHEN (h >> 8) % 20 < 16 THEN 'delivered'
        WHEN (h >> 8) % 20 < 18 THEN 'cancelled'
        ELSE 'returned'
    END AS VARCHAR) AS status,
    CAST(DATE '2023-01-01' + CAST(h % 1096 AS INTEGER) AS DATE) AS ordered_at,
    CAST(CASE WHEN i % 61 = 0 THEN NULL ELSE 1 + (h >> 20) % 10 END AS INTEGER) AS qty
FROM (
    -- base: 20% of orders go to customers 1..150 (heavy buyers), the rest are
    -- spread over 1..2100.
    SELECT i, h,
           CASE WHEN (h >> 12) % 10 < 2 THEN (h >> 16) % 150 + 1 ELSE (i * 7919) % 2100 + 1 END AS base
    FROM (
        -- h: a 32-bit integer hash of i (murmur3-style finalizer, computed in
        -- BIGINT without overflow), so dates/status/qty are not linear in i.
        SELECT i, xor(h2, h2 >> 16) AS h
        FROM (
            SELECT i, (xor(h1, h1 >> 16) * 73244475) % 4294967296 AS h2
            FROM (SELECT i, (i * 2654435761) % 4294967296 AS h1 FROM range(1, 50001) t(i)) a
        ) b
    ) c
) d;

-- 500 products, ids 1..500. category NULL when id % 41 = 0, price NULL when
-- id % 83 = 0.
CREATE TABLE products AS
SELECT
    CAST(i AS INTEGER) AS id,
    CAST(['Widget', 'gadget', 'Gizmo', 'doohickey', 'Sprocket', 'bolt', 'Lamp', 'chair'][(i % 8) + 1]
         || ' ' || ['Pro', 'Mini', 'Max', 'Lite', 'Plus'][((i * 3) % 5) + 1]
         || ' ' || lpad(CAST(i AS VARCHAR), 3, '0') AS VARCHAR) AS name,
    CAST(CASE
        WHEN i % 41 = 0 THEN NULL
        ELSE ['Electronics', 'Books', 'Garden', 'Toys', 'Grocery', 'Apparel'][((i * 7) % 6) + 1]
    END AS VARCHAR) AS category,
    CAST(CASE WHEN i % 83 = 0 THEN NULL ELSE 0.99 + ((i * 379) % 20000) * 0.01 END AS DECIMAL(10,2)) AS price
FROM range(1, 501) t(i);

-- 120,000 order items: orders 1..20000 have 3 items, the others 2.
-- (order_id, product_id) is unique. product_id ranges over 1..510, so ids
-- 501..510 have no product row. discount is NULL when k % 9 = 0.
CREATE TABLE order_items AS
SELECT
    CAST((k % 50000) + 1 AS BIGINT) AS order_id,
    CAST(((k * 37 + (k // 50000) * 11) % 510) + 1 AS INTEGER) AS product_id,
    CAST(1 + (k * 7) % 5 AS INTEGER) AS quantity,
    CASE WHEN k % 9 = 0 THEN NULL ELSE CAST((k * 17) % 30 AS DOUBLE) / 100 END AS discount
FROM range(0, 120000) t(k);
