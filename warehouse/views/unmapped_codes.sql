-- Source codes (form types, queues, ...) the catalog does not map to a service yet: their
-- rows are loaded as service 'unmapped' (unmapped_code).
SELECT source, partition_date, code_kind, code, rows
FROM unmapped_code
