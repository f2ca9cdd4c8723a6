-- Weekly cycle-time review, part 1: every case still in process at the end of the review date
-- that is older than its service's standard, with its age and days over.
-- A case was in process at :as_of (midnight after :review_date) when it had been received
-- before then and neither decided nor withdrawn before then: fact_case is an accumulating
-- snapshot, so a later decision (decided_at) or withdrawal (its last update) is known.
-- Age counts calendar days (UTC) from receipt to the review date, like cycle_days.
-- Parameters: :period_start (the week's Monday), :review_date, :as_of.
-- Portable between DuckDB and PostgreSQL.
-- case_customer_history: each case's customer_history (first_time / returning), from its
-- customer's earliest case receipt or contact, for the cases the periods being rebuilt can name
-- (filled once per run with customer_first_seen by pipelines.insight.marts.fill_first_seen;
-- joined as a table, not a CTE: PostgreSQL plans a CTE named twice without its statistics).
WITH in_process AS (
    SELECT c.case_key, c.service_id, c.journey_id, c.product_line, c.office, c.channel,
           c.customer_type, c.language, c.region,
           COALESCE(h.customer_history, 'unknown') AS customer_history,
           c.received_date, c.standard_days,
           CAST(:review_date AS DATE) - c.received_date AS age_days
    FROM fact_case c
    LEFT JOIN case_customer_history h ON h.case_key = c.case_key
    WHERE c.received_at < :as_of
      AND c.standard_days IS NOT NULL
      AND (c.decided_at IS NULL OR c.decided_at >= :as_of)
      -- implied by the line above; lets PostgreSQL find the few such cases by index
      AND (c.decided_date IS NULL OR c.decided_date >= CAST(:review_date AS DATE))
      AND NOT (c.status = 'withdrawn' AND c.updated_at < :as_of)
)
SELECT CAST(:period_start AS DATE) AS period_start, CAST(:review_date AS DATE) AS review_date,
       case_key, service_id, journey_id, product_line, office, channel,
       customer_type, language, region, customer_history,
       received_date, age_days, standard_days, age_days - standard_days AS days_over,
       CASE WHEN age_days - standard_days <= 30 THEN '1-30'
            WHEN age_days - standard_days <= 60 THEN '31-60' ELSE '61+' END AS days_over_band
FROM in_process
WHERE age_days > standard_days
