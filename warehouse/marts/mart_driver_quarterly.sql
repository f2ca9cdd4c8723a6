-- Driver analysis per fiscal quarter: satisfaction and trust by operational band, built on
-- the record-level link between each survey response and its case or contact (the bands are
-- described in agg_driver_daily.sql, whose daily counts and sums this adds up).
-- 95% confidence intervals: mean +/- 1.96 * sd / sqrt(n) (sd: sample standard deviation); the
-- difference from the baseline band (band_order 1) uses the unpooled standard error
-- sqrt(sd1^2/n1 + sd2^2/n2). NULL below n = 2.
-- Parameters: :period_start, :start_day, :end_day (the quarter), :fiscal_year, :fiscal_quarter.
-- Portable between DuckDB and PostgreSQL.
WITH kinds AS (
    SELECT segment_kind
    FROM (VALUES ('all'), ('customer_type'), ('language'), ('region'), ('customer_history')) AS k(segment_kind)
),
-- integer sums and counts add up exactly over days and segment values, and only a few
-- thousand rows are multiplied by the kinds
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
    FROM agg_driver_daily x
    CROSS JOIN kinds k
    WHERE x.date_day >= :start_day AND x.date_day < :end_day
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
