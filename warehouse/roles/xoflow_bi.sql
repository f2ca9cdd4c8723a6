-- xoflow_bi: the read-only role BI tools (Superset, Metabase, Tableau) connect as.
--
-- PostgreSQL only. Creating a role needs CREATEROLE (or a superuser): the nightly job
-- runs this file itself when its user may and the role is missing; otherwise a database
-- administrator runs it (psql -d <warehouse> -f warehouse/roles/xoflow_bi.sql; running
-- it again is harmless and refreshes the settings below) and sets a password:
--     ALTER ROLE xoflow_bi PASSWORD '...';
-- The role may log in but has no password until then, so it cannot connect over
-- password authentication before an administrator decides it may.
--
-- What the role may read is not granted here but by the nightly job on every run
-- (pipelines/bi.py), right after it recreates the views: SELECT on every view in schema
-- bi and on the mart tables, and nothing else (any other privilege on the warehouse's
-- tables is revoked again each run). Its sessions find the bi views, then the marts, by
-- their plain names, and start read-only; the privileges, not that default, are what
-- refuse writes.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'xoflow_bi') THEN
        BEGIN
            CREATE ROLE xoflow_bi LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- created at the same moment by another session
        END;
    END IF;
    ALTER ROLE xoflow_bi SET search_path = bi, public;
    ALTER ROLE xoflow_bi SET default_transaction_read_only = on;
END
$$;
