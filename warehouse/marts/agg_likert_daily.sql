-- A-11 answers, the additive part per day: per service, stage, channel, segment values and
-- item, the responses that answered it and the answers at each point of the 1-5 scale.
-- mart_a11_likert adds up the days of its fiscal quarter, so a night counts only its own
-- responses, not the whole quarter's again.
-- Parameters: :start_day (inclusive), :end_day (exclusive). Portable between DuckDB and PostgreSQL.
-- case_customer_history: each case's customer_history (first_time / returning), from its
-- customer's earliest case receipt or contact, for the cases the periods being rebuilt can name
-- (filled once per run with customer_first_seen by pipelines.insight.marts.fill_first_seen;
-- joined as a table, not a CTE: PostgreSQL plans a CTE named twice without its statistics).
WITH responses AS (
    SELECT r.response_date, r.service_id, r.journey_id, r.stage, COALESCE(r.channel, 'unknown') AS channel,
           r.trust, r.satisfaction, r.effectiveness, r.ease, r.efficiency, r.transparency, r.humanity,
           r.employee, r.customer_type, r.language, r.region,
           COALESCE(h.customer_history, 'unknown') AS customer_history
    FROM fact_survey_response r
    LEFT JOIN case_customer_history h ON h.case_key = r.case_key
    WHERE r.response_date >= :start_day AND r.response_date < :end_day AND r.service_id <> 'unmapped'
),
-- Counted per combination of segment values first (every item's answers at each point in one
-- pass over the responses), then turned into one row per item: the rows multiplied by the
-- items are a few hundred instead of every response eight times. (PostgreSQL sorted every
-- response repeated per item on disk: 7 s of 8.6 s at 200k responses.)
counted_by_combination AS (
    SELECT response_date, service_id, journey_id, stage, channel, customer_type, language, region,
           customer_history,
           COUNT(trust) AS trust_n, COUNT(*) FILTER (WHERE trust = 1) AS trust_1,
           COUNT(*) FILTER (WHERE trust = 2) AS trust_2, COUNT(*) FILTER (WHERE trust = 3) AS trust_3,
           COUNT(*) FILTER (WHERE trust = 4) AS trust_4, COUNT(*) FILTER (WHERE trust = 5) AS trust_5,
           COUNT(satisfaction) AS satisfaction_n,
           COUNT(*) FILTER (WHERE satisfaction = 1) AS satisfaction_1,
           COUNT(*) FILTER (WHERE satisfaction = 2) AS satisfaction_2,
           COUNT(*) FILTER (WHERE satisfaction = 3) AS satisfaction_3,
           COUNT(*) FILTER (WHERE satisfaction = 4) AS satisfaction_4,
           COUNT(*) FILTER (WHERE satisfaction = 5) AS satisfaction_5,
           COUNT(effectiveness) AS effectiveness_n,
           COUNT(*) FILTER (WHERE effectiveness = 1) AS effectiveness_1,
           COUNT(*) FILTER (WHERE effectiveness = 2) AS effectiveness_2,
           COUNT(*) FILTER (WHERE effectiveness = 3) AS effectiveness_3,
           COUNT(*) FILTER (WHERE effectiveness = 4) AS effectiveness_4,
           COUNT(*) FILTER (WHERE effectiveness = 5) AS effectiveness_5,
           COUNT(ease) AS ease_n, COUNT(*) FILTER (WHERE ease = 1) AS ease_1,
           COUNT(*) FILTER (WHERE ease = 2) AS ease_2, COUNT(*) FILTER (WHERE ease = 3) AS ease_3,
           COUNT(*) FILTER (WHERE ease = 4) AS ease_4, COUNT(*) FILTER (WHERE ease = 5) AS ease_5,
           COUNT(efficiency) AS efficiency_n, COUNT(*) FILTER (WHERE efficiency = 1) AS efficiency_1,
           COUNT(*) FILTER (WHERE efficiency = 2) AS efficiency_2,
           COUNT(*) FILTER (WHERE efficiency = 3) AS efficiency_3,
           COUNT(*) FILTER (WHERE efficiency = 4) AS efficiency_4,
           COUNT(*) FILTER (WHERE efficiency = 5) AS efficiency_5,
           COUNT(transparency) AS transparency_n,
           COUNT(*) FILTER (WHERE transparency = 1) AS transparency_1,
           COUNT(*) FILTER (WHERE transparency = 2) AS transparency_2,
           COUNT(*) FILTER (WHERE transparency = 3) AS transparency_3,
           COUNT(*) FILTER (WHERE transparency = 4) AS transparency_4,
           COUNT(*) FILTER (WHERE transparency = 5) AS transparency_5,
           COUNT(humanity) AS humanity_n, COUNT(*) FILTER (WHERE humanity = 1) AS humanity_1,
           COUNT(*) FILTER (WHERE humanity = 2) AS humanity_2,
           COUNT(*) FILTER (WHERE humanity = 3) AS humanity_3,
           COUNT(*) FILTER (WHERE humanity = 4) AS humanity_4,
           COUNT(*) FILTER (WHERE humanity = 5) AS humanity_5,
           COUNT(employee) AS employee_n, COUNT(*) FILTER (WHERE employee = 1) AS employee_1,
           COUNT(*) FILTER (WHERE employee = 2) AS employee_2,
           COUNT(*) FILTER (WHERE employee = 3) AS employee_3,
           COUNT(*) FILTER (WHERE employee = 4) AS employee_4,
           COUNT(*) FILTER (WHERE employee = 5) AS employee_5
    FROM responses
    GROUP BY response_date, service_id, journey_id, stage, channel, customer_type, language, region,
             customer_history
),
counted AS (
    SELECT response_date, service_id, journey_id, stage, channel, customer_type, language, region,
           customer_history, 'trust' AS item, trust_n AS answered, trust_1 AS count_1, trust_2 AS count_2,
           trust_3 AS count_3, trust_4 AS count_4, trust_5 AS count_5
    FROM counted_by_combination
    UNION ALL
    SELECT response_date, service_id, journey_id, stage, channel, customer_type, language, region,
           customer_history, 'satisfaction', satisfaction_n, satisfaction_1, satisfaction_2, satisfaction_3,
           satisfaction_4, satisfaction_5
    FROM counted_by_combination
    UNION ALL
    SELECT response_date, service_id, journey_id, stage, channel, customer_type, language, region,
           customer_history, 'effectiveness', effectiveness_n, effectiveness_1, effectiveness_2,
           effectiveness_3, effectiveness_4, effectiveness_5
    FROM counted_by_combination
    UNION ALL
    SELECT response_date, service_id, journey_id, stage, channel, customer_type, language, region,
           customer_history, 'ease', ease_n, ease_1, ease_2, ease_3, ease_4, ease_5
    FROM counted_by_combination
    UNION ALL
    SELECT response_date, service_id, journey_id, stage, channel, customer_type, language, region,
           customer_history, 'efficiency', efficiency_n, efficiency_1, efficiency_2, efficiency_3,
           efficiency_4, efficiency_5
    FROM counted_by_combination
    UNION ALL
    SELECT response_date, service_id, journey_id, stage, channel, customer_type, language, region,
           customer_history, 'transparency', transparency_n, transparency_1, transparency_2, transparency_3,
           transparency_4, transparency_5
    FROM counted_by_combination
    UNION ALL
    SELECT response_date, service_id, journey_id, stage, channel, customer_type, language, region,
           customer_history, 'humanity', humanity_n, humanity_1, humanity_2, humanity_3, humanity_4,
           humanity_5
    FROM counted_by_combination
    UNION ALL
    SELECT response_date, service_id, journey_id, stage, channel, customer_type, language, region,
           customer_history, 'employee', employee_n, employee_1, employee_2, employee_3, employee_4,
           employee_5
    FROM counted_by_combination
)
SELECT response_date AS date_day, service_id, journey_id, stage, channel, customer_type, language,
       region, customer_history, item, answered, count_1, count_2, count_3, count_4, count_5
FROM counted
