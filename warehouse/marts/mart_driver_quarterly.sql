-- Driver analysis per fiscal quarter: satisfaction and trust by operational band, built on
-- the record-level link between each survey response and its case or contact.
--   case_timeliness: the surveyed case's cycle days against its standard (fact_survey_response
--     carries them from the case): on_time (baseline) / over_1_30_days / over_31_plus_days.
--   wait_time, first_contact_resolution, transfer: the contact linked to the response, which is
--     the latest contact about the same case (case_key) that started before the response was
--     submitted. Wait bands use phone and chat only (e-mail response time is another measure);
--     resolution and transfer use answered (not abandoned) contacts.
-- 95% confidence intervals: mean +/- 1.96 * sd / sqrt(n) (sd: sample standard deviation); the
-- difference from the baseline band (band_order 1) uses the unpooled standard error
-- sqrt(sd1^2/n1 + sd2^2/n2). NULL below n = 2.
-- Parameters: :period_start, :start_day, :end_day (the quarter), :fiscal_year, :fiscal_quarter.
-- Portable between DuckDB and PostgreSQL.
-- customer_first_seen: each customer's earliest case receipt or contact, for the customers the
-- periods being rebuilt can name (filled once per run by pipelines.insight.marts.fill_first_seen;
-- joined as a table, not a CTE: PostgreSQL plans a CTE named twice without its statistics).
WITH kinds AS (
    SELECT segment_kind
    FROM (VALUES ('all'), ('customer_type'), ('language'), ('region'), ('customer_history')) AS k(segment_kind)
),
responses AS (
    SELECT r.service_id, r.journey_id, r.created_at, r.case_key, r.satisfaction, r.trust,
           r.case_cycle_days, r.case_standard_days, r.customer_type, r.language, r.region,
           CASE WHEN c.customer_key IS NULL THEN 'unknown'
                WHEN f.first_at < c.received_at THEN 'returning' ELSE 'first_time' END AS customer_history
    FROM fact_survey_response r
    LEFT JOIN fact_case c ON c.case_key = r.case_key
    LEFT JOIN customer_first_seen f ON f.customer_key = c.customer_key
    WHERE r.response_date >= :start_day AND r.response_date < :end_day AND r.service_id <> 'unmapped'
),
-- Each response's contact is looked up by its case (an index probe per response on PostgreSQL),
-- rather than joining every contact ever loaded: the mart's cost follows the quarter's
-- responses, not the history beside them. The probes go in case order (bytewise: the keys are
-- hex), so that they walk the case index once instead of reading a page from disk per probe.
contact_link AS (
    SELECT r.service_id, r.journey_id, r.customer_type, r.language, r.region, r.customer_history,
           r.satisfaction, r.trust,
           k.channel, k.wait_seconds, k.resolved_first_contact, k.transferred, k.abandoned
    FROM (SELECT * FROM responses WHERE case_key IS NOT NULL ORDER BY case_key COLLATE "C") r
    JOIN LATERAL (
        SELECT x.channel, x.wait_seconds, x.resolved_first_contact, x.transferred, x.abandoned
        FROM fact_contact x
        WHERE x.case_key = r.case_key AND x.start_time < r.created_at
        ORDER BY x.start_time DESC, x.contact_key
        LIMIT 1
    ) k ON TRUE
),
banded AS (
    SELECT service_id, journey_id, customer_type, language, region, customer_history, satisfaction, trust, 'case_timeliness' AS driver,
           CASE WHEN case_cycle_days <= case_standard_days THEN 'on_time'
                WHEN case_cycle_days - case_standard_days <= 30 THEN 'over_1_30_days'
                ELSE 'over_31_plus_days' END AS band,
           CASE WHEN case_cycle_days <= case_standard_days THEN 1
                WHEN case_cycle_days - case_standard_days <= 30 THEN 2 ELSE 3 END AS band_order
    FROM responses
    WHERE case_cycle_days IS NOT NULL AND case_standard_days IS NOT NULL
    UNION ALL
    SELECT service_id, journey_id, customer_type, language, region, customer_history, satisfaction, trust, 'wait_time',
           CASE WHEN wait_seconds < 120 THEN 'under_2_min'
                WHEN wait_seconds < 600 THEN '2_to_10_min' ELSE 'over_10_min' END,
           CASE WHEN wait_seconds < 120 THEN 1 WHEN wait_seconds < 600 THEN 2 ELSE 3 END
    FROM contact_link
    WHERE channel IN ('phone', 'chat') AND wait_seconds IS NOT NULL
    UNION ALL
    SELECT service_id, journey_id, customer_type, language, region, customer_history, satisfaction, trust, 'first_contact_resolution',
           CASE WHEN resolved_first_contact THEN 'resolved' ELSE 'not_resolved' END,
           CASE WHEN resolved_first_contact THEN 1 ELSE 2 END
    FROM contact_link
    WHERE NOT abandoned AND resolved_first_contact IS NOT NULL
    UNION ALL
    SELECT service_id, journey_id, customer_type, language, region, customer_history, satisfaction, trust, 'transfer',
           CASE WHEN transferred THEN 'transferred' ELSE 'not_transferred' END,
           CASE WHEN transferred THEN 2 ELSE 1 END
    FROM contact_link
    WHERE NOT abandoned AND transferred IS NOT NULL
),
-- Summed per combination of segment values first, then per segment kind: integer sums and
-- counts add up exactly, and only a few thousand rows are multiplied by the kinds.
counted AS (
    SELECT service_id, journey_id, customer_type, language, region, customer_history, driver, band,
           band_order,
           COUNT(*) AS responses,
           SUM(satisfaction) AS sum_satisfaction,
           SUM(satisfaction * satisfaction) AS sumsq_satisfaction,
           COUNT(*) FILTER (WHERE satisfaction >= 4) AS agree_satisfaction,
           SUM(trust) AS sum_trust,
           SUM(trust * trust) AS sumsq_trust,
           COUNT(*) FILTER (WHERE trust >= 4) AS agree_trust
    FROM banded
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9
),
sums AS (
    SELECT x.service_id, x.journey_id, k.segment_kind,
           CASE k.segment_kind WHEN 'all' THEN 'all'
                WHEN 'customer_type' THEN COALESCE(x.customer_type, 'unknown')
                WHEN 'language' THEN COALESCE(x.language, 'unknown')
                WHEN 'region' THEN COALESCE(x.region, 'unknown')
                ELSE x.customer_history END AS segment,
           x.driver, x.band, x.band_order,
           CAST(SUM(x.responses) AS BIGINT) AS responses,
           SUM(x.sum_satisfaction) AS sum_satisfaction,
           SUM(x.sumsq_satisfaction) AS sumsq_satisfaction,
           100.0 * CAST(SUM(x.agree_satisfaction) AS BIGINT) / CAST(SUM(x.responses) AS BIGINT)
               AS pct_agree_satisfaction,
           SUM(x.sum_trust) AS sum_trust,
           SUM(x.sumsq_trust) AS sumsq_trust,
           100.0 * CAST(SUM(x.agree_trust) AS BIGINT) / CAST(SUM(x.responses) AS BIGINT) AS pct_agree_trust
    FROM counted x
    CROSS JOIN kinds k
    GROUP BY 1, 2, 3, 4, 5, 6, 7
),
-- Means and sample standard deviations from exact integer sums: the same rows give the same
-- bits whatever order a parallel aggregate met them in (a rerun leaves identical rows).
stats AS (
    SELECT service_id, journey_id, segment_kind, segment, driver, band, band_order, responses,
           1.0 * sum_satisfaction / responses AS mean_satisfaction,
           CASE WHEN responses > 1 THEN SQRT(
               (responses * sumsq_satisfaction - sum_satisfaction * sum_satisfaction)
               / (responses * (responses - 1.0))) END AS sd_satisfaction,
           pct_agree_satisfaction,
           1.0 * sum_trust / responses AS mean_trust,
           CASE WHEN responses > 1 THEN SQRT((responses * sumsq_trust - sum_trust * sum_trust)
               / (responses * (responses - 1.0))) END AS sd_trust,
           pct_agree_trust
    FROM sums
)
SELECT CAST(:period_start AS DATE) AS period_start,
       CAST(:fiscal_year AS INTEGER) AS fiscal_year,
       CAST(:fiscal_quarter AS INTEGER) AS fiscal_quarter,
       s.service_id, s.journey_id, s.segment_kind, s.segment, s.driver, s.band, s.band_order,
       s.band_order = 1 AS is_baseline,
       s.responses,
       s.mean_satisfaction, s.sd_satisfaction,
       s.mean_satisfaction - 1.96 * s.sd_satisfaction / SQRT(s.responses) AS satisfaction_ci_low,
       s.mean_satisfaction + 1.96 * s.sd_satisfaction / SQRT(s.responses) AS satisfaction_ci_high,
       s.pct_agree_satisfaction,
       CASE WHEN s.band_order > 1 THEN s.mean_satisfaction - b.mean_satisfaction END AS diff_satisfaction,
       CASE WHEN s.band_order > 1 THEN s.mean_satisfaction - b.mean_satisfaction - 1.96 * SQRT(
           s.sd_satisfaction * s.sd_satisfaction / s.responses
           + b.sd_satisfaction * b.sd_satisfaction / b.responses) END AS diff_satisfaction_ci_low,
       CASE WHEN s.band_order > 1 THEN s.mean_satisfaction - b.mean_satisfaction + 1.96 * SQRT(
           s.sd_satisfaction * s.sd_satisfaction / s.responses
           + b.sd_satisfaction * b.sd_satisfaction / b.responses) END AS diff_satisfaction_ci_high,
       s.mean_trust, s.sd_trust,
       s.mean_trust - 1.96 * s.sd_trust / SQRT(s.responses) AS trust_ci_low,
       s.mean_trust + 1.96 * s.sd_trust / SQRT(s.responses) AS trust_ci_high,
       s.pct_agree_trust,
       CASE WHEN s.band_order > 1 THEN s.mean_trust - b.mean_trust END AS diff_trust,
       CASE WHEN s.band_order > 1 THEN s.mean_trust - b.mean_trust - 1.96 * SQRT(
           s.sd_trust * s.sd_trust / s.responses + b.sd_trust * b.sd_trust / b.responses) END
           AS diff_trust_ci_low,
       CASE WHEN s.band_order > 1 THEN s.mean_trust - b.mean_trust + 1.96 * SQRT(
           s.sd_trust * s.sd_trust / s.responses + b.sd_trust * b.sd_trust / b.responses) END
           AS diff_trust_ci_high
FROM stats s
LEFT JOIN stats b ON b.service_id = s.service_id AND b.journey_id = s.journey_id
    AND b.segment_kind = s.segment_kind AND b.segment = s.segment AND b.driver = s.driver
    AND b.band_order = 1
