-- A-11 answers per fiscal quarter, service, stage, channel and item at each point of the
-- 1-5 scale (the older OMB per-question format), per customer segment.
-- Parameters: :period_start, :start_day, :end_day (the quarter), :fiscal_year, :fiscal_quarter.
-- Portable between DuckDB and PostgreSQL.
-- first_seen: each customer's earliest case receipt or contact, for the customers the periods
-- being rebuilt can name (filled once per run by pipelines.insight.marts.fill_first_seen).
WITH first_seen AS (
    SELECT customer_key, first_at FROM customer_first_seen
),
kinds AS (
    SELECT segment_kind
    FROM (VALUES ('all'), ('customer_type'), ('language'), ('region'), ('customer_history')) AS k(segment_kind)
),
items AS (
    SELECT item
    FROM (VALUES ('trust'), ('satisfaction'), ('effectiveness'), ('ease'), ('efficiency'),
                 ('transparency'), ('humanity'), ('employee')) AS i(item)
),
responses AS (
    SELECT r.service_id, r.journey_id, r.stage, COALESCE(r.channel, 'unknown') AS channel,
           r.trust, r.satisfaction, r.effectiveness, r.ease, r.efficiency, r.transparency, r.humanity,
           r.employee, r.customer_type, r.language, r.region,
           CASE WHEN c.customer_key IS NULL THEN 'unknown'
                WHEN f.first_at < c.received_at THEN 'returning' ELSE 'first_time' END AS customer_history
    FROM fact_survey_response r
    LEFT JOIN fact_case c ON c.case_key = r.case_key
    LEFT JOIN first_seen f ON f.customer_key = c.customer_key
    WHERE r.response_date >= :start_day AND r.response_date < :end_day AND r.service_id <> 'unmapped'
),
answers AS (
    SELECT x.service_id, x.journey_id, x.stage, x.channel, x.customer_type, x.language, x.region,
           x.customer_history, i.item,
           CASE i.item WHEN 'trust' THEN x.trust WHEN 'satisfaction' THEN x.satisfaction
                WHEN 'effectiveness' THEN x.effectiveness WHEN 'ease' THEN x.ease
                WHEN 'efficiency' THEN x.efficiency WHEN 'transparency' THEN x.transparency
                WHEN 'humanity' THEN x.humanity ELSE x.employee END AS score
    FROM responses x CROSS JOIN items i
),
-- Counted per combination of segment values first, then added up per segment: the counts are
-- integers, so the sums equal counting again, and the rows multiplied by the segment kinds
-- are a few thousand instead of every answer five times.
counted AS (
    SELECT service_id, journey_id, stage, channel, customer_type, language, region, customer_history,
           item,
           COUNT(score) AS answered,
           COUNT(*) FILTER (WHERE score = 1) AS count_1,
           COUNT(*) FILTER (WHERE score = 2) AS count_2,
           COUNT(*) FILTER (WHERE score = 3) AS count_3,
           COUNT(*) FILTER (WHERE score = 4) AS count_4,
           COUNT(*) FILTER (WHERE score = 5) AS count_5
    FROM answers
    GROUP BY service_id, journey_id, stage, channel, customer_type, language, region, customer_history, item
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
FROM counted a CROSS JOIN kinds k
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
