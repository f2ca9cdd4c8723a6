-- Did last night load? One row per source and data interval from the ledger: rows read =
-- rows loaded + rows quarantined. Failure messages stay in the ledger (they may quote
-- values from rejected rows).
SELECT source, interval_start, interval_end, status, rows_read, rows_loaded, rows_quarantined,
       rows_unmapped, run_id, loaded_at
FROM ledger
