-- O and X per day, service and customer segment, in long form (segment_kind, segment),
-- so that gaps between communities show next to each other.
-- Sentiment means add VADER's four-decimal scores as exact integers, so that a rerun gives
-- identical bits whatever order a parallel aggregate met the rows in.
-- Parameters: :start_day (inclusive), :end_day (exclusive). Portable between DuckDB and PostgreSQL.
-- customer_history: 'returning' when the customer already had a case received or a contact
-- before the case the record is about (before the contact itself when it names no known case).
-- case_customer_history: each case's customer_history (first_time / returning), from its
-- customer's earliest case receipt or contact, for the cases the periods being rebuilt can name
-- (filled once per run with customer_first_seen by pipelines.insight.marts.fill_first_seen;
-- joined as a table, not a CTE: PostgreSQL plans a CTE named twice without its statistics).
WITH kinds AS (
    SELECT segment_kind
    FROM (VALUES ('all'), ('customer_type'), ('language'), ('region'), ('customer_history')) AS k(segment_kind)
),
cases AS (
    SELECT c.service_id, c.journey_id, c.received_date, c.decided_date, c.status, c.cycle_days,
           c.over_standard, c.customer_type, c.language, c.region,
           COALESCE(h.customer_history, 'unknown') AS customer_history
    FROM fact_case c
    LEFT JOIN case_customer_history h ON h.case_key = c.case_key
    WHERE (c.received_date >= :start_day AND c.received_date < :end_day)
       OR (c.decided_date >= :start_day AND c.decided_date < :end_day)
),
responses AS (
    SELECT r.response_date, r.service_id, r.journey_id, r.trust, r.satisfaction, r.comment_sentiment,
           r.customer_type, r.language, r.region,
           h.customer_history IS NULL AS unknown_customer,
           COALESCE(h.customer_history = 'returning', FALSE) AS returning_customer
    FROM fact_survey_response r
    LEFT JOIN case_customer_history h ON h.case_key = r.case_key
    WHERE r.response_date >= :start_day AND r.response_date < :end_day
),
received AS (
    SELECT x.received_date AS date_day, x.service_id, x.journey_id, k.segment_kind,
           CASE k.segment_kind WHEN 'all' THEN 'all'
                WHEN 'customer_type' THEN COALESCE(x.customer_type, 'unknown')
                WHEN 'language' THEN COALESCE(x.language, 'unknown')
                WHEN 'region' THEN COALESCE(x.region, 'unknown')
                ELSE x.customer_history END AS segment,
           COUNT(*) AS cases_received
    FROM cases x CROSS JOIN kinds k
    WHERE x.received_date >= :start_day AND x.received_date < :end_day
    GROUP BY 1, 2, 3, 4, 5
),
decided AS (
    SELECT x.decided_date AS date_day, x.service_id, x.journey_id, k.segment_kind,
           CASE k.segment_kind WHEN 'all' THEN 'all'
                WHEN 'customer_type' THEN COALESCE(x.customer_type, 'unknown')
                WHEN 'language' THEN COALESCE(x.language, 'unknown')
                WHEN 'region' THEN COALESCE(x.region, 'unknown')
                ELSE x.customer_history END AS segment,
           COUNT(*) AS cases_decided,
           PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY x.cycle_days) AS median_cycle_days,
           100.0 * COUNT(*) FILTER (WHERE x.over_standard) / COUNT(*) AS pct_over_standard
    FROM cases x CROSS JOIN kinds k
    WHERE x.decided_date >= :start_day AND x.decided_date < :end_day
      AND x.status IN ('approved', 'denied')
    GROUP BY 1, 2, 3, 4, 5
),
-- the day's contacts as counted per channel and segment values in agg_contact_daily (rebuilt for
-- the night's days before this mart), added up per segment kind
contact_figures AS (
    SELECT x.date_day, x.service_id, x.journey_id, k.segment_kind,
           CASE k.segment_kind WHEN 'all' THEN 'all'
                WHEN 'customer_type' THEN COALESCE(x.customer_type, 'unknown')
                WHEN 'language' THEN COALESCE(x.language, 'unknown')
                WHEN 'region' THEN COALESCE(x.region, 'unknown')
                ELSE x.customer_history END AS segment,
           CAST(SUM(x.contacts) AS BIGINT) AS contacts,
           100.0 * CAST(SUM(x.resolved) AS BIGINT) / NULLIF(CAST(SUM(x.answered) AS BIGINT), 0) AS fcr_rate,
           100.0 * CAST(SUM(x.repeat_contacts) AS BIGINT) / CAST(SUM(x.contacts) AS BIGINT) AS repeat_contact_rate,
           100.0 * CAST(SUM(x.abandoned_contacts) AS BIGINT) / CAST(SUM(x.contacts) AS BIGINT)
               AS abandonment_rate
    FROM agg_contact_daily x CROSS JOIN kinds k
    WHERE x.date_day >= :start_day AND x.date_day < :end_day
    GROUP BY 1, 2, 3, 4, 5
),
-- the responses: means and shares from integer sums and counts per combination of segment
-- values, which add up exactly per segment kind (the mean is the sum over the count, as AVG
-- computes it); the customer's history counted by two booleans, as in agg_contact_daily.sql
response_counts AS (
    SELECT response_date, service_id, journey_id, customer_type, language, region,
           unknown_customer, returning_customer,
           COUNT(*) AS responses,
           SUM(trust) AS sum_trust, COUNT(trust) AS trust_answers,
           COUNT(*) FILTER (WHERE trust >= 4) AS trust_agree,
           SUM(satisfaction) AS sum_satisfaction, COUNT(satisfaction) AS satisfaction_answers,
           COUNT(*) FILTER (WHERE satisfaction >= 4) AS satisfaction_agree,
           SUM(CAST(ROUND(comment_sentiment * 10000) AS BIGINT)) AS sentiment_e4,
           COUNT(comment_sentiment) AS sentiments
    FROM responses
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
),
survey_figures AS (
    SELECT x.response_date AS date_day, x.service_id, x.journey_id, k.segment_kind,
           CASE k.segment_kind WHEN 'all' THEN 'all'
                WHEN 'customer_type' THEN COALESCE(x.customer_type, 'unknown')
                WHEN 'language' THEN COALESCE(x.language, 'unknown')
                WHEN 'region' THEN COALESCE(x.region, 'unknown')
                WHEN 'customer_history' THEN CASE WHEN x.unknown_customer THEN 'unknown'
                    WHEN x.returning_customer THEN 'returning' ELSE 'first_time' END END AS segment,
           CAST(SUM(x.responses) AS BIGINT) AS survey_responses,
           SUM(x.sum_trust) / NULLIF(SUM(x.trust_answers), 0) AS mean_trust,
           SUM(x.sum_satisfaction) / NULLIF(SUM(x.satisfaction_answers), 0) AS mean_satisfaction,
           100.0 * CAST(SUM(x.trust_agree) AS BIGINT) / NULLIF(CAST(SUM(x.trust_answers) AS BIGINT), 0)
               AS pct_agree_trust,
           100.0 * CAST(SUM(x.satisfaction_agree) AS BIGINT)
               / NULLIF(CAST(SUM(x.satisfaction_answers) AS BIGINT), 0) AS pct_agree_satisfaction,
           CAST(SUM(x.sentiment_e4) AS BIGINT) / (10000.0 * NULLIF(CAST(SUM(x.sentiments) AS BIGINT), 0))
               AS mean_comment_sentiment
    FROM response_counts x CROSS JOIN kinds k
    GROUP BY 1, 2, 3, 4, 5
),
keys AS (
    SELECT date_day, service_id, journey_id, segment_kind, segment FROM received
    UNION SELECT date_day, service_id, journey_id, segment_kind, segment FROM decided
    UNION SELECT date_day, service_id, journey_id, segment_kind, segment FROM contact_figures
    UNION SELECT date_day, service_id, journey_id, segment_kind, segment FROM survey_figures
)
SELECT g.date_day, g.service_id, g.journey_id, g.segment_kind, g.segment,
       COALESCE(r.cases_received, 0) AS cases_received,
       COALESCE(d.cases_decided, 0) AS cases_decided,
       d.median_cycle_days, d.pct_over_standard,
       COALESCE(c.contacts, 0) AS contacts, c.fcr_rate, c.repeat_contact_rate, c.abandonment_rate,
       COALESCE(s.survey_responses, 0) AS survey_responses, s.mean_trust, s.mean_satisfaction,
       s.pct_agree_trust, s.pct_agree_satisfaction, s.mean_comment_sentiment
FROM keys g
LEFT JOIN received r ON r.date_day = g.date_day AND r.service_id = g.service_id
    AND r.journey_id = g.journey_id AND r.segment_kind = g.segment_kind AND r.segment = g.segment
LEFT JOIN decided d ON d.date_day = g.date_day AND d.service_id = g.service_id
    AND d.journey_id = g.journey_id AND d.segment_kind = g.segment_kind AND d.segment = g.segment
LEFT JOIN contact_figures c ON c.date_day = g.date_day AND c.service_id = g.service_id
    AND c.journey_id = g.journey_id AND c.segment_kind = g.segment_kind AND c.segment = g.segment
LEFT JOIN survey_figures s ON s.date_day = g.date_day AND s.service_id = g.service_id
    AND s.journey_id = g.journey_id AND s.segment_kind = g.segment_kind AND s.segment = g.segment
