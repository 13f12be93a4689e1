-- name: local_customers_by_region
SELECT region, count(*) AS n, count(credit) AS n_credit, sum(credit) AS total_credit,
       min(signup) AS first_signup, max(signup) AS last_signup
FROM customers
GROUP BY region;

-- name: local_regions_left_join_customers
SELECT r.code, r.label, count(c.id) AS n_customers, sum(c.credit) AS credit
FROM regions r
LEFT JOIN customers c ON c.region = r.code
GROUP BY r.code, r.label;

-- name: local_regions_full_outer_customers
SELECT r.code, c.region, count(*) AS n, count(c.id) AS n_customers
FROM regions r
FULL OUTER JOIN customers c ON c.region = r.code
GROUP BY r.code, c.region;

-- name: local_customers_unknown_region_not_exists
SELECT coalesce(c.region, '<null>') AS region, count(*) AS n
FROM customers c
WHERE NOT EXISTS (SELECT 1 FROM regions r WHERE r.code = c.region)
GROUP BY 1;

-- name: local_targets_rollup
SELECT region, extract(quarter FROM month) AS q, sum(goal) AS goal, grouping(region, q) AS g
FROM targets
GROUP BY ROLLUP (region, q)
ORDER BY region NULLS LAST, q NULLS LAST;

-- name: local_top_credit_per_region_qualify
SELECT region, id, name, credit,
       rank() OVER (PARTITION BY region ORDER BY credit DESC, id) AS rnk
FROM customers
WHERE credit IS NOT NULL
QUALIFY rnk <= 3
ORDER BY region NULLS FIRST, rnk, id;

-- name: local_name_like_ilike
SELECT count(*) FILTER (WHERE name LIKE 'alice%') AS like_lower,
       count(*) FILTER (WHERE name LIKE 'Alice%') AS like_upper,
       count(*) FILTER (WHERE name ILIKE 'alice%') AS ilike_any,
       count(*) FILTER (WHERE name ILIKE '%SMITH%') AS ilike_smith,
       count(*) FILTER (WHERE upper(substr(name, 1, 3)) = 'BOB') AS bob_prefix
FROM customers;

-- name: local_signups_per_year_month_vip
SELECT extract(year FROM signup) AS yr, CAST(date_trunc('month', signup) AS DATE) AS mon,
       count(*) AS n, count(*) FILTER (WHERE vip) AS n_vip
FROM customers
WHERE signup BETWEEN DATE '2023-01-01' AND DATE '2023-12-31'
GROUP BY ALL
ORDER BY mon;

-- name: local_targets_running_goal
SELECT region, month, goal,
       sum(goal) OVER (PARTITION BY region ORDER BY month ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS ytd,
       goal - lag(goal) OVER (PARTITION BY region ORDER BY month) AS delta
FROM targets
ORDER BY region, month;

-- name: local_targets_with_tax_join_using
SELECT t.region, r.label, round(sum(t.goal * (1 + r.tax_rate)), 2) AS goal_with_tax
FROM targets t
JOIN (SELECT code AS region, label, tax_rate FROM regions) r USING (region)
GROUP BY t.region, r.label;

-- name: cloud_orders_by_status
SELECT status, count(*) AS n, count(qty) AS n_qty, sum(amount) AS total,
       min(amount) AS min_amount, max(amount) AS max_amount, round(avg(amount), 4) AS avg_amount
FROM cloud.orders
GROUP BY status;

-- name: cloud_monthly_revenue_2024
SELECT CAST(date_trunc('month', ordered_at) AS DATE) AS mon, count(*) AS n, sum(amount) AS revenue
FROM cloud.main.orders
WHERE ordered_at >= DATE '2024-01-01' AND ordered_at < DATE '2025-01-01'
GROUP BY mon
ORDER BY mon;

-- name: cloud_products_by_category
SELECT category, count(*) AS n, count(price) AS n_priced, min(price) AS min_price,
       max(price) AS max_price, round(avg(price), 4) AS avg_price
FROM cloud.products
GROUP BY category;

-- name: cloud_top_products_by_quantity
SELECT oi.product_id, sum(oi.quantity) AS units, count(*) AS lines
FROM cloud.order_items oi
GROUP BY oi.product_id
ORDER BY units DESC, oi.product_id
LIMIT 20;

-- name: cloud_items_without_product_anti
SELECT oi.product_id, count(*) AS n
FROM cloud.main.order_items oi
ANTI JOIN cloud.main.products p ON p.id = oi.product_id
GROUP BY oi.product_id;

-- name: cloud_category_grouping_sets
SELECT p.category, o.status, count(*) AS lines, sum(oi.quantity) AS units
FROM cloud.order_items oi
JOIN cloud.products p ON p.id = oi.product_id
JOIN cloud.orders o ON o.id = oi.order_id
GROUP BY GROUPING SETS ((p.category), (o.status), ());

-- name: cloud_only_cte_order_sizes
WITH sized AS (
    SELECT oi.order_id, count(*) AS n_items, sum(oi.quantity) AS units
    FROM cloud.order_items oi
    GROUP BY oi.order_id
)
SELECT s.n_items, o.status, count(*) AS n_orders, sum(s.units) AS units, sum(o.amount) AS amount
FROM sized s
JOIN cloud.orders o ON o.id = s.order_id
GROUP BY s.n_items, o.status;

-- name: cloud_distinct_status_year
SELECT DISTINCT extract(year FROM ordered_at) AS yr, status
FROM cloud.orders
WHERE status IS NOT NULL;

-- name: cloud_discounted_revenue_by_category
SELECT p.category,
       sum(oi.quantity * p.price * (1 - CAST(coalesce(oi.discount, 0) AS DECIMAL(4,2)))) AS net,
       round(avg(oi.discount), 4) AS avg_discount,
       round(sum(oi.discount), 4) AS sum_discount,
       sum(oi.quantity * p.price) AS gross,
       count(*) FILTER (WHERE oi.discount IS NULL) AS no_discount
FROM cloud.main.order_items oi
JOIN cloud.main.products p ON p.id = oi.product_id
GROUP BY p.category;

-- name: cloud_orders_amount_buckets_case
SELECT CASE
           WHEN amount < 100 THEN 'small'
           WHEN amount < 500 THEN 'medium'
           WHEN amount < 900 THEN 'large'
           ELSE 'huge'
       END AS bucket,
       count(*) AS n, sum(amount) AS total
FROM cloud.orders
GROUP BY bucket;

-- name: mixed_inner_join_region_revenue
SELECT c.region, count(*) AS n_orders, sum(o.amount) AS revenue
FROM customers c
JOIN cloud.orders o ON o.customer_id = c.id
GROUP BY c.region;

-- name: mixed_left_join_customer_order_counts
SELECT c.id, c.name, count(o.id) AS n_orders, coalesce(sum(o.amount), 0) AS spent
FROM customers c
LEFT JOIN cloud.orders o ON o.customer_id = c.id
WHERE c.id <= 300
GROUP BY c.id, c.name;

-- name: mixed_customers_without_orders_left_join_is_null
SELECT c.id, c.region, c.signup
FROM customers c
LEFT JOIN cloud.main.orders o ON o.customer_id = c.id
WHERE o.id IS NULL;

-- name: mixed_right_join_orphan_orders
SELECT o.customer_id IS NULL AS null_customer, c.id IS NULL AS no_match,
       count(*) AS n, sum(o.amount) AS amount
FROM customers c
RIGHT JOIN cloud.orders o ON o.customer_id = c.id
GROUP BY ALL;

-- name: mixed_full_outer_customer_totals
SELECT CASE
           WHEN c.id IS NULL THEN 'orders_only'
           WHEN t.customer_id IS NULL THEN 'customer_only'
           ELSE 'both'
       END AS side,
       count(*) AS n, sum(t.total) AS total, count(c.credit) AS with_credit
FROM customers c
FULL OUTER JOIN (
    SELECT customer_id, sum(amount) AS total
    FROM cloud.orders
    GROUP BY customer_id
) t ON t.customer_id = c.id
GROUP BY side;

-- name: mixed_cross_join_regions_statuses
SELECT r.code, s.status, s.n
FROM regions r
CROSS JOIN (SELECT status, count(*) AS n FROM cloud.orders WHERE status IS NOT NULL GROUP BY status) s
ORDER BY r.code, s.status;

-- name: mixed_semi_in_subquery
SELECT c.region, count(*) AS n
FROM customers c
WHERE c.id IN (SELECT o.customer_id FROM cloud.orders o WHERE o.amount > 995 AND o.status = 'returned')
GROUP BY c.region;

-- name: mixed_exists_correlated
SELECT c.id, c.name
FROM customers c
WHERE c.vip
  AND EXISTS (SELECT 1 FROM cloud.orders o
              WHERE o.customer_id = c.id AND o.status = 'cancelled' AND o.ordered_at >= DATE '2025-10-01');

-- name: mixed_not_in_with_nulls
SELECT count(*) AS n
FROM customers c
WHERE c.id NOT IN (SELECT o.customer_id FROM cloud.orders o);

-- name: mixed_not_in_non_null
SELECT c.id, c.region
FROM customers c
WHERE c.id NOT IN (SELECT o.customer_id FROM cloud.orders o WHERE o.customer_id IS NOT NULL);

-- name: mixed_not_exists
SELECT coalesce(c.region, 'none') AS region, count(*) AS n
FROM customers c
WHERE NOT EXISTS (SELECT 1 FROM cloud.main.orders o WHERE o.customer_id = c.id AND o.status = 'delivered')
GROUP BY 1;

-- name: mixed_anti_join_syntax
SELECT c.id, c.name, c.vip
FROM customers c
ANTI JOIN cloud.orders o ON o.customer_id = c.id;

-- name: mixed_semi_join_syntax
SELECT c.region, count(*) AS n, sum(c.credit) AS credit
FROM customers c
SEMI JOIN cloud.orders o ON o.customer_id = c.id AND o.amount >= 1000
GROUP BY c.region;

-- name: mixed_anti_join_orders_without_customer
SELECT o.customer_id IS NULL AS null_key, count(*) AS n, count(DISTINCT o.customer_id) AS ids
FROM cloud.orders o
ANTI JOIN customers c ON c.id = o.customer_id
GROUP BY 1;

-- name: mixed_join_using
SELECT c.region, o.status, count(*) AS n
FROM (SELECT id AS customer_id, region FROM customers) c
JOIN cloud.orders o USING (customer_id)
WHERE o.ordered_at >= DATE '2025-07-01'
GROUP BY c.region, o.status;

-- name: mixed_join_on_extra_predicates
SELECT c.region, count(*) AS n, sum(o.amount) AS amount
FROM customers c
JOIN cloud.orders o
  ON o.customer_id = c.id
 AND o.ordered_at >= c.signup
 AND o.status <> 'cancelled'
 AND o.amount > coalesce(c.credit, 0)
GROUP BY c.region;

-- name: mixed_multiway_region_category
SELECT r.code, p.category, count(*) AS lines, sum(oi.quantity) AS units,
       round(sum(oi.quantity * p.price * (1 + r.tax_rate)), 2) AS gross_with_tax
FROM customers c
JOIN regions r ON r.code = c.region
JOIN cloud.orders o ON o.customer_id = c.id
JOIN cloud.order_items oi ON oi.order_id = o.id
JOIN cloud.products p ON p.id = oi.product_id
WHERE o.ordered_at BETWEEN DATE '2024-01-01' AND DATE '2024-06-30'
GROUP BY r.code, p.category;

-- name: mixed_multiway_left_chain
SELECT c.vip, p.category IS NULL AS no_category, count(*) AS n, count(oi.order_id) AS items
FROM customers c
LEFT JOIN cloud.main.orders o ON o.customer_id = c.id AND o.status = 'pending'
LEFT JOIN cloud.main.order_items oi ON oi.order_id = o.id
LEFT JOIN cloud.main.products p ON p.id = oi.product_id
GROUP BY ALL;

-- name: mixed_cloud_self_join_consecutive_days
SELECT c.region, count(*) AS pairs
FROM cloud.orders o1
JOIN cloud.orders o2
  ON o2.customer_id = o1.customer_id
 AND o2.ordered_at BETWEEN o1.ordered_at + 1 AND o1.ordered_at + 3
JOIN customers c ON c.id = o1.customer_id
GROUP BY c.region;

-- name: mixed_cloud_self_join_same_day_vip
SELECT c.id, o1.ordered_at, o1.id AS first_order, o2.id AS second_order
FROM customers c
JOIN cloud.main.orders o1 ON o1.customer_id = c.id
JOIN cloud.main.orders o2 ON o2.customer_id = o1.customer_id AND o2.ordered_at = o1.ordered_at AND o2.id > o1.id
WHERE c.vip;

-- name: mixed_string_agg_ordered
SELECT c.id, c.name,
       string_agg(o.status, ',' ORDER BY o.ordered_at, o.id) AS statuses,
       string_agg(CAST(o.id AS VARCHAR), '|' ORDER BY o.id DESC) AS ids
FROM customers c
JOIN cloud.orders o ON o.customer_id = c.id
WHERE c.id <= 12
GROUP BY c.id, c.name;

-- name: mixed_rollup_region_status
SELECT c.region, o.status, count(*) AS n, sum(o.amount) AS amount, grouping(c.region, o.status) AS g
FROM customers c
JOIN cloud.orders o ON o.customer_id = c.id
GROUP BY ROLLUP (c.region, o.status);

-- name: mixed_grouping_sets_vip_year
SELECT c.vip, extract(year FROM o.ordered_at) AS yr, count(*) AS n, sum(o.amount) AS amount
FROM customers c
JOIN cloud.orders o ON o.customer_id = c.id
GROUP BY GROUPING SETS ((c.vip), (yr), (c.vip, yr));

-- name: mixed_having_heavy_customers
SELECT c.id, c.region, count(*) AS n, sum(o.amount) AS total
FROM customers c
JOIN cloud.orders o ON o.customer_id = c.id
GROUP BY c.id, c.region
HAVING count(*) >= 90 AND sum(o.amount) > 50000;

-- name: mixed_count_distinct
SELECT c.region, count(DISTINCT o.customer_id) AS buyers, count(DISTINCT o.status) AS statuses,
       count(DISTINCT extract(month FROM o.ordered_at)) AS months
FROM customers c
JOIN cloud.orders o ON o.customer_id = c.id
GROUP BY c.region;

-- name: mixed_correlated_scalar_subquery_select
SELECT c.id,
       (SELECT count(*) FROM cloud.orders o WHERE o.customer_id = c.id) AS n_orders,
       (SELECT max(o.amount) FROM cloud.orders o WHERE o.customer_id = c.id) AS max_amount
FROM customers c
WHERE c.id <= 40;

-- name: mixed_uncorrelated_scalar_subquery
SELECT c.id, c.credit
FROM customers c
WHERE c.credit > (SELECT max(amount) - 60 FROM cloud.orders);

-- name: mixed_correlated_subquery_where
SELECT o.id, o.customer_id, o.amount
FROM cloud.orders o
WHERE o.customer_id IN (SELECT id FROM customers WHERE id <= 20)
  AND o.amount > (SELECT 1.8 * avg(o2.amount) FROM cloud.orders o2 WHERE o2.customer_id = o.customer_id);

-- name: mixed_correlated_local_in_cloud
SELECT o.status, count(*) AS n
FROM cloud.orders o
WHERE o.amount < (SELECT c.credit FROM customers c WHERE c.id = o.customer_id)
GROUP BY o.status;

-- name: mixed_row_number_per_region
SELECT region, id, total, rn
FROM (
    SELECT c.region, c.id, sum(o.amount) AS total,
           row_number() OVER (PARTITION BY c.region ORDER BY sum(o.amount) DESC, c.id) AS rn
    FROM customers c
    JOIN cloud.orders o ON o.customer_id = c.id
    GROUP BY c.region, c.id
) s
WHERE rn <= 5
ORDER BY region NULLS LAST, rn;

-- name: mixed_rank_dense_rank
SELECT c.id, o.qty,
       rank() OVER (PARTITION BY c.id ORDER BY o.qty DESC NULLS LAST) AS rnk,
       dense_rank() OVER (PARTITION BY c.id ORDER BY o.qty DESC NULLS LAST) AS drnk,
       o.id
FROM customers c
JOIN cloud.orders o ON o.customer_id = c.id
WHERE c.id BETWEEN 1 AND 15
ORDER BY c.id, rnk, o.id;

-- name: mixed_lag_lead_order_gaps
SELECT c.id AS customer_id, o.id, o.ordered_at,
       o.ordered_at - lag(o.ordered_at) OVER (PARTITION BY c.id ORDER BY o.ordered_at, o.id) AS days_since_prev,
       lead(o.amount) OVER (PARTITION BY c.id ORDER BY o.ordered_at, o.id) AS next_amount
FROM customers c
JOIN cloud.orders o ON o.customer_id = c.id
WHERE c.id IN (7, 77, 777, 1777)
ORDER BY c.id, o.ordered_at, o.id;

-- name: mixed_running_sum_frames
SELECT c.id AS customer_id, o.id, o.ordered_at, o.amount,
       sum(o.amount) OVER (PARTITION BY c.id ORDER BY o.ordered_at, o.id
                           ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running_total,
       sum(o.amount) OVER (PARTITION BY c.id ORDER BY o.ordered_at, o.id
                           ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS last3,
       count(*) OVER (PARTITION BY c.id) AS n_orders
FROM customers c
JOIN cloud.main.orders o ON o.customer_id = c.id
WHERE c.region = 'EU' AND c.id <= 60
ORDER BY customer_id, o.ordered_at, o.id;

-- name: mixed_window_over_monthly_region
SELECT region, mon, revenue,
       sum(revenue) OVER (PARTITION BY region ORDER BY mon ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS rolling_3m,
       revenue - lag(revenue, 12) OVER (PARTITION BY region ORDER BY mon) AS yoy
FROM (
    SELECT coalesce(c.region, '?') AS region, CAST(date_trunc('month', o.ordered_at) AS DATE) AS mon,
           sum(o.amount) AS revenue
    FROM customers c
    JOIN cloud.orders o ON o.customer_id = c.id
    GROUP BY 1, 2
) m
ORDER BY region, mon;

-- name: mixed_qualify_latest_order
SELECT c.id, c.name, o.id AS order_id, o.ordered_at, o.amount
FROM customers c
JOIN cloud.orders o ON o.customer_id = c.id
WHERE c.region = 'APAC'
QUALIFY row_number() OVER (PARTITION BY c.id ORDER BY o.ordered_at DESC, o.id DESC) = 1;

-- name: mixed_cte_used_twice
WITH cust_rev AS (
    SELECT c.id, c.region, sum(o.amount) AS revenue
    FROM customers c
    JOIN cloud.orders o ON o.customer_id = c.id
    GROUP BY c.id, c.region
)
SELECT a.region, count(*) AS above_avg_customers, sum(a.revenue) AS revenue
FROM cust_rev a
JOIN (SELECT region, avg(revenue) AS avg_rev FROM cust_rev GROUP BY region) b
  ON a.region IS NOT DISTINCT FROM b.region
WHERE a.revenue > b.avg_rev
GROUP BY a.region;

-- name: mixed_cloud_only_cte_joined_local
WITH big_orders AS (
    SELECT o.customer_id, count(*) AS n_big, max(o.amount) AS max_amount
    FROM cloud.main.orders o
    JOIN cloud.main.order_items oi ON oi.order_id = o.id
    WHERE o.amount > 990 AND oi.quantity >= 4
    GROUP BY o.customer_id
)
SELECT c.region, count(*) AS customers, sum(b.n_big) AS big_lines, max(b.max_amount) AS max_amount
FROM big_orders b
JOIN customers c ON c.id = b.customer_id
GROUP BY c.region;

-- name: mixed_multiple_ctes_targets_vs_actual
WITH actual AS (
    SELECT c.region, CAST(date_trunc('month', o.ordered_at) AS DATE) AS month, sum(o.amount) AS revenue
    FROM customers c
    JOIN cloud.orders o ON o.customer_id = c.id
    WHERE o.ordered_at BETWEEN DATE '2024-01-01' AND DATE '2024-12-31'
      AND o.status IN ('shipped', 'delivered')
    GROUP BY 1, 2
),
cmp AS (
    SELECT t.region, t.month, t.goal, a.revenue
    FROM targets t
    LEFT JOIN actual a ON a.region = t.region AND a.month = t.month
)
SELECT region, month, goal, revenue, coalesce(revenue, 0) >= goal AS met
FROM cmp
ORDER BY region, month;

-- name: mixed_union_distinct_codes
SELECT code AS name FROM regions
UNION
SELECT category FROM cloud.products WHERE category IS NOT NULL
UNION
SELECT status FROM cloud.orders;

-- name: mixed_union_all_events
SELECT 'signup' AS kind, id AS customer_id, signup AS day FROM customers WHERE id <= 10
UNION ALL
SELECT 'order', customer_id, ordered_at FROM cloud.orders WHERE customer_id <= 10 AND ordered_at >= DATE '2025-09-01'
ORDER BY customer_id, day, kind;

-- name: mixed_intersect_ids
SELECT id FROM customers WHERE vip
INTERSECT
SELECT customer_id FROM cloud.orders WHERE status = 'returned' AND ordered_at >= DATE '2025-06-01';

-- name: mixed_except_ids
SELECT id FROM customers
EXCEPT
SELECT customer_id FROM cloud.main.orders;

-- name: mixed_except_cloud_minus_local
SELECT customer_id FROM cloud.orders
EXCEPT
SELECT id FROM customers;

-- name: mixed_union_all_aggregated
SELECT src, count(*) AS n, min(d) AS first_day, max(d) AS last_day
FROM (
    SELECT 'local' AS src, signup AS d FROM customers
    UNION ALL
    SELECT 'cloud', ordered_at FROM cloud.orders
    UNION ALL
    SELECT 'target', month FROM targets
) u
GROUP BY src;

-- name: mixed_intersect_all_except_all
(SELECT region FROM customers WHERE id <= 200
 INTERSECT ALL
 SELECT c.region FROM customers c JOIN cloud.orders o ON o.customer_id = c.id WHERE o.id <= 300)
EXCEPT ALL
SELECT code FROM regions;

-- name: mixed_order_by_limit_offset
SELECT c.id, c.name, sum(o.amount) AS total
FROM customers c
JOIN cloud.orders o ON o.customer_id = c.id
GROUP BY c.id, c.name
ORDER BY total DESC, c.id
LIMIT 10 OFFSET 5;

-- name: mixed_order_by_limit_rows
SELECT o.id, o.customer_id, c.name, o.amount, o.ordered_at
FROM cloud.orders o
JOIN customers c ON c.id = o.customer_id
WHERE o.status = 'returned'
ORDER BY o.amount DESC, o.ordered_at, o.id
LIMIT 25;

-- name: mixed_null_region_coalesce
SELECT coalesce(c.region, 'unknown') AS region, c.region IS NULL AS was_null,
       count(*) AS n, sum(o.amount) AS amount
FROM customers c
JOIN cloud.orders o ON o.customer_id = c.id
GROUP BY ALL;

-- name: mixed_null_join_keys
SELECT count(*) AS joined,
       count(*) FILTER (WHERE c.region IS NULL) AS null_region_rows,
       count(t.region) AS with_target
FROM customers c
JOIN cloud.orders o ON o.customer_id = c.id
LEFT JOIN targets t ON t.region = c.region AND t.month = CAST(date_trunc('month', o.ordered_at) AS DATE);

-- name: mixed_is_not_distinct_from_region
SELECT c.region, count(*) AS n
FROM customers c
JOIN (SELECT DISTINCT region FROM customers WHERE id <= 50) r ON r.region IS NOT DISTINCT FROM c.region
JOIN cloud.orders o ON o.customer_id = c.id AND o.qty IS NULL
GROUP BY c.region;

-- name: mixed_null_counts
SELECT o.status IS NULL AS null_status, o.qty IS NULL AS null_qty, c.credit IS NULL AS null_credit,
       count(*) AS n, sum(coalesce(o.qty, 0)) AS qty
FROM cloud.orders o
JOIN customers c ON c.id = o.customer_id
GROUP BY ALL;

-- name: mixed_date_functions
SELECT extract(year FROM o.ordered_at) AS yr, extract(quarter FROM o.ordered_at) AS q,
       dayname(o.ordered_at) AS dow_name, extract(dow FROM o.ordered_at) AS dow,
       count(*) AS n
FROM cloud.orders o
JOIN customers c ON c.id = o.customer_id
WHERE c.vip AND o.ordered_at BETWEEN DATE '2024-02-01' AND DATE '2024-04-30'
GROUP BY ALL;

-- name: mixed_date_arithmetic
SELECT c.id, min(o.ordered_at - c.signup) AS min_days_after_signup,
       max(date_diff('day', c.signup, o.ordered_at)) AS max_days,
       min(c.signup + INTERVAL 30 DAY) AS signup_plus_30,
       count(*) FILTER (WHERE o.ordered_at < c.signup) AS before_signup
FROM customers c
JOIN cloud.orders o ON o.customer_id = c.id
WHERE c.id % 100 = 3
GROUP BY c.id;

-- name: mixed_date_trunc_join_targets
SELECT t.region, t.month, t.goal, count(o.id) AS n_orders
FROM targets t
JOIN customers c ON c.region = t.region
JOIN cloud.orders o ON o.customer_id = c.id AND date_trunc('month', o.ordered_at) = t.month
GROUP BY t.region, t.month, t.goal;

-- name: mixed_decimal_arithmetic
SELECT c.region,
       sum(o.amount) AS total,
       sum(o.amount * r.tax_rate) AS tax,
       round(sum(o.amount * (1 + r.tax_rate)), 2) AS total_with_tax,
       round(avg(o.amount), 4) AS avg_amount,
       sum(o.amount) - sum(c.credit) AS diff,
       max(o.amount * o.qty) AS max_line
FROM customers c
JOIN regions r ON r.code = c.region
JOIN cloud.orders o ON o.customer_id = c.id
GROUP BY c.region;

-- name: mixed_decimal_rounding
SELECT c.id, round(o.amount * 1.0825, 2) AS with_tax, floor(o.amount) AS fl, ceil(o.amount) AS ce,
       round(o.amount / 3, 3) AS third, CAST(o.amount * 100 AS BIGINT) AS cents
FROM customers c
JOIN cloud.orders o ON o.customer_id = c.id
WHERE c.id BETWEEN 1000 AND 1003;

-- name: mixed_string_functions
SELECT upper(substr(c.name, 1, 3)) AS prefix, lower(o.status) AS status, length(c.name) AS len,
       count(*) AS n
FROM customers c
JOIN cloud.orders o ON o.customer_id = c.id
WHERE c.name ILIKE 'GRACE%' AND o.status LIKE '%ed'
GROUP BY ALL;

-- name: mixed_string_like_products
SELECT c.region, p.name, count(*) AS n
FROM customers c
JOIN cloud.orders o ON o.customer_id = c.id
JOIN cloud.order_items oi ON oi.order_id = o.id
JOIN cloud.products p ON p.id = oi.product_id
WHERE p.name LIKE 'Widget Pro%' AND c.name LIKE '%Smith%'
GROUP BY c.region, p.name;

-- name: mixed_case_segments
SELECT CASE WHEN c.vip THEN 'vip'
            WHEN c.credit IS NULL THEN 'no_credit'
            WHEN c.credit >= 500 THEN 'high'
            ELSE 'low' END AS segment,
       CASE o.status WHEN 'delivered' THEN 'ok' WHEN 'shipped' THEN 'ok' ELSE 'other' END AS state,
       count(*) AS n, sum(o.amount) AS amount
FROM customers c
JOIN cloud.orders o ON o.customer_id = c.id
GROUP BY ALL;

-- name: mixed_distinct_pairs
SELECT DISTINCT c.region, o.status
FROM customers c
JOIN cloud.orders o ON o.customer_id = c.id;

-- name: mixed_distinct_on
SELECT DISTINCT ON (c.region) c.region, c.id, o.id AS order_id, o.amount
FROM customers c
JOIN cloud.orders o ON o.customer_id = c.id
ORDER BY c.region, o.amount DESC, o.id;

-- name: selective_customer_range_items
SELECT c.id, c.name, o.id AS order_id, oi.product_id, oi.quantity, p.price
FROM customers c
JOIN cloud.orders o ON o.customer_id = c.id
JOIN cloud.order_items oi ON oi.order_id = o.id
LEFT JOIN cloud.products p ON p.id = oi.product_id
WHERE c.id BETWEEN 500 AND 520;

-- name: selective_customer_name
SELECT c.id, c.name, count(*) AS n, sum(o.amount) AS total
FROM customers c
JOIN cloud.main.orders o ON o.customer_id = c.id
WHERE c.name LIKE 'Alice Smith #1%'
GROUP BY c.id, c.name;

-- name: selective_vip_region_signup
SELECT c.id, o.status, count(*) AS n, max(o.ordered_at) AS last_order
FROM customers c
JOIN cloud.orders o ON o.customer_id = c.id
WHERE c.vip AND c.region = 'LATAM' AND c.signup >= DATE '2024-06-01'
GROUP BY c.id, o.status;

-- name: selective_single_customer_orders
SELECT o.id, o.amount, o.status, o.ordered_at
FROM customers c
JOIN cloud.orders o ON o.customer_id = c.id
WHERE c.id = 1234
ORDER BY o.ordered_at, o.id;

-- name: tiny_cloud_aggregate_cross_regions
SELECT r.code, r.tax_rate, s.n, s.total, round(s.total * r.tax_rate, 2) AS tax
FROM regions r
CROSS JOIN (SELECT count(*) AS n, sum(amount) AS total FROM cloud.orders WHERE status = 'pending') s;

-- name: tiny_cloud_aggregate_scalar_filter
SELECT c.id, c.signup
FROM customers c
WHERE c.signup > (SELECT min(ordered_at) + 790 FROM cloud.orders WHERE status = 'returned');

-- name: tiny_cloud_monthly_vs_targets
SELECT t.month, sum(t.goal) AS goal, m.revenue
FROM targets t
JOIN (SELECT CAST(date_trunc('month', ordered_at) AS DATE) AS month, sum(amount) AS revenue
      FROM cloud.main.orders GROUP BY 1) m ON m.month = t.month
GROUP BY t.month, m.revenue
ORDER BY t.month;

-- name: tiny_cloud_status_join_local
SELECT s.status, s.n, r.code
FROM (SELECT status, count(*) AS n FROM cloud.orders GROUP BY status) s
JOIN regions r ON length(r.code) = length(s.status) - 5;

-- name: mixed_lateral_top_orders
SELECT c.id, t.id AS order_id, t.amount
FROM customers c,
     LATERAL (SELECT o.id, o.amount FROM cloud.orders o WHERE o.customer_id = c.id
              ORDER BY o.amount DESC, o.id LIMIT 2) t
WHERE c.id <= 30;

-- name: mixed_percentage_of_total_window
SELECT region, revenue, round(100.0 * revenue / sum(revenue) OVER (), 4) AS pct
FROM (
    SELECT coalesce(c.region, '?') AS region, sum(o.amount) AS revenue
    FROM customers c
    JOIN cloud.orders o ON o.customer_id = c.id
    GROUP BY 1
) s
ORDER BY region;

-- name: mixed_ntile_buckets
SELECT bucket, count(*) AS customers, min(total) AS lo, max(total) AS hi
FROM (
    SELECT c.id, sum(o.amount) AS total,
           ntile(4) OVER (ORDER BY sum(o.amount), c.id) AS bucket
    FROM customers c
    JOIN cloud.orders o ON o.customer_id = c.id
    GROUP BY c.id
) s
GROUP BY bucket
ORDER BY bucket;

-- name: mixed_exists_or_in
SELECT c.region, count(*) AS n
FROM customers c
WHERE EXISTS (SELECT 1 FROM cloud.orders o WHERE o.customer_id = c.id AND o.amount > 1000)
   OR c.id IN (SELECT customer_id FROM cloud.orders WHERE qty IS NULL AND status = 'returned')
GROUP BY c.region;

-- name: mixed_nested_subquery_products
SELECT p.category, count(DISTINCT p.id) AS products
FROM cloud.products p
WHERE p.id IN (
    SELECT oi.product_id FROM cloud.order_items oi
    WHERE oi.order_id IN (
        SELECT o.id FROM cloud.orders o
        WHERE o.customer_id IN (SELECT id FROM customers WHERE vip AND region = 'NA')
    )
)
GROUP BY p.category;

-- name: mixed_any_all_comparison
SELECT c.id, c.credit
FROM customers c
WHERE c.id <= 400
  AND c.credit > ALL (SELECT o.amount FROM cloud.orders o WHERE o.customer_id = c.id AND o.status = 'pending');

-- name: mixed_having_count_distinct_categories
SELECT c.id, count(DISTINCT p.category) AS categories, count(*) AS lines
FROM customers c
JOIN cloud.orders o ON o.customer_id = c.id
JOIN cloud.order_items oi ON oi.order_id = o.id
JOIN cloud.products p ON p.id = oi.product_id
WHERE c.region = 'MEA'
GROUP BY c.id
HAVING count(DISTINCT p.category) < 6;

-- name: mixed_min_max_by
SELECT c.region, arg_max(o.id, o.amount) AS top_order_by_amount, max(o.amount) AS top_amount,
       min(o.ordered_at) AS first_order, max(o.ordered_at) AS last_order
FROM customers c
JOIN cloud.orders o ON o.customer_id = c.id
WHERE o.amount < 1000.5
GROUP BY c.region;

-- name: mixed_in_list_and_between
SELECT c.region, o.status, count(*) AS n
FROM customers c
JOIN cloud.main.orders o ON o.customer_id = c.id
WHERE c.region IN ('EU', 'NA')
  AND o.status IN ('pending', 'returned')
  AND o.amount BETWEEN 250 AND 260
GROUP BY c.region, o.status;

-- name: split_agg_both_sides_monthly_goal_vs_revenue
SELECT a.month, a.n_regions, a.goal, b.n_orders, b.revenue, b.revenue - a.goal AS gap
FROM (SELECT month, count(*) AS n_regions, sum(goal) AS goal FROM targets GROUP BY month) a
JOIN (SELECT CAST(date_trunc('month', ordered_at) AS DATE) AS month, count(*) AS n_orders, sum(amount) AS revenue
      FROM cloud.orders
      WHERE status IS DISTINCT FROM 'cancelled'
      GROUP BY 1) b ON b.month = a.month
ORDER BY a.month;

-- name: split_agg_both_sides_signup_vs_order_months
SELECT coalesce(a.mon, b.mon) AS mon, a.signups, a.vips, b.orders, b.amount
FROM (SELECT CAST(date_trunc('month', signup) AS DATE) AS mon, count(*) AS signups, count(*) FILTER (WHERE vip) AS vips
      FROM customers
      WHERE signup >= DATE '2022-10-01'
      GROUP BY 1) a
FULL OUTER JOIN (SELECT CAST(date_trunc('month', ordered_at) AS DATE) AS mon, count(*) AS orders, sum(amount) AS amount
                 FROM cloud.orders
                 WHERE ordered_at < DATE '2023-07-01'
                 GROUP BY 1) b ON b.mon = a.mon
ORDER BY mon;

-- name: split_agg_both_sides_id_buckets_using
SELECT bucket, a.n, a.credit, b.n_orders, b.amount, b.buyers
FROM (SELECT id % 10 AS bucket, count(*) AS n, sum(credit) AS credit
      FROM customers
      WHERE region IS NOT NULL
      GROUP BY 1) a
JOIN (SELECT customer_id % 10 AS bucket, count(*) AS n_orders, sum(amount) AS amount, count(DISTINCT customer_id) AS buyers
      FROM cloud.orders
      WHERE customer_id <= 2000
      GROUP BY 1) b USING (bucket)
ORDER BY bucket;

-- name: split_agg_both_sides_local_top_credit_limit
SELECT a.id, a.name, a.credit, b.n_orders, b.total
FROM (SELECT id, name, credit FROM customers WHERE credit IS NOT NULL ORDER BY credit DESC, id LIMIT 20) a
LEFT JOIN (SELECT customer_id, count(*) AS n_orders, sum(amount) AS total
           FROM cloud.orders
           GROUP BY customer_id) b ON b.customer_id = a.id
ORDER BY a.credit DESC, a.id;

-- name: split_agg_both_sides_cloud_top_buyers_limit
SELECT b.customer_id, b.n_orders, b.total, c.name, c.region, r.label
FROM (SELECT customer_id, count(*) AS n_orders, sum(amount) AS total
      FROM cloud.orders
      WHERE customer_id IS NOT NULL
      GROUP BY customer_id
      ORDER BY n_orders DESC, customer_id
      LIMIT 30) b
JOIN customers c ON c.id = b.customer_id
LEFT JOIN regions r ON r.code = c.region
ORDER BY b.n_orders DESC, b.customer_id;

-- name: split_agg_both_sides_yearly
SELECT a.yr, a.signups, a.vip_signups, b.orders, b.revenue, b.avg_qty
FROM (SELECT extract(year FROM signup) AS yr, count(*) AS signups, count(*) FILTER (WHERE vip) AS vip_signups
      FROM customers
      GROUP BY 1) a
JOIN (SELECT extract(year FROM ordered_at) AS yr, count(*) AS orders, sum(amount) AS revenue,
             CAST(avg(qty) AS DECIMAL(10,4)) AS avg_qty
      FROM cloud.orders
      GROUP BY 1) b ON a.yr = b.yr
ORDER BY a.yr;

-- name: split_agg_both_sides_distinct_inner
SELECT a.region, b.status, count(*) AS pairs
FROM (SELECT DISTINCT id, region FROM customers WHERE signup >= DATE '2024-01-01') a
JOIN (SELECT DISTINCT customer_id, status FROM cloud.orders WHERE ordered_at >= DATE '2025-06-01') b
  ON b.customer_id = a.id
GROUP BY a.region, b.status;

-- name: split_agg_both_sides_having_inside
SELECT a.region, count(*) AS customers, sum(b.n) AS orders, sum(b.total) AS total, sum(a.credit) AS credit
FROM (SELECT id, region, credit FROM customers WHERE credit >= 500) a
JOIN (SELECT customer_id, count(*) AS n, sum(amount) AS total
      FROM cloud.orders
      GROUP BY customer_id
      HAVING count(*) >= 25) b ON b.customer_id = a.id
GROUP BY a.region;

-- name: split_cte_cloud_monthly_join_targets
WITH m AS (
    SELECT customer_id, CAST(date_trunc('month', ordered_at) AS DATE) AS month, sum(amount) AS amt
    FROM cloud.orders
    WHERE ordered_at BETWEEN DATE '2024-01-01' AND DATE '2024-12-31'
    GROUP BY 1, 2
)
SELECT c.region, m.month, count(*) AS buyers, sum(m.amt) AS revenue, max(t.goal) AS goal
FROM m
JOIN customers c ON c.id = m.customer_id
JOIN targets t ON t.region = c.region AND t.month = m.month
GROUP BY c.region, m.month
ORDER BY c.region, m.month;

-- name: split_cte_cloud_referenced_twice_scalar
WITH per_cust AS (
    SELECT customer_id, count(*) AS n, sum(amount) AS total
    FROM cloud.orders
    WHERE status = 'delivered'
    GROUP BY customer_id
)
SELECT c.region, count(*) AS customers, sum(p.total) AS total,
       count(*) FILTER (WHERE p.n > (SELECT avg(n) FROM per_cust)) AS above_avg
FROM per_cust p
JOIN customers c ON c.id = p.customer_id
GROUP BY c.region;

-- name: split_cte_cloud_referenced_twice_self_join
WITH yearly AS (
    SELECT customer_id, extract(year FROM ordered_at) AS yr, sum(amount) AS total
    FROM cloud.orders
    WHERE customer_id IS NOT NULL
    GROUP BY 1, 2
)
SELECT c.region, y2.yr, count(*) AS grew, sum(y2.total - y1.total) AS growth
FROM yearly y1
JOIN yearly y2 ON y2.customer_id = y1.customer_id AND y2.yr = y1.yr + 1
JOIN customers c ON c.id = y1.customer_id
WHERE y2.total > y1.total
GROUP BY c.region, y2.yr;

-- name: split_cte_both_sides_vip_orders
WITH loc AS (
    SELECT id, region, credit FROM customers WHERE vip
),
cl AS (
    SELECT customer_id, count(*) AS n, max(ordered_at) AS last_order
    FROM cloud.orders
    WHERE status IN ('shipped', 'delivered')
    GROUP BY customer_id
)
SELECT loc.region, count(*) AS vips, sum(cl.n) AS orders, max(cl.last_order) AS last_order, sum(loc.credit) AS credit
FROM loc
JOIN cl ON cl.customer_id = loc.id
GROUP BY loc.region;

-- name: split_cte_both_sides_goals_spend
WITH goals AS (
    SELECT region, sum(goal) AS goal FROM targets GROUP BY region
),
spend AS (
    SELECT customer_id, sum(amount) AS spent
    FROM cloud.orders
    WHERE extract(year FROM ordered_at) = 2024
    GROUP BY customer_id
)
SELECT g.region, g.goal, count(s.customer_id) AS buyers, sum(s.spent) AS spent
FROM goals g
LEFT JOIN customers c ON c.region = g.region
LEFT JOIN spend s ON s.customer_id = c.id
GROUP BY g.region, g.goal
ORDER BY g.region;

-- name: split_cte_local_filter_used_in_cloud
WITH eu_vips AS (
    SELECT id FROM customers WHERE vip AND region = 'EU'
)
SELECT o.status, count(*) AS n, sum(o.amount) AS amount
FROM cloud.orders o
WHERE o.customer_id IN (SELECT id FROM eu_vips)
GROUP BY o.status;

-- name: split_cte_chain_three
WITH o24 AS (
    SELECT id, customer_id, amount
    FROM cloud.orders
    WHERE ordered_at >= DATE '2024-01-01' AND ordered_at < DATE '2025-01-01'
),
items AS (
    SELECT oi.order_id, sum(oi.quantity) AS units
    FROM cloud.order_items oi
    JOIN o24 ON o24.id = oi.order_id
    GROUP BY oi.order_id
),
cust AS (
    SELECT id, coalesce(region, '?') AS region FROM customers
)
SELECT cust.region, count(*) AS orders, sum(items.units) AS units, sum(o24.amount) AS amount
FROM o24
JOIN items ON items.order_id = o24.id
JOIN cust ON cust.id = o24.customer_id
GROUP BY cust.region;

-- name: split_cte_referenced_twice_union_all
WITH big AS (
    SELECT customer_id, amount, ordered_at FROM cloud.orders WHERE amount >= 995
)
SELECT 'max' AS kind, c.region, count(*) AS n
FROM big JOIN customers c ON c.id = big.customer_id
WHERE big.amount >= 999
GROUP BY c.region
UNION ALL
SELECT 'late', c.region, count(*)
FROM big JOIN customers c ON c.id = big.customer_id
WHERE big.ordered_at >= DATE '2025-07-01'
GROUP BY c.region;

-- name: split_cte_local_referenced_twice
WITH reg AS (
    SELECT c.id, c.region, r.tax_rate
    FROM customers c
    JOIN regions r ON r.code = c.region
)
SELECT a.region, count(*) AS orders, sum(o.amount * a.tax_rate) AS tax,
       (SELECT count(*) FROM reg b WHERE b.region = a.region) AS region_customers
FROM reg a
JOIN cloud.orders o ON o.customer_id = a.id
WHERE o.status = 'returned'
GROUP BY a.region;

-- name: split_union_all_agg_branches_top_level
SELECT 'local' AS side, region AS k, count(*) AS n FROM customers GROUP BY region
UNION ALL
SELECT 'cloud', status, count(*) FROM cloud.orders GROUP BY status
ORDER BY side, k NULLS FIRST;

-- name: split_union_distinct_months
SELECT CAST(date_trunc('month', signup) AS DATE) AS mon FROM customers WHERE signup >= DATE '2024-06-01'
UNION
SELECT CAST(date_trunc('month', ordered_at) AS DATE) FROM cloud.orders WHERE ordered_at < DATE '2025-03-01' AND amount > 990
ORDER BY mon;

-- name: split_union_all_in_derived_agg
SELECT k, sum(n) AS n, sum(total) AS total
FROM (
    SELECT region AS k, count(*) AS n, sum(credit) AS total
    FROM customers
    WHERE region IN ('NA', 'EU')
    GROUP BY region
    UNION ALL
    SELECT CASE WHEN customer_id % 2 = 0 THEN 'NA' ELSE 'EU' END, count(*), sum(amount)
    FROM cloud.orders
    WHERE qty = 10 AND customer_id IS NOT NULL
    GROUP BY 1
) u
GROUP BY k
ORDER BY k;

-- name: split_union_distinct_labels
SELECT label AS name, 'region' AS kind FROM regions
UNION
SELECT DISTINCT category, 'category' FROM cloud.products WHERE category IS NOT NULL
ORDER BY kind, name;

-- name: split_union_in_derived_joined_local
SELECT c.region, count(*) AS customers
FROM (
    SELECT id AS cid FROM customers WHERE vip
    UNION
    SELECT customer_id FROM cloud.orders WHERE amount > 999.5
) u
JOIN customers c ON c.id = u.cid
GROUP BY c.region;

-- name: split_except_agg_branch
SELECT id FROM customers WHERE region = 'NA'
EXCEPT
SELECT customer_id FROM cloud.orders GROUP BY customer_id HAVING count(*) >= 15;

-- name: split_except_in_derived
SELECT coalesce(c.region, '?') AS region, count(*) AS n
FROM (
    SELECT id FROM customers WHERE vip
    EXCEPT
    SELECT customer_id FROM cloud.orders WHERE status = 'returned'
) s
JOIN customers c ON c.id = s.id
GROUP BY 1;

-- name: split_intersect_first_order_year_in_derived
SELECT yr, count(*) AS n
FROM (
    SELECT id, extract(year FROM signup) AS yr FROM customers
    INTERSECT
    SELECT customer_id, extract(year FROM min(ordered_at)) FROM cloud.orders GROUP BY customer_id
) s
GROUP BY yr
ORDER BY yr;

-- name: split_intersect_agg_top_level
SELECT region, CAST(count(*) AS BIGINT) AS n FROM customers WHERE id <= 400 GROUP BY region
INTERSECT
SELECT c.region, count(*) FROM customers c WHERE c.id <= 400 AND c.id IN (SELECT customer_id FROM cloud.orders) GROUP BY c.region;

-- name: split_except_all_in_derived
SELECT k, count(*) AS n
FROM (
    SELECT CAST(id % 5 AS BIGINT) AS k FROM customers WHERE id <= 400
    EXCEPT ALL
    SELECT CAST(customer_id % 5 AS BIGINT) FROM cloud.orders WHERE id <= 200 AND customer_id IS NOT NULL
) s
GROUP BY k
ORDER BY k;

-- name: split_three_way_regions_customers_orders
SELECT r.code, r.label, count(o.id) AS n, sum(o.amount) AS amount, sum(o.amount * r.tax_rate) AS tax
FROM regions r
JOIN customers c ON c.region = r.code
JOIN cloud.orders o ON o.customer_id = c.id
WHERE o.status = 'delivered' AND o.ordered_at >= DATE '2025-01-01'
GROUP BY r.code, r.label
ORDER BY r.code;

-- name: split_three_way_targets_customers_orders_range
SELECT t.region, t.month, t.goal, count(DISTINCT c.id) AS buyers, sum(o.amount) AS revenue
FROM targets t
JOIN customers c ON c.region = t.region
JOIN cloud.orders o ON o.customer_id = c.id
 AND o.ordered_at >= t.month
 AND o.ordered_at < t.month + INTERVAL 1 MONTH
WHERE t.month >= DATE '2024-10-01'
GROUP BY t.region, t.month, t.goal
ORDER BY t.region, t.month;

-- name: split_three_way_left_regions_customers_orders
SELECT r.code, count(DISTINCT c.id) AS customers, count(o.id) AS big_orders, sum(o.amount) AS amount
FROM regions r
LEFT JOIN customers c ON c.region = r.code
LEFT JOIN cloud.orders o ON o.customer_id = c.id AND o.amount > 999
GROUP BY r.code
ORDER BY r.code;

-- name: split_three_way_customer_pairs_orders
SELECT c1.region, count(*) AS pairs, sum(o.amount) AS amount
FROM customers c1
JOIN customers c2 ON c2.id = c1.id + 1000 AND c2.region = c1.region
JOIN cloud.orders o ON o.customer_id = c2.id AND o.status = 'pending'
GROUP BY c1.region;

-- name: split_three_way_customers_orders_items
SELECT c.region, count(*) AS lines, sum(oi.quantity) AS units, count(DISTINCT o.id) AS orders
FROM customers c
JOIN cloud.orders o ON o.customer_id = c.id
JOIN cloud.order_items oi ON oi.order_id = o.id
WHERE o.ordered_at BETWEEN DATE '2025-03-01' AND DATE '2025-03-31'
GROUP BY c.region;

-- name: split_three_way_targets_orders_items
SELECT t.month, t.goal, count(DISTINCT o.id) AS orders, sum(oi.quantity) AS units
FROM targets t
JOIN cloud.orders o ON CAST(date_trunc('month', o.ordered_at) AS DATE) = t.month
JOIN cloud.order_items oi ON oi.order_id = o.id
WHERE t.region = 'EU' AND o.status = 'shipped'
GROUP BY t.month, t.goal
ORDER BY t.month;

-- name: split_three_way_local_in_middle
SELECT c.vip, count(*) AS pairs, count(DISTINCT c.id) AS customers
FROM cloud.orders o1
JOIN customers c ON c.id = o1.customer_id
JOIN cloud.orders o2 ON o2.customer_id = c.id AND o2.id > o1.id AND o2.ordered_at = o1.ordered_at + 1
WHERE c.region = 'LATAM'
GROUP BY c.vip;

-- name: split_three_way_four_tables_two_local_two_cloud
SELECT r.code, oi.quantity, count(*) AS lines, count(DISTINCT o.id) AS orders, sum(o.amount) AS amount
FROM regions r
JOIN customers c ON c.region = r.code
JOIN cloud.orders o ON o.customer_id = c.id
JOIN cloud.order_items oi ON oi.order_id = o.id
WHERE o.ordered_at >= DATE '2025-11-01' AND c.vip
GROUP BY r.code, oi.quantity
ORDER BY r.code, oi.quantity;

-- name: split_three_way_four_tables_one_local_three_cloud
SELECT c.vip, p.category, count(*) AS lines, sum(oi.quantity * p.price) AS gross
FROM customers c
JOIN cloud.orders o ON o.customer_id = c.id
JOIN cloud.order_items oi ON oi.order_id = o.id
JOIN cloud.products p ON p.id = oi.product_id
WHERE o.ordered_at BETWEEN DATE '2024-07-01' AND DATE '2024-07-31'
GROUP BY c.vip, p.category;

-- name: split_semi_in_uncorrelated_leap_day
SELECT c.id, c.name, c.region
FROM customers c
WHERE c.id IN (SELECT o.customer_id FROM cloud.orders o WHERE o.ordered_at = DATE '2024-02-29')
ORDER BY c.id;

-- name: split_semi_not_in_nulls_in_subquery_flag
SELECT c.id NOT IN (SELECT o.customer_id FROM cloud.orders o WHERE o.id <= 500) AS not_in, count(*) AS n
FROM customers c
GROUP BY 1;

-- name: split_semi_not_in_nulls_in_outer
SELECT coalesce(c.region, '<null>') AS region, count(*) AS n
FROM customers c
WHERE c.region NOT IN (SELECT CASE o.status WHEN 'pending' THEN 'NA' ELSE 'EU' END
                       FROM cloud.orders o WHERE o.status IN ('pending', 'shipped'))
GROUP BY 1;

-- name: split_semi_not_in_local_subquery_with_null
SELECT o.status, o.qty NOT IN (SELECT CAST(c.credit AS INTEGER) % 10 FROM customers c WHERE c.id BETWEEN 20 AND 23) AS flag,
       count(*) AS n
FROM cloud.orders o
WHERE o.ordered_at >= DATE '2025-12-01'
GROUP BY ALL;

-- name: split_semi_exists_correlated_after_signup
SELECT c.region, count(*) AS n
FROM customers c
WHERE EXISTS (SELECT 1 FROM cloud.orders o
              WHERE o.customer_id = c.id AND o.ordered_at BETWEEN c.signup AND c.signup + 30)
GROUP BY c.region;

-- name: split_semi_not_exists_correlated_year
SELECT c.vip, count(*) AS n, min(c.id) AS min_id
FROM customers c
WHERE NOT EXISTS (SELECT 1 FROM cloud.orders o
                  WHERE o.customer_id = c.id AND extract(year FROM o.ordered_at) = 2025)
GROUP BY c.vip;

-- name: split_semi_cloud_outer_local_in
SELECT o.status, count(*) AS n, sum(o.amount) AS amount
FROM cloud.orders o
WHERE o.customer_id IN (SELECT id FROM customers WHERE region IS NULL)
GROUP BY o.status;

-- name: split_semi_cloud_outer_local_not_exists
SELECT o.customer_id IS NULL AS null_customer, count(*) AS n, sum(o.amount) AS amount
FROM cloud.orders o
WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = o.customer_id AND c.region IS NOT NULL)
GROUP BY 1;

-- name: split_semi_exists_uncorrelated
SELECT c.id, c.name
FROM customers c
WHERE c.id <= 8
  AND EXISTS (SELECT 1 FROM cloud.orders o WHERE o.amount > 1000)
  AND NOT EXISTS (SELECT 1 FROM cloud.orders o WHERE o.amount > 5000)
ORDER BY c.id;

-- name: split_semi_in_products_from_local_ids
SELECT p.category, count(*) AS products, sum(p.price) AS price
FROM cloud.products p
WHERE p.id IN (SELECT id FROM customers WHERE vip)
GROUP BY p.category;

-- name: split_window_rank_region_spend
SELECT region, id, total, rnk, drnk
FROM (
    SELECT c.region, c.id, sum(o.amount) AS total,
           rank() OVER (PARTITION BY c.region ORDER BY sum(o.amount) DESC) AS rnk,
           dense_rank() OVER (PARTITION BY c.region ORDER BY count(*) DESC) AS drnk
    FROM customers c
    JOIN cloud.orders o ON o.customer_id = c.id
    WHERE o.ordered_at >= DATE '2024-01-01' AND o.ordered_at < DATE '2025-01-01'
    GROUP BY c.region, c.id
) s
WHERE rnk <= 3
ORDER BY region NULLS FIRST, rnk, id;

-- name: split_window_running_region_month
SELECT region, month, revenue, goal,
       sum(revenue) OVER (PARTITION BY region ORDER BY month) AS cum_revenue,
       sum(goal) OVER (PARTITION BY region ORDER BY month) AS cum_goal
FROM (
    SELECT t.region, t.month, t.goal, sum(o.amount) AS revenue
    FROM targets t
    JOIN customers c ON c.region = t.region
    JOIN cloud.orders o ON o.customer_id = c.id AND CAST(date_trunc('month', o.ordered_at) AS DATE) = t.month
    GROUP BY t.region, t.month, t.goal
) m
ORDER BY region, month;

-- name: split_window_first_last_value
SELECT DISTINCT c.id,
       first_value(o.status) OVER (PARTITION BY c.id ORDER BY o.ordered_at, o.id) AS first_status,
       last_value(o.amount) OVER (PARTITION BY c.id ORDER BY o.ordered_at, o.id
                                  ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS last_amount,
       count(*) OVER (PARTITION BY c.id) AS n
FROM customers c
JOIN cloud.orders o ON o.customer_id = c.id
WHERE c.id BETWEEN 300 AND 340;

-- name: split_window_cume_dist_orders
SELECT c.region, c.id, n, round(cume_dist() OVER (PARTITION BY c.region ORDER BY n), 6) AS cd,
       percent_rank() OVER (PARTITION BY c.region ORDER BY n) = 0 AS is_min
FROM customers c
JOIN (SELECT customer_id, count(*) AS n FROM cloud.orders GROUP BY customer_id) o ON o.customer_id = c.id
WHERE c.region IN ('MEA', 'XX') AND c.id <= 600
ORDER BY c.region, n, c.id;

-- name: split_window_row_number_qualify_status
SELECT c.region, o.status, o.id, o.amount
FROM customers c
JOIN cloud.orders o ON o.customer_id = c.id
WHERE o.status IS NOT NULL AND c.region IS NOT NULL
QUALIFY row_number() OVER (PARTITION BY c.region, o.status ORDER BY o.amount DESC, o.id) = 1
ORDER BY c.region, o.status;

-- name: split_window_moving_sum_decimal
SELECT mon, revenue,
       sum(revenue) OVER (ORDER BY mon ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS sum_3m,
       revenue - lag(revenue) OVER (ORDER BY mon) AS delta
FROM (
    SELECT CAST(date_trunc('month', o.ordered_at) AS DATE) AS mon, sum(o.amount) AS revenue
    FROM cloud.orders o
    JOIN customers c ON c.id = o.customer_id
    WHERE c.vip
    GROUP BY 1
) m
ORDER BY mon;

-- name: split_window_count_partition_over_join
SELECT c.region, c.id, count(*) OVER (PARTITION BY c.region) AS region_buyers,
       sum(c.credit) OVER (PARTITION BY c.region ORDER BY c.id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum_credit
FROM customers c
SEMI JOIN cloud.orders o ON o.customer_id = c.id AND o.amount > 999.9
ORDER BY c.region NULLS LAST, c.id;

-- name: split_distinct_regions_of_big_buyers
SELECT DISTINCT c.region
FROM customers c
JOIN cloud.orders o ON o.customer_id = c.id
WHERE o.amount > 1000
ORDER BY c.region NULLS FIRST;

-- name: split_distinct_count_distinct_multi
SELECT c.vip, count(DISTINCT o.customer_id) AS buyers, count(DISTINCT c.region) AS regions,
       count(DISTINCT o.status) AS statuses, count(DISTINCT o.qty) AS qtys,
       count(DISTINCT o.ordered_at) FILTER (WHERE o.amount > 900) AS big_days
FROM customers c
JOIN cloud.orders o ON o.customer_id = c.id
GROUP BY c.vip;

-- name: split_distinct_limit_nulls_last
SELECT c.id, c.name, max(o.qty) AS max_qty, count(*) AS n
FROM customers c
JOIN cloud.orders o ON o.customer_id = c.id
WHERE c.region = 'APAC'
GROUP BY c.id, c.name
ORDER BY max_qty DESC NULLS LAST, n DESC, c.id
LIMIT 15;

-- name: split_distinct_limit_nulls_first
SELECT c.id, c.credit, s.n
FROM customers c
JOIN (SELECT customer_id, count(*) AS n FROM cloud.orders WHERE status = 'returned' GROUP BY customer_id) s
  ON s.customer_id = c.id
ORDER BY c.credit NULLS FIRST, c.id
LIMIT 20;

-- name: split_distinct_limit_offset_page
SELECT o.id, o.customer_id, c.region, o.amount
FROM cloud.orders o
JOIN customers c ON c.id = o.customer_id
WHERE c.region IS NULL
ORDER BY o.amount DESC, o.id
LIMIT 10 OFFSET 20;

-- name: split_distinct_statuses_per_customer
SELECT n_statuses, count(*) AS customers
FROM (
    SELECT c.id, count(DISTINCT o.status) AS n_statuses
    FROM customers c
    LEFT JOIN cloud.orders o ON o.customer_id = c.id
    GROUP BY c.id
) s
GROUP BY n_statuses
ORDER BY n_statuses;

-- name: split_distinct_order_by_nulls_status
SELECT DISTINCT o.status, c.vip
FROM cloud.orders o
JOIN customers c ON c.id = o.customer_id
WHERE c.id % 7 = 3
ORDER BY o.status NULLS FIRST, c.vip;

-- name: split_null_keys_orders_left_customers
SELECT o.customer_id IS NULL AS null_key, c.id IS NULL AS unmatched, coalesce(c.region, '<none>') AS region,
       count(*) AS n, sum(o.amount) AS amount
FROM cloud.orders o
LEFT JOIN customers c ON c.id = o.customer_id
GROUP BY ALL;

-- name: split_null_keys_is_not_distinct_from_status
SELECT m.code, m.status, count(o.id) AS n, sum(o.amount) AS amount
FROM (SELECT code, CASE code WHEN 'NA' THEN 'pending' WHEN 'EU' THEN 'shipped' WHEN 'APAC' THEN 'returned' END AS status
      FROM regions) m
JOIN cloud.orders o ON o.status IS NOT DISTINCT FROM m.status
GROUP BY m.code, m.status;

-- name: split_null_keys_is_not_distinct_from_customer
SELECT l.cid IS NULL AS null_key, count(*) AS n, count(DISTINCT o.id) AS orders, sum(o.amount) AS amount
FROM (SELECT CASE WHEN id % 17 = 0 THEN NULL ELSE id END AS cid FROM customers WHERE id <= 100) l
JOIN cloud.orders o ON o.customer_id IS NOT DISTINCT FROM l.cid
GROUP BY 1;

-- name: split_null_keys_null_group_limit
SELECT s.customer_id, s.n, s.amount, c.region
FROM (SELECT customer_id, count(*) AS n, sum(amount) AS amount FROM cloud.orders GROUP BY customer_id) s
LEFT JOIN customers c ON c.id = s.customer_id
ORDER BY s.customer_id NULLS FIRST
LIMIT 10;

-- name: split_null_keys_full_outer_nullable
SELECT l.cid IS NULL AS local_null, s.customer_id IS NULL AS cloud_null, count(*) AS n,
       sum(s.n) AS orders
FROM (SELECT CASE WHEN id % 17 = 0 THEN NULL ELSE id END AS cid FROM customers) l
FULL OUTER JOIN (SELECT customer_id, count(*) AS n FROM cloud.orders GROUP BY customer_id) s
  ON s.customer_id = l.cid
GROUP BY ALL;

-- name: split_null_keys_null_region_orders
SELECT c.vip, c.credit IS NULL AS no_credit, count(*) AS n, sum(o.amount) AS amount, count(o.qty) AS with_qty
FROM customers c
JOIN cloud.orders o ON o.customer_id = c.id
WHERE c.region IS NULL
GROUP BY ALL;

-- name: split_decimal_sum_avg_by_region
SELECT c.region, sum(o.amount) AS total, CAST(avg(o.amount) AS DECIMAL(10,2)) AS avg_amount,
       sum(CAST(o.amount * o.qty AS DECIMAL(14,2))) AS amount_x_qty,
       sum(c.credit) AS credit_rows
FROM customers c
JOIN cloud.orders o ON o.customer_id = c.id
WHERE o.ordered_at >= DATE '2025-01-01'
GROUP BY c.region;

-- name: split_decimal_cast_discount
SELECT c.vip, p.category,
       sum(oi.quantity * p.price) AS gross,
       sum(CAST(oi.discount AS DECIMAL(4,2)) * oi.quantity * p.price) AS discount_value,
       sum(CAST(oi.quantity AS DECIMAL(10,2)) * coalesce(p.price, 0) * (1 - CAST(coalesce(oi.discount, 0) AS DECIMAL(4,2)))) AS net
FROM customers c
JOIN cloud.orders o ON o.customer_id = c.id
JOIN cloud.order_items oi ON oi.order_id = o.id
JOIN cloud.products p ON p.id = oi.product_id
WHERE o.ordered_at BETWEEN DATE '2025-05-01' AND DATE '2025-06-30'
GROUP BY c.vip, p.category;

-- name: split_decimal_tax_round
SELECT r.code, CAST(sum(o.amount * r.tax_rate) AS DECIMAL(18,4)) AS tax, round(sum(o.amount * (1 + r.tax_rate)), 1) AS gross,
       CAST(sum(o.amount) / count(*) AS DECIMAL(12,3)) AS mean_amount
FROM regions r
JOIN customers c ON c.region = r.code
JOIN cloud.orders o ON o.customer_id = c.id
WHERE o.qty >= 9
GROUP BY r.code;

-- name: split_decimal_credit_vs_spend
SELECT c.region, count(*) AS n,
       sum(CASE WHEN s.spent > c.credit * 20 THEN 1 ELSE 0 END) AS over_20x,
       sum(s.spent - c.credit) AS total_gap, min(s.spent) AS min_spent, max(c.credit) AS max_credit
FROM customers c
JOIN (SELECT customer_id, sum(amount) AS spent FROM cloud.orders WHERE status = 'delivered' GROUP BY customer_id) s
  ON s.customer_id = c.id
WHERE c.credit IS NOT NULL
GROUP BY c.region;

-- name: split_date_trunc_week_vip
SELECT CAST(date_trunc('week', o.ordered_at) AS DATE) AS wk, c.vip, count(*) AS n, sum(o.amount) AS amount
FROM cloud.orders o
JOIN customers c ON c.id = o.customer_id
WHERE o.ordered_at >= DATE '2025-01-06' AND o.ordered_at < DATE '2025-03-03'
GROUP BY 1, 2
ORDER BY wk, c.vip;

-- name: split_date_days_since_signup_buckets
SELECT CASE WHEN o.ordered_at < c.signup THEN 'before'
            WHEN o.ordered_at - c.signup < 30 THEN 'first_month'
            WHEN o.ordered_at - c.signup < 365 THEN 'first_year'
            ELSE 'later' END AS phase,
       count(*) AS n, sum(o.amount) AS amount, count(DISTINCT c.id) AS customers
FROM customers c
JOIN cloud.orders o ON o.customer_id = c.id
GROUP BY 1;

-- name: split_date_interval_first_90_days
SELECT c.region, count(*) AS n, min(o.ordered_at) AS first_day, max(o.ordered_at) AS last_day
FROM customers c
JOIN cloud.orders o ON o.customer_id = c.id
 AND o.ordered_at >= c.signup
 AND o.ordered_at < c.signup + INTERVAL 90 DAY
WHERE c.signup BETWEEN DATE '2023-01-01' AND DATE '2023-12-31'
GROUP BY c.region;

-- name: split_date_extract_month_targets
SELECT t.region, extract(month FROM t.month) AS m, t.goal, count(o.id) AS orders
FROM targets t
LEFT JOIN customers c ON c.region = t.region AND c.vip
LEFT JOIN cloud.orders o ON o.customer_id = c.id
 AND extract(year FROM o.ordered_at) = 2024
 AND extract(month FROM o.ordered_at) = extract(month FROM t.month)
WHERE t.region IN ('LATAM', 'ANZ')
GROUP BY t.region, t.month, t.goal
ORDER BY t.region, m;

-- name: split_date_isodow_last_day
SELECT isodow(o.ordered_at) AS dow, o.ordered_at = last_day(o.ordered_at) AS month_end,
       count(*) AS n, count(DISTINCT c.region) AS regions
FROM cloud.orders o
JOIN customers c ON c.id = o.customer_id
WHERE o.ordered_at > DATE '2024-12-31' AND c.credit < 100
GROUP BY 1, 2;

-- name: split_date_signup_quarter_vs_order_quarter
SELECT extract(year FROM c.signup) AS signup_year, extract(quarter FROM c.signup) AS signup_q,
       count(*) AS orders, count(*) FILTER (WHERE date_trunc('quarter', o.ordered_at) = date_trunc('quarter', c.signup)) AS same_quarter
FROM customers c
JOIN cloud.orders o ON o.customer_id = c.id
WHERE c.signup >= DATE '2023-01-01'
GROUP BY 1, 2
ORDER BY 1, 2;

-- name: split_scalar_cloud_max_in_local_where
SELECT c.id, c.signup, c.region
FROM customers c
WHERE c.signup > (SELECT max(o.ordered_at) FROM cloud.orders o) - 300
ORDER BY c.signup, c.id;

-- name: split_scalar_cloud_in_select
SELECT c.region, count(*) AS n,
       (SELECT count(DISTINCT o.customer_id) FROM cloud.orders o) AS all_buyers,
       (SELECT sum(o.amount) FROM cloud.orders o WHERE o.status = 'pending') AS pending_total
FROM customers c
GROUP BY c.region;

-- name: split_scalar_local_in_cloud_where
SELECT o.status, count(*) AS n, min(o.amount) AS min_amount
FROM cloud.orders o
WHERE o.amount > (SELECT max(c.credit) FROM customers c)
GROUP BY o.status;

-- name: split_scalar_share_of_total
SELECT coalesce(c.region, '?') AS region, sum(o.amount) AS revenue,
       round(sum(o.amount) / (SELECT sum(amount) FROM cloud.orders), 6) AS share
FROM customers c
JOIN cloud.orders o ON o.customer_id = c.id
GROUP BY 1
ORDER BY 1;

-- name: split_scalar_correlated_local_name
SELECT o.id, o.customer_id, (SELECT c.name FROM customers c WHERE c.id = o.customer_id) AS name,
       (SELECT r.label FROM regions r WHERE r.code = (SELECT c.region FROM customers c WHERE c.id = o.customer_id)) AS label
FROM cloud.orders o
WHERE o.id <= 30
ORDER BY o.id;

-- name: split_scalar_cloud_in_having
SELECT c.id, count(*) AS n, sum(o.amount) AS total
FROM customers c
JOIN cloud.orders o ON o.customer_id = c.id
WHERE c.region = 'EU'
GROUP BY c.id
HAVING sum(o.amount) > (SELECT 60 * avg(amount) FROM cloud.orders);

-- name: split_nested_derived_in_derived
SELECT region, count(*) AS customers, max(total) AS max_total, sum(total) AS sum_total
FROM (
    SELECT c.id, c.region, sum(d.amount) AS total
    FROM customers c
    JOIN (SELECT customer_id, amount FROM cloud.orders WHERE status = 'delivered') d ON d.customer_id = c.id
    GROUP BY c.id, c.region
) s
WHERE total > 5000
GROUP BY region;

-- name: split_nested_cloud_two_levels
SELECT c.region, s.n_items, count(*) AS orders, sum(s.units) AS units
FROM (
    SELECT o.customer_id, i.n_items, i.units
    FROM cloud.orders o
    JOIN (SELECT order_id, count(*) AS n_items, sum(quantity) AS units
          FROM cloud.order_items
          GROUP BY order_id) i ON i.order_id = o.id
    WHERE o.ordered_at >= DATE '2025-10-01'
) s
JOIN customers c ON c.id = s.customer_id
GROUP BY c.region, s.n_items;

-- name: split_nested_local_two_levels
SELECT x.region, x.label, count(*) AS orders, sum(o.amount) AS amount
FROM (
    SELECT c.id, c.region, r.label
    FROM (SELECT id, region FROM customers WHERE credit > 900) c
    JOIN regions r ON r.code = c.region
) x
JOIN cloud.orders o ON o.customer_id = x.id
GROUP BY x.region, x.label;

-- name: split_nested_both_sides_aggregated_twice
SELECT band, count(*) AS customers, sum(orders) AS orders
FROM (
    SELECT c.id, CASE WHEN c.credit IS NULL THEN 'none' WHEN c.credit < 500 THEN 'low' ELSE 'high' END AS band,
           s.orders
    FROM (SELECT id, credit FROM customers WHERE region IN ('APAC', 'MEA')) c
    JOIN (SELECT customer_id, sum(n) AS orders
          FROM (SELECT customer_id, status, count(*) AS n FROM cloud.orders GROUP BY customer_id, status) t
          WHERE status IS NOT NULL
          GROUP BY customer_id) s ON s.customer_id = c.id
) z
GROUP BY band
ORDER BY band;

-- name: split_comma_two_cloud_one_local
SELECT c.region, count(*) AS lines, sum(quantity) AS units
FROM customers c, cloud.orders o, cloud.order_items
WHERE order_id = o.id AND customer_id = c.id AND status = 'shipped'
GROUP BY c.region;

-- name: split_comma_three_cloud_vip_revenue
SELECT c.region, category, sum(quantity * price) AS revenue, count(*) AS lines
FROM customers c, cloud.orders o, cloud.order_items, cloud.products p
WHERE order_id = o.id AND product_id = p.id AND customer_id = c.id AND c.vip
GROUP BY c.region, category
ORDER BY c.region NULLS FIRST, category NULLS FIRST;

-- name: split_comma_two_local_two_cloud
SELECT r.label, count(*) AS lines, sum(amount) AS total
FROM regions r, customers c, cloud.orders o, cloud.order_items
WHERE c.region = r.code AND customer_id = c.id AND order_id = o.id
  AND ordered_at BETWEEN DATE '2024-01-01' AND DATE '2024-06-30' AND quantity >= 3
GROUP BY r.label;

-- name: split_comma_cloud_filters_and_or_terms
SELECT c.id, c.name, count(*) AS n, sum(quantity) AS units
FROM customers c, cloud.orders o, cloud.order_items i
WHERE i.order_id = o.id AND customer_id = c.id
  AND (status = 'returned' OR qty IS NULL) AND c.id BETWEEN 100 AND 160
GROUP BY c.id, c.name
ORDER BY c.id;

-- name: split_comma_local_pair_with_cloud
SELECT r.code, sum(goal) AS goal, count(DISTINCT customer_id) AS buyers
FROM regions r, targets t, cloud.orders
WHERE t.region = r.code AND extract(month FROM t.month) = 3
  AND customer_id % 100 = 7 AND status <> 'cancelled'
GROUP BY r.code
ORDER BY r.code;

-- name: split_comma_cloud_group_with_null_discounts
SELECT c.region, count(*) AS lines, count(discount) AS discounted,
       sum(CAST(quantity AS DECIMAL(10,2)) * price) AS gross
FROM customers c, cloud.orders o, cloud.order_items, cloud.products p
WHERE o.id = order_id AND p.id = product_id AND customer_id = c.id
  AND category = 'Toys' AND c.signup >= DATE '2023-01-01'
GROUP BY c.region
ORDER BY c.region NULLS LAST;

-- name: split_comma_correlated_subquery_reads_group_column
SELECT c.id, amount, status
FROM customers c, cloud.orders o, cloud.order_items
WHERE order_id = o.id AND customer_id = c.id AND c.id <= 40
  AND quantity = (SELECT max(quantity) FROM cloud.order_items x WHERE x.order_id = o.id)
ORDER BY c.id, amount, status
LIMIT 50;

-- name: split_comma_date_window_over_split_join
SELECT c.region, date_trunc('quarter', ordered_at) AS q, sum(amount) AS total,
       rank() OVER (PARTITION BY c.region ORDER BY sum(amount) DESC) AS rnk
FROM customers c, cloud.orders o, cloud.order_items
WHERE order_id = o.id AND customer_id = c.id AND product_id < 50
GROUP BY c.region, q
ORDER BY c.region NULLS FIRST, q;

-- name: split_comma_semi_in_local_list
SELECT category, count(*) AS lines
FROM cloud.order_items, cloud.products p, cloud.orders o
WHERE product_id = p.id AND order_id = o.id
  AND customer_id IN (SELECT id FROM customers WHERE vip AND region = 'EU')
GROUP BY category
ORDER BY category NULLS FIRST;

-- name: split_comma_not_in_with_nulls
SELECT count(*) AS n, sum(amount) AS total
FROM cloud.orders o, cloud.order_items
WHERE order_id = o.id AND quantity = 5
  AND customer_id NOT IN (SELECT id FROM customers WHERE region IS NULL OR id % 7 = 0);

-- name: split_inner_join_on_two_cloud_one_local
SELECT c.region, count(*) AS lines, sum(quantity) AS units
FROM customers c
JOIN cloud.orders o ON customer_id = c.id AND status <> 'cancelled'
JOIN cloud.order_items ON order_id = o.id AND quantity > 1
GROUP BY c.region;

-- name: split_inner_join_on_mixed_with_comma
SELECT r.label, category, count(*) AS lines
FROM regions r
JOIN customers c ON c.region = r.code
JOIN cloud.orders o ON customer_id = c.id, cloud.order_items, cloud.products p
WHERE order_id = o.id AND product_id = p.id AND price > 150
GROUP BY r.label, category
ORDER BY r.label, category NULLS FIRST;

-- name: split_inner_join_on_cloud_pair_first
SELECT status, c.vip, count(*) AS n, sum(amount) AS total
FROM cloud.order_items
INNER JOIN cloud.orders o ON o.id = order_id AND ordered_at >= DATE '2025-01-01'
INNER JOIN customers c ON c.id = customer_id
WHERE discount IS NULL
GROUP BY status, c.vip
ORDER BY status, c.vip;

-- name: partial_one_cloud_table_by_local_region
SELECT c.region, count(*) AS n, count(o.qty) AS n_qty, sum(o.amount) AS total,
       min(o.ordered_at) AS first_order, max(o.qty) AS top_qty
FROM customers c, cloud.orders o
WHERE o.customer_id = c.id AND c.vip
GROUP BY c.region
ORDER BY c.region NULLS FIRST;

-- name: partial_cloud_pair_having_and_order_by_aggregate
SELECT c.region, sum(oi.quantity) AS units, count(*) AS lines
FROM customers c, cloud.orders o, cloud.order_items oi
WHERE o.customer_id = c.id AND oi.order_id = o.id AND o.status = 'shipped'
GROUP BY c.region
HAVING sum(oi.quantity) > 100
ORDER BY sum(oi.quantity) DESC, c.region;

-- name: partial_scalar_aggregate_over_an_empty_join
SELECT count(*) AS n, count(o.qty) AS n_qty, sum(o.amount) AS total, max(o.id) AS last_id
FROM customers c, cloud.orders o
WHERE o.customer_id = c.id AND c.id > 5000;

-- name: partial_distinct_and_min_of_the_other_side
SELECT o.status, count(DISTINCT c.region) AS regions, min(c.signup) AS earliest, sum(o.qty) AS qty
FROM customers c JOIN cloud.orders o ON o.customer_id = c.id
GROUP BY o.status
ORDER BY o.status NULLS FIRST;

-- name: partial_expression_in_aggregate_and_grouped_expression
SELECT extract(year FROM o.ordered_at) AS y, c.vip, sum(o.amount * o.qty) AS weighted, count(o.qty) AS n
FROM customers c, cloud.orders o
WHERE o.customer_id = c.id
GROUP BY y, c.vip
ORDER BY y, c.vip;

-- name: partial_local_pair_aggregated_for_the_cloud
SELECT o.status, count(*) AS n, sum(c.credit) AS credit, max(r.tax_rate) AS max_tax
FROM regions r, customers c, cloud.orders o
WHERE c.region = r.code AND o.customer_id = c.id AND o.ordered_at >= DATE '2025-06-01'
GROUP BY o.status
ORDER BY o.status NULLS FIRST;

-- name: partial_refused_for_avg_and_ordered_string_agg
SELECT c.region, avg(o.amount) AS mean, string_agg(o.status, ',' ORDER BY o.id) AS statuses, sum(o.qty) AS qty
FROM customers c, cloud.orders o
WHERE o.customer_id = c.id AND c.id <= 3
GROUP BY c.region
ORDER BY c.region NULLS FIRST;

-- name: partial_three_cloud_tables_group_by_local_and_cloud_columns
SELECT c.vip, p.category, sum(oi.quantity) AS units, min(p.price) AS cheapest, count(*) AS lines
FROM customers c, cloud.orders o, cloud.order_items oi, cloud.products p
WHERE o.customer_id = c.id AND oi.order_id = o.id AND oi.product_id = p.id AND c.region = 'EU'
GROUP BY c.vip, p.category
ORDER BY c.vip, p.category NULLS FIRST;

-- name: existence_only_exists_and_not_in_cross_distinct
SELECT c.region, count(*) AS n
FROM customers c
WHERE EXISTS (SELECT 1 FROM cloud.orders o WHERE o.customer_id = c.id AND o.status = 'returned')
  AND c.id NOT IN (SELECT customer_id FROM cloud.orders WHERE qty = 10 AND customer_id IS NOT NULL)
GROUP BY c.region
ORDER BY c.region NULLS FIRST;

-- name: existence_only_not_in_with_null_keys
SELECT count(*) AS n
FROM customers c
WHERE c.id NOT IN (SELECT customer_id FROM cloud.orders WHERE qty = 10);

-- name: existence_intersect_all_counts_duplicates
SELECT customer_id FROM cloud.orders WHERE customer_id <= 30 AND status = 'shipped'
INTERSECT ALL
SELECT c.id FROM customers c, regions r, targets t
WHERE c.region = r.code AND t.region = r.code AND c.id <= 30 AND t.month < DATE '2024-04-01'
ORDER BY 1;

-- name: partial_integer_sum_keeps_hugeint_semantics
SELECT c.region, sum(o.qty) // 3 AS third, gcd(sum(o.qty), 6) AS g, sum(o.qty) % 7 AS r
FROM customers c, cloud.orders o
WHERE o.customer_id = c.id AND c.id <= 400
GROUP BY c.region
ORDER BY c.region NULLS FIRST;

-- name: partial_refused_for_max_top_n
SELECT c.vip, max(o.qty, 3) AS top_qty, min(o.amount, 2) AS low_amounts, count(*) AS n
FROM customers c, cloud.orders o
WHERE o.customer_id = c.id AND c.id <= 50
GROUP BY c.vip
ORDER BY c.vip;

-- name: partial_empty_group_crossed_sends_no_row
SELECT count(*) AS n, max(o.qty) AS top_qty, sum(c.credit) AS credit
FROM customers c, cloud.orders o
WHERE c.id > 5000;

-- name: partial_refused_for_outer_aggregate_in_subquery
SELECT c.region, count(*) AS n, (SELECT sum(o.qty)) AS qty
FROM customers c, cloud.orders o
WHERE o.customer_id = c.id AND c.id <= 100
GROUP BY c.region
ORDER BY c.region NULLS FIRST;

-- name: partial_group_takes_a_cloud_in_subquery_term
SELECT c.region, count(*) AS lines, sum(oi.quantity) AS units
FROM customers c, cloud.orders o, cloud.order_items oi
WHERE o.customer_id = c.id AND oi.order_id = o.id
  AND o.id IN (SELECT order_id FROM cloud.order_items GROUP BY order_id HAVING sum(quantity) > 8)
GROUP BY c.region
ORDER BY c.region NULLS FIRST;

-- name: split_group_takes_a_correlated_exists_on_its_own_relation
SELECT c.vip, count(*) AS n, sum(o.amount) AS total
FROM customers c, cloud.orders o
WHERE o.customer_id = c.id
  AND EXISTS (SELECT 1 FROM cloud.order_items oi WHERE oi.order_id = o.id AND oi.quantity = 5)
GROUP BY c.vip
ORDER BY c.vip;

-- name: split_correlated_exists_on_the_other_side_stays
SELECT c.region, count(*) AS n
FROM customers c, cloud.orders o
WHERE o.customer_id = c.id
  AND EXISTS (SELECT 1 FROM cloud.order_items oi WHERE oi.order_id = o.id AND oi.quantity > c.id % 5)
GROUP BY c.region
ORDER BY c.region NULLS FIRST;

-- name: split_on_term_binds_outside_its_join
SELECT x.oid, x.label,
       (SELECT max(c.id)
        FROM customers c
        JOIN targets t ON t.region = c.region AND length(c.name) > length(label) + 6
        JOIN regions r ON r.code = c.region, cloud.products p
        WHERE p.id = 1) AS n
FROM (SELECT id AS oid, status AS label FROM cloud.orders WHERE id <= 12) x
ORDER BY x.oid;

-- name: partial_in_a_correlated_scalar_subquery
SELECT x.oid, x.label,
       (SELECT count(*)
        FROM customers c
        JOIN targets t ON t.region = c.region AND length(c.name) > length(x.label) + 6, cloud.products p
        WHERE p.id = 1) AS n
FROM (SELECT id AS oid, status AS label FROM cloud.orders WHERE id <= 12) x
ORDER BY x.oid;

-- name: split_on_term_name_of_two_later_tables_binds_outside
SELECT x.oid, x.name,
       (SELECT count(*)
        FROM targets t
        JOIN regions r ON r.code = t.region AND length(name) > 7
        JOIN customers c ON c.region = t.region, cloud.products p
        WHERE p.id = 1) AS n
FROM (SELECT id AS oid, status AS name FROM cloud.orders WHERE id <= 6) x
ORDER BY x.oid;

-- name: split_on_term_reads_an_item_before_the_comma
SELECT count(*) AS n
FROM cloud.products p, targets t
JOIN regions r ON r.code = t.region AND length(name) > 12, customers c
WHERE c.region = t.region AND p.id <= 3;

-- name: negative_literals_in_pushed_filters
SELECT c.region, count(*) AS n, sum(o.amount) AS total
FROM customers c JOIN cloud.orders o ON o.customer_id = c.id
WHERE c.credit > -1.5 AND c.id BETWEEN 100 AND 100 + 2 * 100 AND o.amount > -100
GROUP BY c.region
ORDER BY c.region NULLS LAST;

-- name: a_subquery_names_a_column_nothing_reads
SELECT x.id, count(*) AS n, sum(o.amount) AS total
FROM (SELECT c.id, c.name AS unread FROM customers c WHERE c.id < 40) x
JOIN cloud.orders o ON o.customer_id = x.id
GROUP BY x.id
ORDER BY x.id;

-- name: one_local_table_read_twice_alike
SELECT a.region, count(*) AS n, sum(o.amount) AS total
FROM customers a
JOIN cloud.orders o ON o.customer_id = a.id
JOIN customers b ON b.id = a.id AND b.region = a.region
GROUP BY a.region
ORDER BY a.region NULLS LAST;

-- name: mixed_local_relations_in_two_parts_around_a_cloud_fact
SELECT r.label, t.month, count(*) AS n, sum(o.amount) AS total, sum(t.goal) AS goals
FROM cloud.orders o, customers c, regions r, targets t
WHERE o.customer_id = c.id AND c.region = r.code AND r.tax_rate > 0.06
  AND t.month = date_trunc('month', o.ordered_at) AND t.region = 'EU'
GROUP BY r.label, t.month
ORDER BY r.label, t.month;

-- name: constants_left_behind_by_an_upload_of_pinned_columns
-- The filters hold region to two values and vip to one, and nothing else reads
-- them: an upload of customers may leave them behind and the query read them back as values.
SELECT c.name, count(*) AS orders, sum(o.amount) AS total
FROM customers c JOIN cloud.orders o ON o.customer_id = c.id
WHERE c.region IN ('EU', 'NA') AND c.vip = false
GROUP BY c.name
ORDER BY c.name;

-- name: a_date_constant_left_behind
SELECT o.status, count(*) AS orders
FROM customers c JOIN cloud.orders o ON o.customer_id = c.id
WHERE c.signup = DATE '2022-01-03'
GROUP BY ALL
ORDER BY ALL;

-- name: constants_not_left_where_the_query_reads_them
-- credit is returned, and its filter is one side of an OR: it crosses as it is.
SELECT c.id, c.credit, count(o.id) AS orders
FROM customers c LEFT JOIN cloud.orders o ON o.customer_id = c.id
WHERE c.credit = 12.34 OR c.id < 40
GROUP BY c.id, c.credit
HAVING count(o.id) >= 0
ORDER BY c.id;

-- name: constant_and_like_on_one_column
SELECT count(*) AS orders
FROM customers c JOIN cloud.orders o ON o.customer_id = c.id
WHERE c.region = 'EU' AND c.region LIKE 'E%' AND o.status = 'shipped';

-- name: union_branches_each_aggregated_where_they_live
-- Each branch reads one side: it may run there and only its groups cross. The cloud's branch
-- names no column (the union pairs columns by position).
SELECT 'local' AS src, CAST(id % 4 AS VARCHAR) AS k, count(*) AS n, sum(credit) AS total
FROM customers GROUP BY id % 4
UNION ALL
SELECT 'cloud', status, count(*), sum(amount) FROM cloud.orders WHERE qty > 3 GROUP BY status
ORDER BY src, k NULLS FIRST;

-- name: intersect_all_of_branches_on_both_sides
SELECT customer_id % 10 AS k FROM cloud.orders WHERE amount > 900
INTERSECT ALL
SELECT id % 10 FROM customers WHERE vip
ORDER BY k;

-- name: except_all_branch_with_having_and_distinct
SELECT DISTINCT region FROM customers WHERE region IS NOT NULL
EXCEPT ALL
SELECT CASE WHEN customer_id % 2 = 0 THEN 'NA' ELSE 'EU' END FROM cloud.orders
GROUP BY customer_id HAVING count(*) > 30;

-- name: union_by_name_keeps_branch_names
SELECT id AS k, name AS label FROM customers WHERE id < 5
UNION ALL BY NAME
SELECT code AS label, 99 AS k FROM regions
UNION ALL BY NAME
SELECT customer_id AS k, status AS label FROM cloud.orders WHERE id < 4
ORDER BY k, label;

-- name: union_three_branches_in_a_cte_joined_local
WITH ids AS (
    SELECT id AS cid FROM customers WHERE region = 'EU'
    UNION
    SELECT customer_id FROM cloud.orders WHERE amount > 998
    UNION
    SELECT customer_id FROM cloud.orders WHERE qty IS NULL AND id < 300
)
SELECT c.region, count(*) AS n FROM ids JOIN customers c ON c.id = ids.cid
GROUP BY c.region ORDER BY c.region NULLS FIRST;

-- name: union_branch_with_window_and_parenthesized_limit
SELECT id, rank() OVER (ORDER BY credit DESC NULLS LAST, id) AS r FROM customers WHERE id < 20
UNION ALL
(SELECT customer_id, count(*) FROM cloud.orders WHERE customer_id < 20 GROUP BY customer_id ORDER BY customer_id LIMIT 5)
UNION ALL
SELECT customer_id, row_number() OVER (ORDER BY id) FROM cloud.orders WHERE id < 6
ORDER BY 1, 2;

-- name: union_branch_null_typed_by_the_other_branch
-- DuckDB types the cloud branch's NULL from the local branch's BOOLEAN: read apart, the NULL
-- would be an INTEGER and the union's column INTEGER (true and false as 1 and 0).
SELECT region, bool_or(vip) AS any_vip, count(*) AS n FROM customers GROUP BY region
UNION ALL
SELECT status, NULL, count(*) FROM cloud.orders GROUP BY status
ORDER BY region NULLS FIRST, n;

-- name: union_all_in_a_cte_read_in_part
-- The consumer reads two of the union's three columns; DuckDB still reads all of each branch.
WITH c AS (
    SELECT 'local' AS src, region AS k, count(*) AS n FROM customers GROUP BY region
    UNION ALL
    SELECT 'cloud', status, count(*) FROM cloud.orders GROUP BY status
)
SELECT src, sum(n) AS n FROM c GROUP BY src ORDER BY src;

-- name: union_ordered_by_a_later_branchs_column
SELECT region, count(*) AS n FROM customers GROUP BY region
UNION ALL
SELECT status, count(*) FROM cloud.orders GROUP BY status
ORDER BY status NULLS FIRST, n;

-- name: union_branch_null_through_a_derived_table
-- The NULL reaches the branch's output through a derived table (and a CASE): DuckDB still
-- types it from the other branch.
SELECT region, bool_or(vip) AS any_vip FROM customers GROUP BY region
UNION ALL
SELECT status, v FROM (SELECT status, NULL AS v FROM cloud.orders WHERE qty > 8) o
UNION ALL
SELECT status, CASE WHEN qty > 100 THEN NULL END FROM cloud.orders WHERE id < 3
ORDER BY region NULLS FIRST, any_vip NULLS FIRST;

-- name: union_branch_names_in_mixed_case
SELECT Region, count(*) AS "N", 'local' AS Src FROM customers GROUP BY Region
UNION ALL
SELECT status, count(*), 'cloud' FROM cloud.orders GROUP BY status
ORDER BY Src, Region NULLS FIRST;

-- name: union_branch_of_literals_leaves_its_subquery_to_split
-- The cloud branch outputs only literals, so its result cannot be read again in its place;
-- the subquery inside it still runs where its data lives.
SELECT region AS k, count(*) AS n FROM customers GROUP BY region
UNION ALL
SELECT 'orders', 1 FROM (SELECT count(*) AS c FROM cloud.orders WHERE qty > 5) x WHERE c > 0
ORDER BY k NULLS FIRST;

-- name: cte_read_under_two_filters_moves_rows_either_keeps
-- The CTE's local customers are read once for EU and once for a credit range: the bridge
-- moves the rows either filter keeps (their OR), and each read filters again.
WITH spend AS (
    SELECT c.region, c.credit, c.id, sum(o.amount) AS total, count(*) AS n
    FROM customers c JOIN cloud.orders o ON o.customer_id = c.id
    GROUP BY c.region, c.credit, c.id
)
SELECT a.id, a.total, b.id AS other, b.n
FROM spend a JOIN spend b ON a.n = b.n
WHERE a.region = 'EU' AND b.credit BETWEEN 100 AND 120
ORDER BY a.id, other
LIMIT 200;

-- name: cte_read_under_null_aware_filters
-- One read keeps NULL regions, the other a region: a row whose first filter is NULL is kept
-- only when the other holds.
WITH per_region AS (
    SELECT c.region, c.vip, count(o.id) AS orders, sum(o.qty) AS qty
    FROM customers c LEFT JOIN cloud.orders o ON o.customer_id = c.id
    GROUP BY c.region, c.vip
)
SELECT 'unknown' AS which, vip, orders, qty FROM per_region WHERE region IS NULL
UNION ALL
SELECT 'apac', vip, orders, qty FROM per_region WHERE region = 'APAC' AND vip
ORDER BY which, vip;

-- name: cte_read_by_a_correlated_count_moves_unfiltered
-- The count reads every customer the CTE holds, whatever the outer reads keep: the
-- customers cross unfiltered (they once crossed filtered by the outer reads' regions).
WITH c AS (SELECT id, region, credit FROM customers)
SELECT a.id, o.amount, (SELECT count(*) FROM c x WHERE x.credit > a.credit) AS richer
FROM c a JOIN cloud.orders o ON o.customer_id = a.id
WHERE a.region = 'EU' AND o.amount > 900
ORDER BY a.id, o.amount
LIMIT 100;

-- name: cte_of_tagged_branches_read_once_per_tag
-- DataFusion pushes each read's tag into the branches (`'a' = 'b'`): the customers move
-- filtered by what their reads share, and each read keeps its own branch.
WITH t AS (
    SELECT 'a' AS kind, c.id, c.region FROM customers c WHERE c.credit > 500
    UNION ALL
    SELECT 'b', c.id, c.region FROM customers c WHERE c.vip
)
SELECT x.id, x.region, y.region AS other, count(o.id) AS n
FROM t x JOIN t y ON x.id = y.id JOIN cloud.orders o ON o.customer_id = x.id
WHERE x.kind = 'a' AND y.kind = 'b'
GROUP BY x.id, x.region, y.region
ORDER BY x.id, other
LIMIT 100;

-- name: cte_read_by_a_semi_join_and_a_correlated_count
-- The semi-join needs only distinct regions; the count needs every customer: the customers
-- cross whole, duplicates and all, and are not cut to the orders' keys.
WITH c AS (SELECT region FROM customers)
SELECT o.id, o.qty, (SELECT count(*) FROM c x WHERE length(x.region) < o.qty) AS n
FROM cloud.orders o
WHERE o.customer_id IN (SELECT length(region) FROM c)
ORDER BY o.id
LIMIT 50;

-- name: correlated_exists_with_an_offset_counts_duplicates
-- DataFusion drops the OFFSET when it makes the EXISTS a semi-join; DuckDB skips a row by
-- count, so the orders must cross with their duplicates.
SELECT c.id, c.name FROM customers c
WHERE EXISTS (SELECT 1 FROM cloud.orders o WHERE o.customer_id = c.id OFFSET 1)
ORDER BY c.id;

-- name: exponent_literals_are_doubles
-- DuckDB reads 2.9999999999999999e0 as the DOUBLE 3.0 (and 1e3 as a DOUBLE); DataFusion as
-- exact decimals: no filter it pushed over them may decide which rows cross.
SELECT count(*) AS n, sum(o.qty) AS qty, count(*) FILTER (WHERE o.amount > 1e3) AS big
FROM cloud.orders o JOIN customers c ON c.id = o.customer_id
WHERE o.qty <= 2.9999999999999999e0 AND c.credit < 0.1e0 * 5000;

-- name: bare_decimal_casts_round_to_three_places
-- DECIMAL without a precision is DECIMAL(18,3) to DuckDB: the bound rounds to 100.000.
SELECT count(*) AS n, min(o.amount) AS lowest
FROM cloud.orders o JOIN customers c ON c.id = o.customer_id
WHERE o.amount >= CAST('100.0004' AS DECIMAL) AND c.credit <= 99.9996::NUMERIC;

-- name: whole_row_reference_keeps_every_column
-- A relation's name alone is its whole row (a STRUCT of every column).
SELECT o.id, c FROM cloud.orders o JOIN customers c ON c.id = o.customer_id
ORDER BY o.id
LIMIT 20;
