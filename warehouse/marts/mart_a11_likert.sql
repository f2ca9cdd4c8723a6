-- A-11 answers per fiscal quarter, service, stage, channel and item at each point of the
-- 1-5 scale (the older OMB per-question format), per customer segment.
-- Parameters: :period_start, :start_day, :end_day (the quarter), :fiscal_year, :fiscal_quarter.
-- Portable between DuckDB and PostgreSQL.
WITH first_seen AS (
    SELECT customer_key, MIN(first_at) AS first_at
    FROM (
        SELECT customer_key, received_at AS first_at FROM fact_case WHERE customer_key IS NOT NULL
        UNION ALL
        SELECT customer_key, start_time FROM fact_contact WHERE customer_key IS NOT NULL
    ) activity
    GROUP BY customer_key
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
       COUNT(a.score) AS answered,
       COUNT(*) FILTER (WHERE a.score = 1) AS count_1,
       COUNT(*) FILTER (WHERE a.score = 2) AS count_2,
       COUNT(*) FILTER (WHERE a.score = 3) AS count_3,
       COUNT(*) FILTER (WHERE a.score = 4) AS count_4,
       COUNT(*) FILTER (WHERE a.score = 5) AS count_5,
       100.0 * COUNT(*) FILTER (WHERE a.score >= 4) / NULLIF(COUNT(a.score), 0) AS pct_agree
FROM answers a CROSS JOIN kinds k
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
