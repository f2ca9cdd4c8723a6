-- Driver analysis, the additive part per day: responses and integer sums of satisfaction and
-- trust (and of their squares) per service, segment values, driver and operational band.
-- mart_driver_quarterly adds up the days of its quarter, so a night links only its own
-- responses to their case and contact, not the whole quarter's again.
--   case_timeliness: the surveyed case's cycle days against its standard (fact_survey_response
--     carries them from the case): on_time (baseline) / over_1_30_days / over_31_plus_days.
--   wait_time, first_contact_resolution, transfer: the contact linked to the response, which is
--     the latest contact about the same case (case_key) that started before the response was
--     submitted and within :contact_window before it (schemas/drivers.yaml). Wait bands use phone
--     and chat only (e-mail response time is another measure); resolution and transfer use
--     answered (not abandoned) contacts.
-- Parameters: :start_day (inclusive), :end_day (exclusive), :contact_window (an interval) and
-- :contacts_from (a date no later than any contact the window reaches). Portable between DuckDB
-- and PostgreSQL.
-- case_customer_history: each case's customer_history (first_time / returning), from its
-- customer's earliest case receipt or contact, for the cases the periods being rebuilt can name
-- (filled once per run with customer_first_seen by pipelines.insight.marts.fill_first_seen;
-- joined as a table, not a CTE: PostgreSQL plans a CTE named twice without its statistics).
WITH responses AS (
    SELECT r.response_date, r.service_id, r.journey_id, r.created_at, r.case_key, r.satisfaction,
           r.trust, r.case_cycle_days, r.case_standard_days, r.customer_type, r.language, r.region,
           COALESCE(h.customer_history, 'unknown') AS customer_history
    FROM fact_survey_response r
    LEFT JOIN case_customer_history h ON h.case_key = r.case_key
    WHERE r.response_date >= :start_day AND r.response_date < :end_day AND r.service_id <> 'unmapped'
),
-- Each response's contact is looked up by its case (an index probe per response on PostgreSQL,
-- in contact_by_case: fact_contact's contacts that name a case, kept in case order),
-- rather than joining every contact ever loaded: the cost follows the day's responses, not
-- the history beside them. The probes go in case order (bytewise: the keys are
-- hex), so that they walk the case index once instead of reading a page from disk per probe.
-- DuckDB, with no index to probe, reads the contacts that name a case: the window's days only,
-- which the constant bound on contact_date lets it find by the days' row groups.
contact_link AS (
    SELECT r.response_date, r.service_id, r.journey_id, r.customer_type, r.language, r.region,
           r.customer_history, r.satisfaction, r.trust,
           k.channel, k.wait_seconds, k.resolved_first_contact, k.transferred, k.abandoned
    FROM (SELECT * FROM responses WHERE case_key IS NOT NULL ORDER BY case_key COLLATE "C") r
    JOIN LATERAL (
        SELECT x.channel, x.wait_seconds, x.resolved_first_contact, x.transferred, x.abandoned
        FROM contact_by_case x
        WHERE x.case_key = r.case_key AND x.start_time < r.created_at
          AND x.start_time >= r.created_at - :contact_window AND x.contact_date >= :contacts_from
        ORDER BY x.start_time DESC, x.contact_key
        LIMIT 1
    ) k ON TRUE
),
banded AS (
    SELECT response_date, service_id, journey_id, customer_type, language, region, customer_history,
           satisfaction, trust, 'case_timeliness' AS driver,
           CASE WHEN case_cycle_days <= case_standard_days THEN 'on_time'
                WHEN case_cycle_days - case_standard_days <= 30 THEN 'over_1_30_days'
                ELSE 'over_31_plus_days' END AS band,
           CASE WHEN case_cycle_days <= case_standard_days THEN 1
                WHEN case_cycle_days - case_standard_days <= 30 THEN 2 ELSE 3 END AS band_order
    FROM responses
    WHERE case_cycle_days IS NOT NULL AND case_standard_days IS NOT NULL
    UNION ALL
    SELECT response_date, service_id, journey_id, customer_type, language, region, customer_history,
           satisfaction, trust, 'wait_time',
           CASE WHEN wait_seconds < 120 THEN 'under_2_min'
                WHEN wait_seconds < 600 THEN '2_to_10_min' ELSE 'over_10_min' END,
           CASE WHEN wait_seconds < 120 THEN 1 WHEN wait_seconds < 600 THEN 2 ELSE 3 END
    FROM contact_link
    WHERE channel IN ('phone', 'chat') AND wait_seconds IS NOT NULL
    UNION ALL
    SELECT response_date, service_id, journey_id, customer_type, language, region, customer_history,
           satisfaction, trust, 'first_contact_resolution',
           CASE WHEN resolved_first_contact THEN 'resolved' ELSE 'not_resolved' END,
           CASE WHEN resolved_first_contact THEN 1 ELSE 2 END
    FROM contact_link
    WHERE NOT abandoned AND resolved_first_contact IS NOT NULL
    UNION ALL
    SELECT response_date, service_id, journey_id, customer_type, language, region, customer_history,
           satisfaction, trust, 'transfer',
           CASE WHEN transferred THEN 'transferred' ELSE 'not_transferred' END,
           CASE WHEN transferred THEN 2 ELSE 1 END
    FROM contact_link
    WHERE NOT abandoned AND transferred IS NOT NULL
),
counted AS (
    SELECT response_date, service_id, journey_id, customer_type, language, region, customer_history,
           driver, band, band_order,
           COUNT(*) AS responses,
           SUM(satisfaction) AS sum_satisfaction,
           SUM(satisfaction * satisfaction) AS sumsq_satisfaction,
           COUNT(*) FILTER (WHERE satisfaction >= 4) AS agree_satisfaction,
           SUM(trust) AS sum_trust,
           SUM(trust * trust) AS sumsq_trust,
           COUNT(*) FILTER (WHERE trust >= 4) AS agree_trust
    FROM banded
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
)
SELECT response_date AS date_day, service_id, journey_id, customer_type, language, region,
       customer_history, driver, band, band_order, responses,
       sum_satisfaction, sumsq_satisfaction, agree_satisfaction, sum_trust, sumsq_trust, agree_trust
FROM counted
