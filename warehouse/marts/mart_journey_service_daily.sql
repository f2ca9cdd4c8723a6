-- X and O side by side per day, service, journey stage and channel.
-- Parameters: :start_day (inclusive), :end_day (exclusive). Portable between DuckDB and PostgreSQL.
WITH received AS (
    SELECT c.received_date AS date_day, c.service_id, c.journey_id,
           COALESCE(j.stage, 'unmapped') AS stage, c.channel,
           COUNT(*) AS cases_received
    FROM fact_case c
    LEFT JOIN dim_journey j ON j.journey_id = c.journey_id AND j.is_case_received_stage
    WHERE c.received_date >= :start_day AND c.received_date < :end_day
    GROUP BY 1, 2, 3, 4, 5
),
decided AS (
    SELECT c.decided_date AS date_day, c.service_id, c.journey_id,
           COALESCE(j.stage, 'unmapped') AS stage, c.channel,
           COUNT(*) AS cases_decided,
           PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY c.cycle_days) AS median_cycle_days,
           PERCENTILE_CONT(0.9) WITHIN GROUP (ORDER BY c.cycle_days) AS p90_cycle_days,
           100.0 * COUNT(*) FILTER (WHERE c.over_standard) / COUNT(*) AS pct_over_standard
    FROM fact_case c
    LEFT JOIN dim_journey j ON j.journey_id = c.journey_id AND j.is_case_decided_stage
    WHERE c.decided_date >= :start_day AND c.decided_date < :end_day
      AND c.status IN ('approved', 'denied')
    GROUP BY 1, 2, 3, 4, 5
),
contacts AS (
    SELECT contact_date AS date_day, service_id, journey_id, stage, channel,
           COUNT(*) AS contacts,
           100.0 * COUNT(*) FILTER (WHERE resolved_first_contact AND NOT abandoned)
               / NULLIF(COUNT(*) FILTER (WHERE NOT abandoned), 0) AS fcr_rate,
           100.0 * COUNT(*) FILTER (WHERE repeat_within_7d) / COUNT(*) AS repeat_contact_rate,
           100.0 * COUNT(*) FILTER (WHERE abandoned) / COUNT(*) AS abandonment_rate
    FROM fact_contact
    WHERE contact_date >= :start_day AND contact_date < :end_day
    GROUP BY 1, 2, 3, 4, 5
),
web AS (
    SELECT date_day, service_id, journey_id, stage, 'web' AS channel,
           SUM(task_completions) AS self_service_completions,
           SUM(status_checks) AS status_checks
    FROM fact_web_daily
    WHERE date_day >= :start_day AND date_day < :end_day
    GROUP BY 1, 2, 3, 4, 5
),
surveys AS (
    SELECT response_date AS date_day, service_id, journey_id, stage, channel,
           COUNT(*) AS survey_responses,
           AVG(trust) AS mean_trust,
           AVG(satisfaction) AS mean_satisfaction,
           100.0 * COUNT(*) FILTER (WHERE trust >= 4) / NULLIF(COUNT(trust), 0) AS pct_agree_trust,
           100.0 * COUNT(*) FILTER (WHERE satisfaction >= 4) / NULLIF(COUNT(satisfaction), 0) AS pct_agree_satisfaction,
           100.0 * COUNT(*) FILTER (WHERE effectiveness >= 4) / NULLIF(COUNT(effectiveness), 0) AS pct_agree_effectiveness,
           100.0 * COUNT(*) FILTER (WHERE ease >= 4) / NULLIF(COUNT(ease), 0) AS pct_agree_ease,
           100.0 * COUNT(*) FILTER (WHERE efficiency >= 4) / NULLIF(COUNT(efficiency), 0) AS pct_agree_efficiency,
           100.0 * COUNT(*) FILTER (WHERE transparency >= 4) / NULLIF(COUNT(transparency), 0) AS pct_agree_transparency,
           100.0 * COUNT(*) FILTER (WHERE humanity >= 4) / NULLIF(COUNT(humanity), 0) AS pct_agree_humanity,
           100.0 * COUNT(*) FILTER (WHERE employee >= 4) / NULLIF(COUNT(employee), 0) AS pct_agree_employee
    FROM fact_survey_response
    WHERE response_date >= :start_day AND response_date < :end_day
    GROUP BY 1, 2, 3, 4, 5
),
measures AS (
    -- The first branch types every column: PostgreSQL resolves a UNION pairwise, and two
    -- untyped NULLs in a row would become text and then clash with the counts below.
    SELECT date_day, service_id, journey_id, stage, channel,
           CAST(cases_received AS BIGINT) AS cases_received,
           CAST(NULL AS BIGINT) AS cases_decided,
           CAST(NULL AS DOUBLE PRECISION) AS median_cycle_days,
           CAST(NULL AS DOUBLE PRECISION) AS p90_cycle_days,
           CAST(NULL AS DOUBLE PRECISION) AS pct_over_standard,
           CAST(NULL AS BIGINT) AS contacts,
           CAST(NULL AS DOUBLE PRECISION) AS fcr_rate,
           CAST(NULL AS DOUBLE PRECISION) AS repeat_contact_rate,
           CAST(NULL AS DOUBLE PRECISION) AS abandonment_rate,
           CAST(NULL AS BIGINT) AS self_service_completions,
           CAST(NULL AS BIGINT) AS status_checks,
           CAST(NULL AS BIGINT) AS survey_responses,
           CAST(NULL AS DOUBLE PRECISION) AS mean_trust,
           CAST(NULL AS DOUBLE PRECISION) AS mean_satisfaction,
           CAST(NULL AS DOUBLE PRECISION) AS pct_agree_trust,
           CAST(NULL AS DOUBLE PRECISION) AS pct_agree_satisfaction,
           CAST(NULL AS DOUBLE PRECISION) AS pct_agree_effectiveness,
           CAST(NULL AS DOUBLE PRECISION) AS pct_agree_ease,
           CAST(NULL AS DOUBLE PRECISION) AS pct_agree_efficiency,
           CAST(NULL AS DOUBLE PRECISION) AS pct_agree_transparency,
           CAST(NULL AS DOUBLE PRECISION) AS pct_agree_humanity,
           CAST(NULL AS DOUBLE PRECISION) AS pct_agree_employee
    FROM received
    UNION ALL
    SELECT date_day, service_id, journey_id, stage, channel,
           NULL, cases_decided, median_cycle_days, p90_cycle_days, pct_over_standard,
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
    FROM decided
    UNION ALL
    SELECT date_day, service_id, journey_id, stage, channel,
           NULL, NULL, NULL, NULL, NULL,
           contacts, fcr_rate, repeat_contact_rate, abandonment_rate, NULL, NULL, NULL, NULL, NULL,
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
    FROM contacts
    UNION ALL
    SELECT date_day, service_id, journey_id, stage, channel,
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           self_service_completions, status_checks, NULL, NULL, NULL,
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
    FROM web
    UNION ALL
    SELECT date_day, service_id, journey_id, stage, channel,
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           survey_responses, mean_trust, mean_satisfaction,
           pct_agree_trust, pct_agree_satisfaction, pct_agree_effectiveness, pct_agree_ease,
           pct_agree_efficiency, pct_agree_transparency, pct_agree_humanity, pct_agree_employee
    FROM surveys
)
SELECT date_day, service_id, journey_id, stage, channel,
       COALESCE(MAX(cases_received), 0) AS cases_received,
       COALESCE(MAX(cases_decided), 0) AS cases_decided,
       MAX(median_cycle_days) AS median_cycle_days,
       MAX(p90_cycle_days) AS p90_cycle_days,
       MAX(pct_over_standard) AS pct_over_standard,
       COALESCE(MAX(contacts), 0) AS contacts,
       MAX(fcr_rate) AS fcr_rate,
       MAX(repeat_contact_rate) AS repeat_contact_rate,
       MAX(abandonment_rate) AS abandonment_rate,
       COALESCE(MAX(self_service_completions), 0) AS self_service_completions,
       COALESCE(MAX(status_checks), 0) AS status_checks,
       COALESCE(MAX(survey_responses), 0) AS survey_responses,
       MAX(mean_trust) AS mean_trust,
       MAX(mean_satisfaction) AS mean_satisfaction,
       MAX(pct_agree_trust) AS pct_agree_trust,
       MAX(pct_agree_satisfaction) AS pct_agree_satisfaction,
       MAX(pct_agree_effectiveness) AS pct_agree_effectiveness,
       MAX(pct_agree_ease) AS pct_agree_ease,
       MAX(pct_agree_efficiency) AS pct_agree_efficiency,
       MAX(pct_agree_transparency) AS pct_agree_transparency,
       MAX(pct_agree_humanity) AS pct_agree_humanity,
       MAX(pct_agree_employee) AS pct_agree_employee
FROM measures
GROUP BY date_day, service_id, journey_id, stage, channel
