-- Journeys and their stages in order (dim_journey).
SELECT journey_id, journey_name, stage, stage_order, is_case_received_stage, is_case_decided_stage
FROM dim_journey
