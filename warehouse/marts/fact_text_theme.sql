-- Bridge: one row per redacted text (survey comment or feedback) and theme it mentions.
-- Themes are stored on the facts as sorted ids joined by ';' (pipelines.insight.text).
-- Parameters: :start_day (inclusive), :end_day (exclusive). Portable between DuckDB and PostgreSQL.
-- customer_first_seen: each customer's earliest case receipt or contact, for the customers the
-- periods being rebuilt can name (filled once per run by pipelines.insight.marts.fill_first_seen;
-- joined as a table, not a CTE: PostgreSQL plans a CTE named twice without its statistics).
WITH texts AS (
    SELECT r.response_date AS date_day, 'survey_comment' AS source, r.response_id AS record_id,
           r.service_id, r.journey_id, r.comment_sentiment AS sentiment, r.comment_themes AS themes,
           r.customer_type, r.language, r.region,
           CASE WHEN c.customer_key IS NULL THEN 'unknown'
                WHEN f.first_at < c.received_at THEN 'returning' ELSE 'first_time' END AS customer_history
    FROM fact_survey_response r
    LEFT JOIN fact_case c ON c.case_key = r.case_key
    LEFT JOIN customer_first_seen f ON f.customer_key = c.customer_key
    WHERE r.response_date >= :start_day AND r.response_date < :end_day AND r.comment_themes IS NOT NULL
    UNION ALL
    SELECT feedback_date, 'feedback', feedback_id, service_id, journey_id, sentiment, themes,
           customer_type, language, region, 'unknown'
    FROM fact_feedback
    WHERE feedback_date >= :start_day AND feedback_date < :end_day AND themes IS NOT NULL
)
SELECT t.date_day, t.source, t.record_id, t.service_id, t.journey_id, d.theme_id, t.sentiment,
       t.customer_type, t.language, t.region, t.customer_history
FROM texts t
JOIN dim_theme d ON POSITION(';' || d.theme_id || ';' IN ';' || t.themes || ';') > 0
