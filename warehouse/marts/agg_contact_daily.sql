-- Contacts counted per day, service, journey, channel and segment values: the additive part
-- of the contact figures. mart_segment_daily adds these counts up per day and segment kind,
-- mart_contact_cost_monthly per month, so a night joins its own contacts to their cases and
-- customers once, and a month's mart reads a few thousand counted rows instead of joining a
-- month of contacts again every night.
-- customer_history: 'returning' when the customer already had a case received or a contact
-- before the case the contact is about (before the contact itself when it names no known
-- case); customer_first_seen holds each customer's earliest activity (see mart_segment_daily.sql).
-- It is counted by two booleans and named afterwards: PostgreSQL estimates the groups of an
-- expression from the columns it reads (customer keys and times: millions) but a boolean's as
-- two, and expecting millions of groups it sorted the day's contacts instead of hashing them
-- into a few thousand (13 of 26 s at 5M contacts).
-- Parameters: :start_day (inclusive), :end_day (exclusive). Portable between DuckDB and PostgreSQL.
WITH counted AS (
    SELECT k.contact_date, k.service_id, k.journey_id, k.channel, k.customer_type, k.language, k.region,
           k.customer_key IS NULL AS unknown_customer,
           COALESCE(f.first_at < COALESCE(c.received_at, k.start_time), FALSE) AS returning_customer,
           COUNT(*) AS contacts,
           COUNT(*) FILTER (WHERE NOT k.abandoned) AS answered,
           COUNT(*) FILTER (WHERE k.resolved_first_contact AND NOT k.abandoned) AS resolved,
           COUNT(*) FILTER (WHERE k.repeat_within_7d) AS repeat_contacts,
           COUNT(*) FILTER (WHERE k.abandoned) AS abandoned_contacts,
           COUNT(*) FILTER (WHERE k.reason = 'status_inquiry') AS status_inquiries
    FROM fact_contact k
    LEFT JOIN fact_case c ON c.case_key = k.case_key
    LEFT JOIN customer_first_seen f ON f.customer_key = k.customer_key
    WHERE k.contact_date >= :start_day AND k.contact_date < :end_day
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9
)
SELECT contact_date AS date_day, service_id, journey_id, channel, customer_type, language, region,
       CASE WHEN unknown_customer THEN 'unknown' WHEN returning_customer THEN 'returning'
            ELSE 'first_time' END AS customer_history,
       contacts, answered, resolved, repeat_contacts, abandoned_contacts, status_inquiries
FROM counted
