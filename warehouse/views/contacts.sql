-- One row per call, chat or email contact (fact_contact). Contact and case keys are
-- pseudonyms; the customer key is left out.
SELECT c.contact_key, c.contact_date, c.case_key, c.service_id, s.service_name, c.journey_id, c.stage,
       c.queue, c.channel, c.reason, c.customer_type, c.language, c.region,
       c.start_time, c.wait_seconds, c.handle_seconds, c.resolved_first_contact, c.transferred,
       c.abandoned, c.repeat_within_7d
FROM fact_contact c
LEFT JOIN dim_service s ON s.service_id = c.service_id
