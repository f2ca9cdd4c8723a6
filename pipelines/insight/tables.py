"""Warehouse tables of the insight layer, declared on the star schema's metadata.

Aggregate marts break every figure down by customer segment in long form:
``segment_kind`` is ``all``, ``customer_type``, ``language``, ``region`` or
``customer_history`` and ``segment`` its value (``all`` for the whole; ``unknown``
where the source does not say). ``customer_history`` is ``first_time`` or
``returning``: returning when the customer's pseudonymous key already had a case
received or a contact before the case the record is about (or, for a contact about
no known case, before the contact). Feedback carries no customer key: ``unknown``.

Period marts carry ``period_start`` (the Monday of an ISO week, the first of a month,
or the first day of a federal fiscal quarter) and are replaced per period.
"""

from __future__ import annotations

import sqlalchemy as sa

from pipelines.model import A11_ITEMS, TEXT, _col, metadata

# 8-byte floats: DuckDB reads a plain FLOAT as 4 bytes (about 7 significant digits).
DOUBLE = sa.Double()
SEGMENT_KINDS = ("all", "customer_type", "language", "region", "customer_history")


def _segment() -> list[sa.Column]:
    return [_col("segment_kind", TEXT, "Segment breakdown: all, customer_type, language, region or "
                 "customer_history."),
            _col("segment", TEXT, "Segment value (all for the whole; unknown where the source does not "
                 "say).")]


def _segment_values() -> list[sa.Column]:
    return [_col("customer_type", TEXT, "Customer segment: individual, business or veteran."),
            _col("language", TEXT, "Preferred language (ISO 639-1)."),
            _col("region", TEXT, "Customer region."),
            _col("customer_history", TEXT, "first_time or returning (earlier case or contact of the "
                 "customer).")]


def _period(comment: str) -> sa.Column:
    return _col("period_start", sa.Date, comment)


dim_theme = sa.Table(
    "dim_theme", metadata,
    sa.Column("theme_id", TEXT, primary_key=True, comment="Theme identifier."),
    _col("label", TEXT, "Plain-language theme name."),
    _col("description", TEXT, "What the theme covers."),
    comment="Themes of free text, from schemas/themes.yaml.",
)

dim_unit_cost = sa.Table(
    "dim_unit_cost", metadata,
    sa.Column("channel_id", TEXT, primary_key=True, comment="Channel."),
    _col("unit_cost", DOUBLE, "Cost of one contact or interaction in this channel."),
    _col("currency", TEXT, "Currency of unit_cost."),
    comment="Unit cost per channel, from schemas/costs.yaml.",
)

fact_text_theme = sa.Table(
    "fact_text_theme", metadata,
    _col("date_day", sa.Date, "Day the text was received."),
    _col("source", TEXT, "survey_comment or feedback."),
    _col("record_id", TEXT, "response_id or feedback_id."),
    _col("service_id", TEXT, "Service."),
    _col("journey_id", TEXT, "Journey."),
    _col("theme_id", TEXT, "Theme found in the text."),
    _col("sentiment", DOUBLE, "Sentiment of the whole text (VADER compound, -1..1)."),
    *_segment_values(),
    comment="Bridge: one row per text and theme it mentions (texts redacted before analysis).",
)

agg_contact_daily = sa.Table(
    "agg_contact_daily", metadata,
    _col("date_day", sa.Date, "Day the contact started."),
    _col("service_id", TEXT, "Service."),
    _col("journey_id", TEXT, "Journey."),
    _col("channel", TEXT, "Contact channel."),
    *_segment_values(),
    _col("contacts", sa.Integer, "Contacts."),
    _col("answered", sa.Integer, "Contacts not abandoned."),
    _col("resolved", sa.Integer, "Answered contacts resolved on first contact."),
    _col("repeat_contacts", sa.Integer, "Contacts repeating one in the 7 days before."),
    _col("abandoned_contacts", sa.Integer, "Contacts abandoned."),
    _col("status_inquiries", sa.Integer, "Contacts asking for case status."),
    comment="Contacts counted per day, channel and segment values: what the daily segment and "
            "monthly cost marts add up.",
)

agg_driver_daily = sa.Table(
    "agg_driver_daily", metadata,
    _col("date_day", sa.Date, "Day the responses were submitted."),
    _col("service_id", TEXT, "Service."),
    _col("journey_id", TEXT, "Journey."),
    *_segment_values(),
    _col("driver", TEXT, "case_timeliness, wait_time, first_contact_resolution or transfer."),
    _col("band", TEXT, "Operational band of the response's case or contact."),
    _col("band_order", sa.Integer, "Order of the band within its driver (1 = baseline)."),
    _col("responses", sa.Integer, "Responses in the band."),
    _col("sum_satisfaction", sa.BigInteger, "Sum of satisfaction scores."),
    _col("sumsq_satisfaction", sa.BigInteger, "Sum of squared satisfaction scores."),
    _col("agree_satisfaction", sa.Integer, "Responses answering 4 or 5 on satisfaction."),
    _col("sum_trust", sa.BigInteger, "Sum of trust scores."),
    _col("sumsq_trust", sa.BigInteger, "Sum of squared trust scores."),
    _col("agree_trust", sa.Integer, "Responses answering 4 or 5 on trust."),
    comment="Responses and integer score sums per day, driver and band: what the quarterly driver "
            "mart adds up.",
)

agg_likert_daily = sa.Table(
    "agg_likert_daily", metadata,
    _col("date_day", sa.Date, "Day the responses were submitted."),
    _col("service_id", TEXT, "Service."),
    _col("journey_id", TEXT, "Journey."),
    _col("stage", TEXT, "Journey stage of the survey."),
    _col("channel", TEXT, "Channel of the transaction surveyed."),
    *_segment_values(),
    _col("item", TEXT, f"A-11 item: {', '.join(A11_ITEMS)}."),
    _col("answered", sa.Integer, "Responses that answered the item."),
    *[_col(f"count_{point}", sa.Integer, f"Answers at point {point} (1 = strongly disagree).")
      for point in range(1, 6)],
    comment="A-11 answers per day, item and point of the scale: what the quarterly Likert mart adds up.",
)

mart_segment_daily = sa.Table(
    "mart_segment_daily", metadata,
    _col("date_day", sa.Date, "Day."),
    _col("service_id", TEXT, "Service."),
    _col("journey_id", TEXT, "Journey."),
    *_segment(),
    _col("cases_received", sa.Integer, "Cases received."),
    _col("cases_decided", sa.Integer, "Cases decided (approved or denied)."),
    _col("median_cycle_days", DOUBLE, "Median cycle days of cases decided."),
    _col("pct_over_standard", DOUBLE, "% of cases decided over their standard."),
    _col("contacts", sa.Integer, "Contacts."),
    _col("fcr_rate", DOUBLE, "% of answered contacts resolved on first contact."),
    _col("repeat_contact_rate", DOUBLE, "% of contacts that repeat one in the 7 days before."),
    _col("abandonment_rate", DOUBLE, "% of contacts abandoned."),
    _col("survey_responses", sa.Integer, "Survey responses."),
    _col("mean_trust", DOUBLE, "Mean A-11 trust (1-5)."),
    _col("mean_satisfaction", DOUBLE, "Mean A-11 satisfaction (1-5)."),
    _col("pct_agree_trust", DOUBLE, "% answering 4 or 5 on trust."),
    _col("pct_agree_satisfaction", DOUBLE, "% answering 4 or 5 on satisfaction."),
    _col("mean_comment_sentiment", DOUBLE, "Mean sentiment of survey comments (-1..1)."),
    comment="O and X per day, service and customer segment: where communities fare differently.",
)

mart_theme_weekly = sa.Table(
    "mart_theme_weekly", metadata,
    _period("Monday of the ISO week."),
    _col("service_id", TEXT, "Service."),
    _col("journey_id", TEXT, "Journey."),
    _col("source", TEXT, "survey_comment or feedback."),
    *_segment(),
    _col("theme_id", TEXT, "Theme."),
    _col("mentions", sa.Integer, "Texts that mention the theme."),
    _col("texts", sa.Integer, "Texts received (with any text) for the service, source and segment."),
    _col("pct_of_texts", DOUBLE, "% of texts that mention the theme."),
    _col("mean_sentiment", DOUBLE, "Mean sentiment of the texts that mention the theme."),
    _col("pct_negative", DOUBLE, "% of those texts with negative sentiment (compound <= -0.05)."),
    comment="Theme x service x week: what customers write about, and in what mood.",
)

mart_emerging_terms = sa.Table(
    "mart_emerging_terms", metadata,
    _period("Monday of the ISO week."),
    _col("service_id", TEXT, "Service."),
    *_segment(),
    _col("rank", sa.Integer, "1 = rising fastest."),
    _col("term", TEXT, "Phrase of 1-3 words (redacted texts; texts where personal data was found "
         "are left out)."),
    _col("mentions", sa.Integer, "Texts this week that contain the phrase."),
    _col("texts", sa.Integer, "Texts this week."),
    _col("baseline_mentions", sa.Integer, "Texts containing it in the baseline weeks."),
    _col("baseline_texts", sa.Integer, "Texts in the baseline weeks (the 4 weeks before)."),
    _col("rate_ratio", DOUBLE, "Share of texts with the phrase this week / in the baseline (smoothed)."),
    comment="Phrases rising fastest per service and week, against the four weeks before.",
)

_driver_stats = []
for _item in ("satisfaction", "trust"):
    _driver_stats += [
        _col(f"mean_{_item}", DOUBLE, f"Mean A-11 {_item} (1-5)."),
        _col(f"sd_{_item}", DOUBLE, f"Sample standard deviation of {_item}."),
        _col(f"{_item}_ci_low", DOUBLE, f"95% confidence interval of the mean {_item}, lower bound."),
        _col(f"{_item}_ci_high", DOUBLE, f"95% confidence interval of the mean {_item}, upper bound."),
        _col(f"pct_agree_{_item}", DOUBLE, f"% answering 4 or 5 on {_item}."),
        _col(f"diff_{_item}", DOUBLE, f"Mean {_item} minus the baseline band's."),
        _col(f"diff_{_item}_ci_low", DOUBLE, "95% confidence interval of the difference, lower bound."),
        _col(f"diff_{_item}_ci_high", DOUBLE, "95% confidence interval of the difference, upper bound."),
    ]

mart_driver_quarterly = sa.Table(
    "mart_driver_quarterly", metadata,
    _period("First day of the federal fiscal quarter."),
    _col("fiscal_year", sa.Integer, "Federal fiscal year."),
    _col("fiscal_quarter", sa.Integer, "Fiscal quarter 1-4."),
    _col("service_id", TEXT, "Service."),
    _col("journey_id", TEXT, "Journey."),
    *_segment(),
    _col("driver", TEXT, "case_timeliness, wait_time, first_contact_resolution or transfer."),
    _col("band", TEXT, "Operational band of the response's case or contact."),
    _col("band_order", sa.Integer, "Order of the band within its driver (1 = baseline)."),
    _col("is_baseline", sa.Boolean, "The band the others are compared with."),
    _col("responses", sa.Integer, "Responses in the band."),
    *_driver_stats,
    comment="Satisfaction and trust by operational band (record-level X-O link), with 95% "
            "confidence intervals and the difference from the baseline band.",
)

mart_cycle_time_exceedance = sa.Table(
    "mart_cycle_time_exceedance", metadata,
    _period("Monday of the review week."),
    _col("review_date", sa.Date, "Last day the review covers (the week's last loaded day)."),
    _col("case_key", TEXT, "Pseudonymous case key."),
    _col("service_id", TEXT, "Service."),
    _col("journey_id", TEXT, "Journey."),
    _col("product_line", TEXT, "Product line."),
    _col("office", TEXT, "Office that owns the case."),
    _col("channel", TEXT, "How the case was filed."),
    *_segment_values(),
    _col("received_date", sa.Date, "Day received."),
    _col("age_days", sa.Integer, "Days from receipt to the review date."),
    _col("standard_days", sa.Integer, "Cycle-time standard."),
    _col("days_over", sa.Integer, "Days beyond the standard."),
    _col("days_over_band", TEXT, "1-30, 31-60 or 61+ days over."),
    comment="Weekly review: cases still in process at the review date that exceed their standard.",
)

mart_cycle_time_weekly = sa.Table(
    "mart_cycle_time_weekly", metadata,
    _period("Monday of the ISO week."),
    _col("service_id", TEXT, "Service."),
    _col("journey_id", TEXT, "Journey."),
    _col("product_line", TEXT, "Product line."),
    *_segment(),
    _col("standard_days", sa.Integer, "Cycle-time standard."),
    _col("cases_completed", sa.Integer, "Cases decided (approved or denied) in the week."),
    _col("mean_cycle_days", DOUBLE, "Average cycle days of those cases."),
    _col("median_cycle_days", DOUBLE, "Median cycle days."),
    _col("mean_days_vs_standard", DOUBLE, "Average cycle days minus the standard (negative = faster)."),
    _col("pct_over_standard", DOUBLE, "% of completed cases over the standard."),
    comment="Weekly review: completed cases' cycle time by product line against the standard.",
)

mart_a11_collection_detail = sa.Table(
    "mart_a11_collection_detail", metadata,
    _period("First day of the federal fiscal quarter."),
    _col("fiscal_year", sa.Integer, "Federal fiscal year."),
    _col("fiscal_quarter", sa.Integer, "Fiscal quarter 1-4."),
    _col("service_id", TEXT, "Service."),
    _col("journey_id", TEXT, "Journey."),
    _col("stage", TEXT, "Journey stage the survey is offered at (the decision)."),
    _col("channel", TEXT, "Channel of the transaction."),
    *_segment(),
    _col("volume_of_customers", sa.Integer, "Distinct customers whose case was decided in the quarter."),
    _col("volume_offered", sa.Integer, "Customers offered the survey: cases decided in the quarter "
         "(each decision sends one survey invitation)."),
    _col("volume_of_respondents", sa.Integer, "Survey responses submitted in the quarter."),
    comment="A-11 Section 280 collection detail volumes per service, stage and channel.",
)

mart_a11_likert = sa.Table(
    "mart_a11_likert", metadata,
    _period("First day of the federal fiscal quarter."),
    _col("fiscal_year", sa.Integer, "Federal fiscal year."),
    _col("fiscal_quarter", sa.Integer, "Fiscal quarter 1-4."),
    _col("service_id", TEXT, "Service."),
    _col("journey_id", TEXT, "Journey."),
    _col("stage", TEXT, "Journey stage of the survey."),
    _col("channel", TEXT, "Channel of the transaction surveyed."),
    *_segment(),
    _col("item", TEXT, f"A-11 item: {', '.join(A11_ITEMS)}."),
    _col("answered", sa.Integer, "Responses that answered the item."),
    *[_col(f"count_{point}", sa.Integer, f"Answers at point {point} (1 = strongly disagree).")
      for point in range(1, 6)],
    _col("pct_agree", DOUBLE, "% answering 4 or 5."),
    comment="A-11 answers per item at each point of the 1-5 scale, per quarter (the older OMB format).",
)

mart_contact_cost_monthly = sa.Table(
    "mart_contact_cost_monthly", metadata,
    _period("First day of the month."),
    _col("service_id", TEXT, "Service."),
    _col("journey_id", TEXT, "Journey."),
    _col("channel", TEXT, "phone, chat, email, or web (self-service sessions)."),
    *_segment(),
    _col("contacts", sa.Integer, "Contacts (for web: self-service sessions)."),
    _col("unit_cost", DOUBLE, "Cost of one contact in the channel (schemas/costs.yaml)."),
    _col("cost", DOUBLE, "contacts x unit_cost."),
    _col("answered", sa.Integer, "Contacts not abandoned."),
    _col("fcr_rate", DOUBLE, "% of answered contacts resolved on first contact."),
    _col("repeat_contacts", sa.Integer, "Contacts repeating one in the 7 days before (failure demand)."),
    _col("status_inquiries", sa.Integer, "Contacts asking for case status."),
    _col("avoidable_fcr", DOUBLE, "Repeat contacts avoided if first contact resolution reached the "
         "target: repeats x (target - fcr) / (1 - fcr)."),
    _col("avoidable_online_status", DOUBLE, "Status inquiries deflected if the service offered online "
         "status (services without it): status inquiries x deflection share."),
    _col("avoidable_cost", DOUBLE, "Cost of the avoidable contacts, net of the online status checks "
         "that replace the deflected ones."),
    comment="Contact cost per channel and the contacts better first-contact resolution or online "
            "status would avoid, per service and month.",
)

INSIGHT_TABLES = (dim_theme, dim_unit_cost, fact_text_theme, agg_contact_daily, agg_driver_daily,
                  agg_likert_daily, mart_segment_daily, mart_theme_weekly, mart_emerging_terms,
                  mart_driver_quarterly, mart_cycle_time_exceedance, mart_cycle_time_weekly,
                  mart_a11_collection_detail, mart_a11_likert, mart_contact_cost_monthly)

# Each customer's first case receipt or contact, for the customers a night's periods can name:
# a temporary table filled once per run (pipelines.insight.marts.fill_first_seen), read by the
# contact marts' SQL.
FIRST_SEEN = "customer_first_seen"
# Each case's customer_history (first_time / returning) for the cases of those customers, filled
# with it: what the case and survey marts and the emerging-terms build read of a case.
CASE_HISTORY = "case_customer_history"
