-- Bridge: one row per redacted text (survey comment or feedback) and theme it mentions.
-- Themes are stored on the facts as sorted ids joined by ';' (pipelines.insight.text).
-- Parameters: :start_day (inclusive), :end_day (exclusive). Portable between DuckDB and PostgreSQL.
-- case_customer_history: each case's customer_history (first_time / returning), from its
-- customer's earliest case receipt or contact, for the cases the periods being rebuilt can name
-- (filled once per run with customer_first_seen by pipelines.insight.marts.fill_first_seen;
-- joined as a table, not a CTE: PostgreSQL plans a CTE named twice without its statistics).
WITH texts AS (
    SELECT r.response_date AS date_day, 'survey_comment' AS source, r.response_id AS record_id,
           r.service_id, r.journey_id, r.comment_sentiment AS sentiment, r.comment_themes AS themes,
           r.customer_type, r.language, r.region,
           COALESCE(h.customer_history, 'unknown') AS customer_history
    FROM fact_survey_response r
    LEFT JOIN case_customer_history h ON h.case_key = r.case_key
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
