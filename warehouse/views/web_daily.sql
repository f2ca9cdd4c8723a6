-- Self-service use per page and day (fact_web_daily).
SELECT w.date_day, w.page_path, w.service_id, s.service_name, w.journey_id, w.stage,
       w.sessions, w.task_starts, w.task_completions, w.status_checks
FROM fact_web_daily w
LEFT JOIN dim_service s ON s.service_id = w.service_id
