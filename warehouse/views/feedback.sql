-- Unsolicited feedback: app reviews, emails, social posts (fact_feedback). The text is
-- redacted before it is loaded.
SELECT f.feedback_id, f.feedback_date, f.channel, f.received_at, f.service_id, s.service_name,
       f.journey_id, f.service_hint, f.rating, f.text, f.customer_type, f.language, f.region
FROM fact_feedback f
LEFT JOIN dim_service s ON s.service_id = f.service_id
