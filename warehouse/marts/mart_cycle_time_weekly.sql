-- Weekly cycle-time review, part 2: cases completed (approved or denied) in the week, by
-- service and product line against the standard, per customer segment.
-- Parameters: :period_start, :start_day (inclusive), :end_day (exclusive): the ISO week.
-- Portable between DuckDB and PostgreSQL.
-- case_customer_history: each case's customer_history (first_time / returning), from its
-- customer's earliest case receipt or contact, for the cases the periods being rebuilt can name
-- (filled once per run with customer_first_seen by pipelines.insight.marts.fill_first_seen;
-- joined as a table, not a CTE: PostgreSQL plans a CTE named twice without its statistics).
WITH kinds AS (
    SELECT segment_kind
    FROM (VALUES ('all'), ('customer_type'), ('language'), ('region'), ('customer_history')) AS k(segment_kind)
),
completed AS (
    SELECT c.service_id, c.journey_id, c.product_line, c.standard_days, c.cycle_days, c.over_standard,
           c.customer_type, c.language, c.region,
           COALESCE(h.customer_history, 'unknown') AS customer_history
    FROM fact_case c
    LEFT JOIN case_customer_history h ON h.case_key = c.case_key
    WHERE c.decided_date >= :start_day AND c.decided_date < :end_day
      AND c.status IN ('approved', 'denied')
)
SELECT CAST(:period_start AS DATE) AS period_start, x.service_id, x.journey_id, x.product_line,
       k.segment_kind,
       CASE k.segment_kind WHEN 'all' THEN 'all'
            WHEN 'customer_type' THEN COALESCE(x.customer_type, 'unknown')
            WHEN 'language' THEN COALESCE(x.language, 'unknown')
            WHEN 'region' THEN COALESCE(x.region, 'unknown')
            ELSE x.customer_history END AS segment,
       MAX(x.standard_days) AS standard_days,
       COUNT(*) AS cases_completed,
       AVG(x.cycle_days) AS mean_cycle_days,
       PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY x.cycle_days) AS median_cycle_days,
       AVG(x.cycle_days) - MAX(x.standard_days) AS mean_days_vs_standard,
       100.0 * COUNT(*) FILTER (WHERE x.over_standard) / COUNT(*) AS pct_over_standard
FROM completed x CROSS JOIN kinds k
GROUP BY 1, 2, 3, 4, 5, 6
