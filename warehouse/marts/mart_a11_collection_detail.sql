-- A-11 Section 280 collection-detail volumes per fiscal quarter, service, stage and channel.
-- The post-transaction survey is offered at the decision: every case decided (approved or
-- denied) in the quarter sends one invitation, so
--   volume_offered       = cases decided in the quarter,
--   volume_of_customers  = distinct customers among them,
--   volume_of_respondents = survey responses submitted in the quarter,
-- at the journey's case-decided stage (which is the stage the catalog's survey forms ask about).
-- Parameters: :period_start, :start_day, :end_day (the quarter), :fiscal_year, :fiscal_quarter.
-- Portable between DuckDB and PostgreSQL.
-- case_customer_history: each case's customer_history (first_time / returning), from its
-- customer's earliest case receipt or contact, for the cases the periods being rebuilt can name
-- (filled once per run with customer_first_seen by pipelines.insight.marts.fill_first_seen;
-- joined as a table, not a CTE: PostgreSQL plans a CTE named twice without its statistics).
WITH kinds AS (
    SELECT segment_kind
    FROM (VALUES ('all'), ('customer_type'), ('language'), ('region'), ('customer_history')) AS k(segment_kind)
),
decided AS (
    SELECT c.service_id, c.journey_id, j.stage, COALESCE(c.channel, 'unknown') AS channel,
           c.customer_key, c.customer_type, c.language, c.region,
           COALESCE(h.customer_history, 'unknown') AS customer_history
    FROM fact_case c
    JOIN dim_journey j ON j.journey_id = c.journey_id AND j.is_case_decided_stage
    LEFT JOIN case_customer_history h ON h.case_key = c.case_key
    WHERE c.decided_date >= :start_day AND c.decided_date < :end_day
      AND c.status IN ('approved', 'denied') AND c.service_id <> 'unmapped'
),
responses AS (
    SELECT r.service_id, r.journey_id, r.stage, COALESCE(r.channel, 'unknown') AS channel,
           r.customer_type, r.language, r.region,
           COALESCE(h.customer_history, 'unknown') AS customer_history
    FROM fact_survey_response r
    LEFT JOIN case_customer_history h ON h.case_key = r.case_key
    WHERE r.response_date >= :start_day AND r.response_date < :end_day AND r.service_id <> 'unmapped'
),
-- cases per customer and segment first, then the customers counted: a COUNT(DISTINCT) made
-- PostgreSQL sort the quarter's decided cases five times over instead of hashing them
customer_cases AS (
    SELECT x.service_id, x.journey_id, x.stage, x.channel, k.segment_kind,
           CASE k.segment_kind WHEN 'all' THEN 'all'
                WHEN 'customer_type' THEN COALESCE(x.customer_type, 'unknown')
                WHEN 'language' THEN COALESCE(x.language, 'unknown')
                WHEN 'region' THEN COALESCE(x.region, 'unknown')
                ELSE x.customer_history END AS segment,
           x.customer_key, COUNT(*) AS cases
    FROM decided x CROSS JOIN kinds k
    GROUP BY 1, 2, 3, 4, 5, 6, 7
),
offered AS (
    SELECT service_id, journey_id, stage, channel, segment_kind, segment,
           COUNT(customer_key) AS volume_of_customers,
           CAST(SUM(cases) AS BIGINT) AS volume_offered
    FROM customer_cases
    GROUP BY 1, 2, 3, 4, 5, 6
),
-- responses counted per combination of segment values first, then added up per segment kind
-- (integer counts: the sums equal counting again; every response five times was sorted on disk)
response_counts AS (
    SELECT service_id, journey_id, stage, channel, customer_type, language, region, customer_history,
           COUNT(*) AS responses
    FROM responses
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
),
responded AS (
    SELECT x.service_id, x.journey_id, x.stage, x.channel, k.segment_kind,
           CASE k.segment_kind WHEN 'all' THEN 'all'
                WHEN 'customer_type' THEN COALESCE(x.customer_type, 'unknown')
                WHEN 'language' THEN COALESCE(x.language, 'unknown')
                WHEN 'region' THEN COALESCE(x.region, 'unknown')
                ELSE x.customer_history END AS segment,
           CAST(SUM(x.responses) AS BIGINT) AS volume_of_respondents
    FROM response_counts x CROSS JOIN kinds k
    GROUP BY 1, 2, 3, 4, 5, 6
),
keys AS (
    SELECT service_id, journey_id, stage, channel, segment_kind, segment FROM offered
    UNION SELECT service_id, journey_id, stage, channel, segment_kind, segment FROM responded
)
SELECT CAST(:period_start AS DATE) AS period_start,
       CAST(:fiscal_year AS INTEGER) AS fiscal_year,
       CAST(:fiscal_quarter AS INTEGER) AS fiscal_quarter,
       g.service_id, g.journey_id, g.stage, g.channel, g.segment_kind, g.segment,
       COALESCE(o.volume_of_customers, 0) AS volume_of_customers,
       COALESCE(o.volume_offered, 0) AS volume_offered,
       COALESCE(r.volume_of_respondents, 0) AS volume_of_respondents
FROM keys g
LEFT JOIN offered o ON o.service_id = g.service_id AND o.journey_id = g.journey_id AND o.stage = g.stage
    AND o.channel = g.channel AND o.segment_kind = g.segment_kind AND o.segment = g.segment
LEFT JOIN responded r ON r.service_id = g.service_id AND r.journey_id = g.journey_id AND r.stage = g.stage
    AND r.channel = g.channel AND r.segment_kind = g.segment_kind AND r.segment = g.segment
