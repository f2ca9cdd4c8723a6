-- One row per case (fact_case): its path from receipt to decision against the service's
-- cycle-time standard. Case keys are pseudonyms; the customer key is left out.
SELECT c.case_key, c.service_id, s.service_name, c.journey_id, c.form_type, c.product_line, c.office,
       c.channel, c.customer_type, c.language, c.region,
       c.received_at, c.received_date, c.decided_at, c.decided_date, c.status,
       c.cycle_days, c.standard_days, c.over_standard, c.updated_at
FROM fact_case c
LEFT JOIN dim_service s ON s.service_id = c.service_id
