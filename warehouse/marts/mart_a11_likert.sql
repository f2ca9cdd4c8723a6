-- A-11 answers per fiscal quarter, service, stage, channel and item at each point of the
-- 1-5 scale (the older OMB per-question format), per customer segment: the quarter's days of
-- agg_likert_daily added up (integer counts: the sums equal counting again).
-- Parameters: :period_start, :start_day, :end_day (the quarter), :fiscal_year, :fiscal_quarter.
-- Portable between DuckDB and PostgreSQL.
WITH kinds AS (
    SELECT segment_kind
    FROM (VALUES ('all'), ('customer_type'), ('language'), ('region'), ('customer_history')) AS k(segment_kind)
)
SELECT CAST(:period_start AS DATE) AS period_start,
       CAST(:fiscal_year AS INTEGER) AS fiscal_year,
       CAST(:fiscal_quarter AS INTEGER) AS fiscal_quarter,
       a.service_id, a.journey_id, a.stage, a.channel, k.segment_kind,
       CASE k.segment_kind WHEN 'all' THEN 'all'
            WHEN 'customer_type' THEN COALESCE(a.customer_type, 'unknown')
            WHEN 'language' THEN COALESCE(a.language, 'unknown')
            WHEN 'region' THEN COALESCE(a.region, 'unknown')
            ELSE a.customer_history END AS segment,
       a.item,
       CAST(SUM(a.answered) AS BIGINT) AS answered,
       CAST(SUM(a.count_1) AS BIGINT) AS count_1,
       CAST(SUM(a.count_2) AS BIGINT) AS count_2,
       CAST(SUM(a.count_3) AS BIGINT) AS count_3,
       CAST(SUM(a.count_4) AS BIGINT) AS count_4,
       CAST(SUM(a.count_5) AS BIGINT) AS count_5,
       100.0 * CAST(SUM(a.count_4 + a.count_5) AS BIGINT) / NULLIF(CAST(SUM(a.answered) AS BIGINT), 0)
           AS pct_agree
FROM agg_likert_daily a CROSS JOIN kinds k
WHERE a.date_day >= :start_day AND a.date_day < :end_day
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
