"""xoflow: nightly ETL of operational (O) and experience (X) data keyed by service and journey."""
