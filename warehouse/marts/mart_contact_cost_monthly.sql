-- Contact cost per month, service and channel (unit costs from schemas/costs.yaml in
-- dim_unit_cost), and the contacts that better first-contact resolution or online case
-- status would avoid:
--   avoidable_fcr = repeat contacts x (target FCR - FCR) / (1 - FCR), when FCR is below target:
--     repeats are failure demand of unresolved contacts; reaching the target resolves that share
--     of the unresolved ones and so removes that share of their repeats;
--   avoidable_online_status = status inquiries x deflection share, for services without online
--     status (dim_service.online_status); deflected inquiries become web status checks, whose
--     unit cost is netted out of avoidable_cost.
-- Web self-service sessions carry no customer, so the web rows have segment 'all' only.
-- Parameters: :period_start, :start_day, :end_day (the month), :target_fcr, :status_deflection_share.
-- Portable between DuckDB and PostgreSQL.
-- The month's contacts are the daily counts of agg_contact_daily, added up.
WITH kinds AS (
    SELECT segment_kind
    FROM (VALUES ('all'), ('customer_type'), ('language'), ('region'), ('customer_history')) AS k(segment_kind)
),
contact_figures AS (
    SELECT x.service_id, x.journey_id, x.channel, k.segment_kind,
           CASE k.segment_kind WHEN 'all' THEN 'all'
                WHEN 'customer_type' THEN COALESCE(x.customer_type, 'unknown')
                WHEN 'language' THEN COALESCE(x.language, 'unknown')
                WHEN 'region' THEN COALESCE(x.region, 'unknown')
                ELSE x.customer_history END AS segment,
           CAST(SUM(x.contacts) AS BIGINT) AS contacts,
           CAST(SUM(x.answered) AS BIGINT) AS answered,
           CAST(SUM(x.resolved) AS BIGINT) AS resolved,
           CAST(SUM(x.repeat_contacts) AS BIGINT) AS repeat_contacts,
           CAST(SUM(x.status_inquiries) AS BIGINT) AS status_inquiries
    FROM agg_contact_daily x CROSS JOIN kinds k
    WHERE x.date_day >= :start_day AND x.date_day < :end_day
    GROUP BY 1, 2, 3, 4, 5
),
web_figures AS (
    SELECT service_id, journey_id, 'web' AS channel, 'all' AS segment_kind, 'all' AS segment,
           SUM(sessions) AS contacts
    FROM fact_web_daily
    WHERE date_day >= :start_day AND date_day < :end_day
    GROUP BY 1, 2
),
rates AS (
    SELECT f.*,
           CASE WHEN f.answered > 0 THEN 1.0 * f.resolved / f.answered END AS fcr
    FROM contact_figures f
),
web_cost AS (
    SELECT MAX(unit_cost) AS unit_cost FROM dim_unit_cost WHERE channel_id = 'web'
)
SELECT CAST(:period_start AS DATE) AS period_start, r.service_id, r.journey_id, r.channel,
       r.segment_kind, r.segment, r.contacts, u.unit_cost, r.contacts * u.unit_cost AS cost,
       r.answered, 100.0 * r.fcr AS fcr_rate, r.repeat_contacts, r.status_inquiries,
       CASE WHEN r.fcr IS NULL OR r.fcr >= 1 OR r.fcr >= CAST(:target_fcr AS DOUBLE PRECISION) THEN 0.0
            ELSE r.repeat_contacts * (CAST(:target_fcr AS DOUBLE PRECISION) - r.fcr) / (1 - r.fcr)
       END AS avoidable_fcr,
       CASE WHEN s.online_status OR r.service_id = 'unmapped' THEN 0.0
            ELSE r.status_inquiries * CAST(:status_deflection_share AS DOUBLE PRECISION)
       END AS avoidable_online_status,
       u.unit_cost * CASE WHEN r.fcr IS NULL OR r.fcr >= 1
                              OR r.fcr >= CAST(:target_fcr AS DOUBLE PRECISION) THEN 0.0
                          ELSE r.repeat_contacts * (CAST(:target_fcr AS DOUBLE PRECISION) - r.fcr)
                               / (1 - r.fcr) END
           + (u.unit_cost - COALESCE(w.unit_cost, 0.0))
             * CASE WHEN s.online_status OR r.service_id = 'unmapped' THEN 0.0
                    ELSE r.status_inquiries * CAST(:status_deflection_share AS DOUBLE PRECISION) END
           AS avoidable_cost
FROM rates r
LEFT JOIN dim_service s ON s.service_id = r.service_id
LEFT JOIN dim_unit_cost u ON u.channel_id = r.channel
CROSS JOIN web_cost w
UNION ALL
SELECT CAST(:period_start AS DATE), g.service_id, g.journey_id, g.channel, g.segment_kind, g.segment,
       g.contacts, u.unit_cost, g.contacts * u.unit_cost, NULL, NULL, NULL, NULL, 0.0, 0.0, 0.0
FROM web_figures g
LEFT JOIN dim_unit_cost u ON u.channel_id = g.channel
