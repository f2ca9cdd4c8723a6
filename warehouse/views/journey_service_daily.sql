-- X next to O per day, service, journey stage and channel (mart_journey_service_daily),
-- with the plain names of service and journey. The table BI dashboards start from.
SELECT m.date_day, m.service_id, s.service_name, s.agency_id, m.journey_id, j.journey_name,
       m.stage, j.stage_order, m.channel,
       m.cases_received, m.cases_decided, m.median_cycle_days, m.p90_cycle_days, m.pct_over_standard,
       m.contacts, m.fcr_rate, m.repeat_contact_rate, m.abandonment_rate,
       m.self_service_completions, m.status_checks,
       m.survey_responses, m.mean_trust, m.mean_satisfaction,
       m.pct_agree_trust, m.pct_agree_satisfaction, m.pct_agree_effectiveness, m.pct_agree_ease,
       m.pct_agree_efficiency, m.pct_agree_transparency, m.pct_agree_humanity, m.pct_agree_employee
FROM mart_journey_service_daily m
LEFT JOIN dim_service s ON s.service_id = m.service_id
LEFT JOIN dim_journey j ON j.journey_id = m.journey_id AND j.stage = m.stage
