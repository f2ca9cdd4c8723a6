-- Services of the agency with their cycle-time standards (dim_service).
SELECT service_id, agency_id, service_name, journey_id, hisp, standard_days, online_status
FROM dim_service
