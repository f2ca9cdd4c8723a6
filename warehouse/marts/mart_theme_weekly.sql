-- Theme x service x week (x source x customer segment): how many texts mention each theme,
-- out of how many texts, and in what mood (sentiment of the texts that mention it).
-- Reads fact_text_theme, which is rebuilt for the run's days before this mart.
-- Sentiment means add VADER's four-decimal scores as exact integers, so that a rerun gives
-- identical bits whatever order a parallel aggregate met the rows in.
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
texts AS (
    SELECT r.service_id, r.journey_id, 'survey_comment' AS source, r.customer_type, r.language, r.region,
           COALESCE(h.customer_history, 'unknown') AS customer_history
    FROM fact_survey_response r
    LEFT JOIN case_customer_history h ON h.case_key = r.case_key
    WHERE r.response_date >= :start_day AND r.response_date < :end_day
      AND r.comment IS NOT NULL AND TRIM(r.comment) <> ''
    UNION ALL
    SELECT service_id, journey_id, 'feedback', customer_type, language, region, 'unknown'
    FROM fact_feedback
    WHERE feedback_date >= :start_day AND feedback_date < :end_day
      AND text IS NOT NULL AND TRIM(text) <> ''
),
-- Texts and mentions counted per combination of segment values first, then added up per
-- segment kind: integer counts and sums add up exactly, and a few thousand rows instead of every
-- text and mention are multiplied by the kinds.
text_counts AS (
    SELECT service_id, journey_id, source, customer_type, language, region, customer_history,
           COUNT(*) AS texts
    FROM texts
    GROUP BY 1, 2, 3, 4, 5, 6, 7
),
text_totals AS (
    SELECT x.service_id, x.journey_id, x.source, k.segment_kind,
           CASE k.segment_kind WHEN 'all' THEN 'all'
                WHEN 'customer_type' THEN COALESCE(x.customer_type, 'unknown')
                WHEN 'language' THEN COALESCE(x.language, 'unknown')
                WHEN 'region' THEN COALESCE(x.region, 'unknown')
                ELSE x.customer_history END AS segment,
           CAST(SUM(x.texts) AS BIGINT) AS texts
    FROM text_counts x CROSS JOIN kinds k
    GROUP BY 1, 2, 3, 4, 5
),
mention_counts AS (
    SELECT service_id, journey_id, source, customer_type, language, region, customer_history, theme_id,
           COUNT(*) AS mentions,
           SUM(CAST(ROUND(sentiment * 10000) AS BIGINT)) AS sentiment_e4,
           COUNT(sentiment) AS sentiments,
           COUNT(*) FILTER (WHERE sentiment <= -0.05) AS negative
    FROM fact_text_theme
    WHERE date_day >= :start_day AND date_day < :end_day
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
),
theme_figures AS (
    SELECT x.service_id, x.journey_id, x.source, k.segment_kind,
           CASE k.segment_kind WHEN 'all' THEN 'all'
                WHEN 'customer_type' THEN COALESCE(x.customer_type, 'unknown')
                WHEN 'language' THEN COALESCE(x.language, 'unknown')
                WHEN 'region' THEN COALESCE(x.region, 'unknown')
                ELSE x.customer_history END AS segment,
           x.theme_id,
           CAST(SUM(x.mentions) AS BIGINT) AS mentions,
           CAST(SUM(x.sentiment_e4) AS BIGINT) / (10000.0 * NULLIF(CAST(SUM(x.sentiments) AS BIGINT), 0))
               AS mean_sentiment,
           100.0 * CAST(SUM(x.negative) AS BIGINT) / NULLIF(CAST(SUM(x.sentiments) AS BIGINT), 0)
               AS pct_negative
    FROM mention_counts x CROSS JOIN kinds k
    GROUP BY 1, 2, 3, 4, 5, 6
)
SELECT CAST(:period_start AS DATE) AS period_start, m.service_id, m.journey_id, m.source,
       m.segment_kind, m.segment, m.theme_id, m.mentions, t.texts,
       100.0 * m.mentions / t.texts AS pct_of_texts, m.mean_sentiment, m.pct_negative
FROM theme_figures m
JOIN text_totals t ON t.service_id = m.service_id AND t.journey_id = m.journey_id AND t.source = m.source
    AND t.segment_kind = m.segment_kind AND t.segment = m.segment
