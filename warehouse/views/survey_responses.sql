-- One row per A-11 post-transaction survey respondent (fact_survey_response), with the
-- cycle time of the case it is about. Comments are redacted before they are loaded.
SELECT r.response_id, r.response_date, r.form_uuid, r.service_id, s.service_name, r.journey_id,
       r.stage, r.channel, r.customer_type, r.language, r.region, r.created_at,
       r.trust, r.satisfaction, r.effectiveness, r.ease, r.efficiency, r.transparency,
       r.humanity, r.employee, r.comment,
       r.case_key, r.case_linked, r.case_cycle_days, r.case_standard_days, r.case_over_standard
FROM fact_survey_response r
LEFT JOIN dim_service s ON s.service_id = r.service_id
