"""The warehouse star schema, declared once in SQLAlchemy Core with explicit types.

Kimball dimensions and facts keyed by service and journey (see DESIGN.md). The
same declarations create the tables on DuckDB and PostgreSQL; comments become
``COMMENT ON`` documentation for BI users.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

metadata = sa.MetaData()


def _col(name: str, type_: sa.types.TypeEngine, comment: str, **kw) -> sa.Column:
    return sa.Column(name, type_, comment=comment, **kw)


TS = sa.DateTime(timezone=True)
TEXT = sa.String()

dim_service = sa.Table(
    "dim_service", metadata,
    _col("service_id", TEXT, "Service identifier from the catalog.", primary_key=True),
    _col("agency_id", TEXT, "Agency that delivers the service."),
    _col("service_name", TEXT, "Plain-language service name."),
    _col("journey_id", TEXT, "Customer journey the service belongs to."),
    _col("hisp", sa.Boolean, "High Impact Service Provider service under OMB A-11 Section 280."),
    _col("standard_days", sa.Integer, "Published cycle-time standard, days from receipt to decision."),
    _col("online_status", sa.Boolean, "Customers can check case status online."),
    comment="Services of the agency, from schemas/catalog.yaml.",
)

dim_journey = sa.Table(
    "dim_journey", metadata,
    _col("journey_id", TEXT, "Journey identifier.", primary_key=True),
    _col("stage", TEXT, "Stage of the journey.", primary_key=True),
    _col("journey_name", TEXT, "Plain-language journey name."),
    _col("stage_order", sa.Integer, "Position of the stage along the journey (1 = first)."),
    _col("is_case_received_stage", sa.Boolean, "Cases count as received at this stage."),
    _col("is_case_decided_stage", sa.Boolean, "Cases count as decided at this stage."),
    comment="Journeys and their stages, from schemas/catalog.yaml.",
)

dim_channel = sa.Table(
    "dim_channel", metadata,
    _col("channel_id", TEXT, "Channel identifier.", primary_key=True),
    _col("channel_name", TEXT, "Plain-language channel name."),
    _col("channel_kind", TEXT, "digital or assisted."),
    comment="Channels through which customers reach the agency.",
)

dim_date = sa.Table(
    "dim_date", metadata,
    _col("date_day", sa.Date, "Calendar day.", primary_key=True),
    _col("year", sa.Integer, "Calendar year."),
    _col("month", sa.Integer, "Calendar month 1-12."),
    _col("week_start", sa.Date, "Monday of the ISO week."),
    _col("day_of_week", sa.Integer, "ISO day of week, 1 = Monday."),
    _col("fiscal_year", sa.Integer, "US federal fiscal year (starts 1 October)."),
    _col("fiscal_quarter", sa.Integer, "Fiscal quarter 1-4 (Q1 = October-December)."),
    comment="Calendar with federal fiscal periods.",
)

_segments = (
    ("customer_type", TEXT, "Customer segment: individual, business or veteran."),
    ("language", TEXT, "Preferred language (ISO 639-1)."),
    ("region", TEXT, "Customer region."),
)


def _segment_columns() -> list[sa.Column]:
    return [_col(*spec) for spec in _segments]


fact_case = sa.Table(
    "fact_case", metadata,
    _col("case_key", TEXT, "Pseudonymous case key (HMAC of the case number).", primary_key=True),
    _col("service_id", TEXT, "Service (unmapped when the form type is not in the catalog)."),
    _col("journey_id", TEXT, "Journey of the service."),
    _col("form_type", TEXT, "Form the case was filed on."),
    _col("product_line", TEXT, "Product line within the service."),
    _col("office", TEXT, "Office that owns the case."),
    _col("channel", TEXT, "How the case was filed."),
    _col("customer_key", TEXT, "Pseudonymous customer key."),
    *_segment_columns(),
    _col("received_at", TS, "When the case was received."),
    _col("received_date", sa.Date, "Day the case was received (UTC)."),
    _col("decided_at", TS, "When the case was decided."),
    _col("decided_date", sa.Date, "Day the case was decided (UTC)."),
    _col("status", TEXT, "Current status."),
    _col("cycle_days", sa.Integer, "Calendar days from receipt to decision (decided cases)."),
    _col("standard_days", sa.Integer, "Cycle-time standard of the service."),
    _col("over_standard", sa.Boolean, "Decided later than the standard allows."),
    _col("updated_at", TS, "Last change in the case system; newer rows win."),
    comment="One row per case: accumulating snapshot of its path from receipt to decision.",
)

fact_contact = sa.Table(
    "fact_contact", metadata,
    _col("contact_key", TEXT, "Pseudonymous contact key."),
    _col("contact_date", sa.Date, "Day of the contact (UTC); the partition."),
    _col("customer_key", TEXT, "Pseudonymous customer key."),
    _col("case_key", TEXT, "Pseudonymous key of the case the contact is about."),
    _col("service_id", TEXT, "Service (from the queue)."),
    _col("journey_id", TEXT, "Journey of the service."),
    _col("stage", TEXT, "Journey stage (from the contact reason)."),
    _col("queue", TEXT, "Routing queue."),
    _col("channel", TEXT, "phone, chat or email."),
    _col("reason", TEXT, "Contact reason code."),
    *_segment_columns(),
    _col("start_time", TS, "When the contact started."),
    _col("wait_seconds", sa.Integer, "Seconds waiting for an agent."),
    _col("handle_seconds", sa.Integer, "Seconds of agent handling."),
    _col("resolved_first_contact", sa.Boolean, "Resolved on this contact."),
    _col("transferred", sa.Boolean, "Transferred to another queue."),
    _col("abandoned", sa.Boolean, "Customer left before an agent answered."),
    _col("repeat_within_7d", sa.Boolean,
         "Same customer contacted about the same service in the 7 days before."),
    _col("notes", TEXT, "Agent's notes on the contact, personal data redacted."),
    comment="One row per call, chat or email contact.",
)

# Two narrow tables that repeat what the marts look up in fact_contact, each filled every night
# in the order of its one index (``pipelines.conform.contact_lookups``). On PostgreSQL a probe
# needs a B-tree, and COPY adds every row to each index of its table as it goes: rows in key
# order fill the leaf pages one after another, rows in any other order each land on another
# page. fact_contact's rows could be in one order only, so its two B-trees went here (5M
# contacts took 72 s to COPY with both, 18 s with the customer one alone, 13.5 s with neither).
# A DuckDB warehouse, which keeps no B-trees, reads them as views of fact_contact instead
# (``warehouse.stored_tables``).
def _as_in(table: sa.Table, *names: str) -> list[sa.Column]:
    """Columns declared as ``table`` declares them (name, type, comment)."""
    return [_col(name, table.c[name].type, table.c[name].comment) for name in names]


contact_by_case = sa.Table(
    "contact_by_case", metadata,
    *_as_in(fact_contact, "case_key", "start_time", "contact_key", "contact_date", "channel", "wait_seconds",
            "resolved_first_contact", "transferred", "abandoned"),
    comment="fact_contact's contacts that name a case, with what the driver mart reads of the case's "
            "latest contact before a survey response; loaded with fact_contact.",
)

contact_customer_day = sa.Table(
    "contact_customer_day", metadata,
    *_as_in(fact_contact, "customer_key", "contact_date"),
    _col("first_start", TS, "When the customer's first contact of the day started."),
    comment="Each customer's first contact of each day, from fact_contact: the marts find a day's "
            "customers here, and the loads each customer's first contact; loaded with fact_contact.",
)


def _case_links(contacts: sa.FromClause) -> sa.Select:
    return (sa.select(*[contacts.c[c.name] for c in contact_by_case.columns])
            .where(contacts.c.case_key.is_not(None))
            .order_by(contacts.c.case_key, contacts.c.start_time, contacts.c.contact_key))


def _customer_days(contacts: sa.FromClause) -> sa.Select:
    return (sa.select(contacts.c.customer_key, contacts.c.contact_date,
                      sa.func.min(contacts.c.start_time).label("first_start"))
            .where(contacts.c.customer_key.is_not(None))
            .group_by(contacts.c.customer_key, contacts.c.contact_date)
            .order_by(contacts.c.customer_key, contacts.c.contact_date))


# The rows of each, from contacts of fact_contact's columns (fact_contact itself, or a night's
# conformed spool), in the order of its index.
CONTACT_LOOKUPS: dict[sa.Table, Callable[[sa.FromClause], sa.Select]] = {
    contact_by_case: _case_links,
    contact_customer_day: _customer_days,
}

# A customer's first contact, looked up by the marts in fact_contact (DuckDB, which has no index
# to probe) or contact_customer_day (PostgreSQL), made a night's marts cost more the longer the
# history: one grouped every contact ever loaded, the other probed a B-tree of every customer's
# every day. The contact loads keep each customer's first contact here instead
# (pipelines.conform.first_contacts): a row per customer, whatever the history.
customer_first_contact = sa.Table(
    "customer_first_contact", metadata,
    *_as_in(fact_contact, "customer_key"),
    _col("first_start", TS, "When the customer's first contact started."),
    _col("first_date", sa.Date, "Day of that contact (UTC)."),
    comment="Each customer's first contact, from fact_contact: the marts look up a customer's first "
            "activity here; kept by the contact loads.",
)


def first_contact_rows(contacts: sa.FromClause, start: str = "start_time") -> sa.Select:
    """customer_first_contact's rows of ``contacts`` (customer_key, contact_date and the contact's
    ``start``: fact_contact's columns, or contact_customer_day's with ``first_start``). A
    contact's day is the UTC day of its start, so the earliest day is the first contact's."""
    return (sa.select(contacts.c.customer_key, sa.func.min(contacts.c[start]).label("first_start"),
                      sa.func.min(contacts.c.contact_date).label("first_date"))
            .where(contacts.c.customer_key.is_not(None))
            .group_by(contacts.c.customer_key))


# Every table derived from fact_contact, and its rows from contacts of fact_contact's columns:
# what a warehouse that stores one fills it with when it is new beside contacts already loaded,
# or reads as a view of fact_contact when it does not store it (warehouse.stored_tables).
CONTACT_DERIVED: dict[sa.Table, Callable[[sa.FromClause], sa.Select]] = {
    **CONTACT_LOOKUPS,
    customer_first_contact: first_contact_rows,
}

A11_ITEMS = ("trust", "satisfaction", "effectiveness", "ease", "efficiency", "transparency",
             "humanity", "employee")

fact_survey_response = sa.Table(
    "fact_survey_response", metadata,
    _col("response_id", TEXT, "Survey platform response id."),
    _col("response_date", sa.Date, "Day the response was submitted (UTC); the partition."),
    _col("form_uuid", TEXT, "Survey form."),
    _col("service_id", TEXT, "Service (from the form)."),
    _col("journey_id", TEXT, "Journey of the service."),
    _col("stage", TEXT, "Journey stage the survey asks about."),
    _col("channel", TEXT, "Channel of the transaction surveyed."),
    *_segment_columns(),
    _col("created_at", TS, "When the response was submitted."),
    *[_col(item, sa.Integer, f"A-11 {item} item, 1-5.") for item in A11_ITEMS],
    _col("comment", TEXT, "Free-text comment, personal data redacted."),
    _col("comment_sentiment", sa.Double, "Sentiment of the redacted comment (VADER compound, -1..1)."),
    _col("comment_themes", TEXT, "Themes of the comment (schemas/themes.yaml), sorted, ';'-separated."),
    _col("case_key", TEXT, "Pseudonymous key of the case surveyed (from external_id)."),
    _col("case_linked", sa.Boolean, "The case was found in fact_case."),
    _col("case_cycle_days", sa.Integer, "Cycle days of the case surveyed."),
    _col("case_standard_days", sa.Integer, "Standard of the case's service."),
    _col("case_over_standard", sa.Boolean, "The case surveyed ran over its standard."),
    comment="One row per A-11 post-transaction survey respondent, linked to its case.",
)

fact_web_daily = sa.Table(
    "fact_web_daily", metadata,
    _col("date_day", sa.Date, "Day; the partition."),
    _col("page_path", TEXT, "Page path."),
    _col("service_id", TEXT, "Service (from the path prefix)."),
    _col("journey_id", TEXT, "Journey of the service."),
    _col("stage", TEXT, "Journey stage (from the path suffix)."),
    _col("sessions", sa.Integer, "Sessions."),
    _col("task_starts", sa.Integer, "Online tasks started."),
    _col("task_completions", sa.Integer, "Online tasks completed."),
    _col("status_checks", sa.Integer, "Online case-status checks."),
    comment="Self-service use per page and day.",
)

fact_feedback = sa.Table(
    "fact_feedback", metadata,
    _col("feedback_id", TEXT, "Feedback inbox id."),
    _col("feedback_date", sa.Date, "Day received (UTC); the partition."),
    _col("channel", TEXT, "app_review, email or social."),
    _col("received_at", TS, "When it was received."),
    _col("service_id", TEXT, "Service (from the hint; unmapped when none matches)."),
    _col("journey_id", TEXT, "Journey of the service."),
    _col("service_hint", TEXT, "Product or topic as named by the sender."),
    _col("rating", sa.Integer, "Star rating (app reviews)."),
    _col("text", TEXT, "Feedback text, personal data redacted."),
    _col("sentiment", sa.Double, "Sentiment of the redacted text (VADER compound, -1..1)."),
    _col("themes", TEXT, "Themes of the text (schemas/themes.yaml), sorted, ';'-separated."),
    *_segment_columns(),
    comment="Unsolicited feedback: reviews, emails, social posts.",
)

quarantine = sa.Table(
    "quarantine", metadata,
    _col("source", TEXT, "Source the row came from."),
    _col("partition_date", sa.Date, "Day of the run's data interval."),
    _col("run_id", TEXT, "Run that quarantined the row."),
    _col("origin", TEXT, "File, table or page the row came from."),
    _col("row_number", sa.Integer, "Row number within the origin (1 = first data row)."),
    _col("failed_check", TEXT, "First check the row failed."),
    _col("column_name", TEXT, "Column of that check."),
    _col("reason", TEXT, "Every failed check, in words."),
    _col("record", TEXT, "The row as received, JSON."),
    comment="Rows that failed their contract, kept with the reason; never silently dropped.",
)

unmapped_code = sa.Table(
    "unmapped_code", metadata,
    _col("source", TEXT, "Source."),
    _col("partition_date", sa.Date, "Day of the run's data interval."),
    _col("code_kind", TEXT, "Kind of code (form_type, queue, ...)."),
    _col("code", TEXT, "The code that maps to no service."),
    _col("rows", sa.Integer, "Rows loaded with it (as service 'unmapped')."),
    comment="Codes the catalog does not map yet: rows are loaded as 'unmapped', not dropped.",
)

ledger = sa.Table(
    "ledger", metadata,
    _col("source", TEXT, "Source.", primary_key=True),
    _col("interval_start", TS, "Start of the data interval.", primary_key=True),
    _col("interval_end", TS, "End of the data interval (exclusive)."),
    _col("run_id", TEXT, "Run that loaded it last."),
    _col("status", TEXT, "loaded or failed."),
    _col("rows_read", sa.Integer, "Rows extracted from the source."),
    _col("rows_loaded", sa.Integer, "Rows loaded into the facts."),
    _col("rows_quarantined", sa.Integer, "Rows quarantined."),
    _col("rows_unmapped", sa.Integer, "Loaded rows whose code maps to no service."),
    _col("message", TEXT, "Why the source failed, if it did."),
    _col("loaded_at", TS, "When the ledger row was written."),
    comment="One row per source and interval: rows read = rows loaded + rows quarantined.",
)

mart_journey_service_daily = sa.Table(
    "mart_journey_service_daily", metadata,
    _col("date_day", sa.Date, "Day."),
    _col("service_id", TEXT, "Service."),
    _col("journey_id", TEXT, "Journey."),
    _col("stage", TEXT, "Journey stage."),
    _col("channel", TEXT, "Channel."),
    _col("cases_received", sa.Integer, "Cases received."),
    _col("cases_decided", sa.Integer, "Cases decided."),
    _col("median_cycle_days", sa.Double, "Median cycle days of cases decided."),
    _col("p90_cycle_days", sa.Double, "90th percentile cycle days of cases decided."),
    _col("pct_over_standard", sa.Double, "% of cases decided over their standard."),
    _col("contacts", sa.Integer, "Contacts."),
    _col("fcr_rate", sa.Double, "% of answered contacts resolved on first contact."),
    _col("repeat_contact_rate", sa.Double, "% of contacts that repeat one in the 7 days before."),
    _col("abandonment_rate", sa.Double, "% of contacts abandoned."),
    _col("self_service_completions", sa.Integer, "Online task completions."),
    _col("status_checks", sa.Integer, "Online status checks."),
    _col("survey_responses", sa.Integer, "Survey responses."),
    _col("mean_trust", sa.Double, "Mean A-11 trust (1-5)."),
    _col("mean_satisfaction", sa.Double, "Mean A-11 satisfaction (1-5)."),
    *[_col(f"pct_agree_{item}", sa.Double, f"% answering 4 or 5 on the A-11 {item} item.")
      for item in A11_ITEMS],
    comment="X and O side by side per day, service, journey stage and channel.",
)

# The daily marts rebuilt per day from warehouse/marts/<name>.sql (pipelines.marts).
MARTS: dict[str, sa.Table] = {"mart_journey_service_daily": mart_journey_service_daily}

# The partitioned facts declare no primary key: their keys are checked unique per batch by
# validation, and each partition is replaced whole, while a key index would cost DuckDB
# about 12x on bulk inserts (measured: 1M keys 0.92 s with, 0.07 s without).
PARTITIONED_FACTS: dict[str, str] = {
    "fact_contact": "contact_date",
    "fact_survey_response": "response_date",
    "fact_web_daily": "date_day",
    "fact_feedback": "feedback_date",
}


# ---------------------------------------------------------------- personal data (privacy, retention)

ledger_redaction = sa.Table(
    "ledger_redaction", metadata,
    _col("source", TEXT, "Source.", primary_key=True),
    _col("interval_start", TS, "Start of the data interval.", primary_key=True),
    _col("column_name", TEXT, "Free-text column of the source (contract name).", primary_key=True),
    _col("zone", TEXT, "curated (loaded rows) or quarantine (records kept for engineers).",
         primary_key=True),
    _col("pii_type", TEXT, "Type of personal data, as in its placeholder [TYPE].", primary_key=True),
    _col("interval_end", TS, "End of the data interval (exclusive)."),
    _col("run_id", TEXT, "Run that loaded it last."),
    _col("redactions", sa.Integer, "Matches replaced by the placeholder."),
    _col("texts_redacted", sa.Integer, "Texts with at least one match of this type."),
    _col("texts_checked", sa.Integer, "Non-empty texts of the column checked."),
    comment="Redactions per source, interval, free-text column and type of personal data; "
            "written with the source's load.",
)

raw_purge = sa.Table(
    "raw_purge", metadata,
    _col("zone", TEXT, "raw (extracts as received) or staging (validated batches).", primary_key=True),
    _col("source", TEXT, "Source.", primary_key=True),
    _col("partition_date", sa.Date, "Day of the deleted partition.", primary_key=True),
    _col("files", sa.Integer, "Files deleted."),
    _col("bytes", sa.BigInteger, "Bytes deleted."),
    _col("run_id", TEXT, "Run that purged it."),
    _col("interval_start", TS, "Start of that run's data interval: retention counts back from it."),
    _col("retention_days", sa.Integer, "Retention in force."),
    _col("purged_at", TS, "When the partition was deleted."),
    comment="Raw-zone partitions (unredacted extracts) deleted after the retention period.",
)


# ---------------------------------------------------------------- indexes (PostgreSQL only)
# A night replaces its own days and reads back a bounded window (the days, their weeks, months
# and fiscal quarter; a customer's earliest activity; a case's contacts): on PostgreSQL each of
# those is an index range scan, so the night's cost does not grow with the days already loaded
# (without them every DELETE and mart query scanned the whole history). DuckDB prunes by zone
# maps instead, and an ART index would make its bulk inserts about 12x slower, so it gets none.
#
# The day of a day-partitioned fact gets a BRIN index: a night's rows arrive together, so each
# range of table pages holds one day or two, and a few bytes per range find them. A B-tree on
# that column cost COPY 1.2 s per 1M contacts (2.5 s without it), BRIN nothing measurable; the
# bulk insert summarizes the ranges it filled (``warehouse.summarize_day_ranges``: 0.2 s per 1M contacts), or
# they would count as matching every day until autovacuum got to them.
BRIN_DAY_INDEXES: tuple[sa.Index, ...] = tuple(
    sa.Index(f"ix_{name}_{column}_brin", metadata.tables[name].c[column], postgresql_using="brin").ddl_if(
        dialect="postgresql")
    for name, column in (*PARTITIONED_FACTS.items(), *((t.name, "contact_date") for t in CONTACT_LOOKUPS))
)

# Indexes replaced since (dropped where a warehouse has them): the B-trees on the day columns,
# and fact_contact's on case_key alone, under which the driver mart's probe for a case's latest
# contact read every contact of the case (730 days of history: 4.3 s, with start_time 1.7 s),
# then fact_contact's B-trees, which contact_by_case and contact_customer_day hold instead.
SUPERSEDED_INDEXES = (*(f"ix_{name}_{column}" for name, column in PARTITIONED_FACTS.items()),
                      "ix_fact_contact_case_key", "ix_fact_contact_case_key_start_time",
                      "ix_fact_contact_customer_key_start_time")

PARTITION_INDEXES: tuple[sa.Index, ...] = BRIN_DAY_INDEXES + tuple(
    sa.Index(f"ix_{table.name}_{'_'.join(columns)}", *[table.c[c] for c in columns]).ddl_if(
        dialect="postgresql")
    for table, columns in (
        (contact_customer_day, ("customer_key", "first_start")),  # a customer's first contact of a day
        (customer_first_contact, ("customer_key", "first_start")),  # a customer's first contact
        (contact_by_case, ("case_key", "start_time")),  # a case's latest contact before a time (driver mart)
        (fact_case, ("received_date",)),
        (fact_case, ("decided_date",)),
        (fact_case, ("customer_key", "received_at")),
        (quarantine, ("source", "partition_date")),
        (unmapped_code, ("source", "partition_date")),
        (mart_journey_service_daily, ("date_day",)),
    )
)
