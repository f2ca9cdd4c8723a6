"""The journey health report: one static HTML file per run, readable offline.

Per journey and service: cycle time against its standard, trust and satisfaction, what
drives satisfaction (the driver mart's bands with 95% confidence intervals), the top
themes of comments and feedback, a few example comments; then the weekly cycle-time
review, the gaps between customer segments, contact cost and what is avoidable, the
emerging terms, and links to the GX Data Docs of the run's validations.

Charts are Plotly figures; plotly.js is embedded once, inline, so the file needs no
network. Every value shown comes from the warehouse's marts and facts, and every text is
HTML-escaped (Jinja2 autoescape). Example comments are redacted comments in which
redaction found nothing: a comment where an identifier was caught may still hold a name
next to it, so it is never shown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from pipelines.conform.catalog import UNMAPPED
from pipelines.insight.data_docs import DataDocs
from pipelines.insight.periods import Period, bounds_of, fiscal_year_quarter
from pipelines.insight.tables import (
    dim_theme,
    fact_text_theme,
    mart_contact_cost_monthly,
    mart_cycle_time_exceedance,
    mart_cycle_time_weekly,
    mart_driver_quarterly,
    mart_emerging_terms,
    mart_segment_daily,
)
from pipelines.insight.text import has_placeholder
from pipelines.model import dim_journey, dim_service, fact_case, fact_survey_response

TREND_DAYS = 56  # trend charts cover the last eight weeks
RECENT_DAYS = 28  # themes, comments and segment gaps: the last four weeks
EXAMPLE_COMMENTS = 3
TEMPLATE_PATH = Path(__file__).with_name("report.html.j2")  # Jinja2, autoescaped
MIN_SEGMENT_RESPONSES = 20
DRIVER_LABELS = {
    "case_timeliness": "Case on time?", "wait_time": "Wait for an agent",
    "first_contact_resolution": "Resolved on first contact?", "transfer": "Transferred?",
}
BAND_LABELS = {
    "on_time": "on time", "over_1_30_days": "1-30 days over", "over_31_plus_days": "31+ days over",
    "under_2_min": "< 2 min", "2_to_10_min": "2-10 min", "over_10_min": "> 10 min",
    "resolved": "resolved", "not_resolved": "not resolved",
    "not_transferred": "not transferred", "transferred": "transferred",
}


def chart_titles(service_name: str) -> dict[str, str]:
    """The title of each chart of a service (tests look for them in the rendered page)."""
    return {
        "cycle": f"Cycle time vs standard: {service_name}",
        "experience": f"Trust and satisfaction: {service_name}",
        "drivers": f"What drives satisfaction: {service_name}",
        "themes": f"Top themes: {service_name}",
    }


@dataclass
class ServiceSection:
    service_id: str
    name: str
    standard_days: int | None
    summary: dict[str, Any]
    charts: dict[str, str] = field(default_factory=dict)  # chart key -> HTML div
    comments: list[dict[str, Any]] = field(default_factory=list)
    emerging: list[dict[str, Any]] = field(default_factory=list)


def _frame(conn: sa.Connection, query, columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame([tuple(row) for row in conn.execute(query)], columns=columns)


# ---------------------------------------------------------------- figures
# Figures are plotly figure dicts rendered by plotly.io without Python-side validation:
# the same charts, ten times faster to build than through plotly.graph_objects.

AXIS = {"gridcolor": "#e5e8eb", "zerolinecolor": "#c9ced3", "automargin": True}
SENTIMENT_SCALE = [[0, "#b2182b"], [0.5, "#f7f7f7"], [1, "#1a9850"]]  # negative red, positive green
COLORS = {"primary": "#005ea2", "secondary": "#d83933", "baseline": "#4c78a8", "band": "#f58518",
          "standard": "#b50909"}


def _series(values: pd.Series) -> list:
    return [None if pd.isna(v) else (v.isoformat() if isinstance(v, date) else float(v)) for v in values]


def _figure_html(data: list[dict], layout: dict, key: str, height: int = 320) -> str:
    import plotly.io as pio

    base = {"height": height, "margin": {"l": 55, "r": 20, "t": 60, "b": 45}, "paper_bgcolor": "white",
            "plot_bgcolor": "white", "font": {"family": "system-ui, sans-serif", "size": 12},
            "legend": {"orientation": "h", "y": -0.22}, "xaxis": dict(AXIS), "yaxis": dict(AXIS)}
    for name, value in layout.items():
        base[name] = {**base[name], **value} if isinstance(value, dict) and name in base else value
    base["title"] = {**base.get("title", {}), "x": 0.02, "font": {"size": 15}}
    return pio.to_html({"data": data, "layout": base}, validate=False, full_html=False,
                       include_plotlyjs=False, div_id=key, default_height=f"{height}px",
                       config={"displayModeBar": False, "responsive": True})


def _cycle_chart(cases: pd.DataFrame, standard: int | None, title: str, key: str) -> str:
    by_day = cases.groupby("decided_date")["cycle_days"]
    daily = pd.DataFrame({"median": by_day.median(), "p90": by_day.quantile(0.9)}).reset_index()
    x = _series(daily["decided_date"])
    data = [{"type": "scatter", "mode": "lines+markers", "x": x, "y": _series(daily["median"]),
             "name": "median days to decision", "line": {"color": COLORS["primary"]}},
            {"type": "scatter", "mode": "lines", "x": x, "y": _series(daily["p90"]),
             "name": "90th percentile", "line": {"color": COLORS["primary"], "dash": "dot", "width": 1}}]
    layout: dict[str, Any] = {"title": {"text": title},
                              "yaxis": {"title": {"text": "days"}, "rangemode": "tozero"}}
    if standard is not None:
        layout["shapes"] = [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": standard,
                             "y1": standard, "line": {"color": COLORS["standard"], "dash": "dash"}}]
        layout["annotations"] = [{"xref": "paper", "x": 0, "y": standard, "yanchor": "bottom",
                                  "xanchor": "left", "text": f"standard {standard} days", "showarrow": False,
                                  "font": {"color": COLORS["standard"]}}]
    return _figure_html(data, layout, key)


def _experience_chart(responses: pd.DataFrame, title: str, key: str) -> str:
    daily = responses.groupby("response_date")[["trust", "satisfaction"]].mean().reset_index()
    data = [{"type": "scatter", "mode": "lines+markers", "x": _series(daily["response_date"]),
             "y": _series(daily[item]), "name": f"mean {item} (1-5)", "line": {"color": COLORS[color]}}
            for item, color in (("trust", "primary"), ("satisfaction", "secondary"))]
    return _figure_html(data, {"title": {"text": title},
                               "yaxis": {"range": [1, 5.2], "title": {"text": "mean score"}}}, key)


def _driver_chart(drivers: pd.DataFrame, title: str, key: str) -> str:
    """One panel per driver: mean satisfaction per band with its 95% confidence interval."""
    names = list(DRIVER_LABELS)
    gap, width = 0.04, (1 - 0.04 * (len(names) - 1)) / len(names)
    data, layout = [], {"title": {"text": title}, "annotations": [], "showlegend": False}
    for i, driver in enumerate(names):
        axis = "" if i == 0 else str(i + 1)
        left = i * (width + gap)
        layout[f"xaxis{axis}"] = {**AXIS, "domain": [left, left + width], "anchor": f"y{axis}"}
        layout[f"yaxis{axis}"] = {**AXIS, "range": [1, 5.2], "anchor": f"x{axis}",
                                  **({"title": {"text": "mean satisfaction (95% CI)"}} if i == 0
                                     else {"matches": "y", "showticklabels": False})}
        layout["annotations"].append({"xref": "paper", "yref": "paper", "x": left + width / 2, "y": 1.0,
                                      "xanchor": "center", "yanchor": "bottom", "showarrow": False,
                                      "text": DRIVER_LABELS[driver], "font": {"size": 13}})
        rows = drivers[drivers["driver"] == driver].sort_values("band_order")
        if rows.empty:
            layout["annotations"].append({"xref": f"x{axis} domain", "yref": f"y{axis} domain", "x": 0.5,
                                          "y": 0.5, "showarrow": False, "text": "no linked responses"})
            continue
        mean = rows["mean_satisfaction"].astype("float64")
        data.append({
            "type": "bar", "xaxis": f"x{axis}", "yaxis": f"y{axis}",
            "x": [BAND_LABELS.get(b, b) for b in rows["band"]], "y": _series(mean),
            "error_y": {"type": "data", "array": _series((rows["satisfaction_ci_high"] - mean).fillna(0)),
                        "arrayminus": _series((mean - rows["satisfaction_ci_low"]).fillna(0))},
            "text": [f"n={n}" for n in rows["responses"]], "textposition": "inside",
            "marker": {"color": [COLORS["baseline"] if b else COLORS["band"] for b in rows["is_baseline"]]},
            "name": DRIVER_LABELS[driver]})
    return _figure_html(data, layout, key, height=340)


def _themes_chart(themes: pd.DataFrame, title: str, key: str) -> str:
    top = themes.sort_values(["mentions", "label"], ascending=[True, False]).tail(8)
    data = [{"type": "bar", "orientation": "h", "x": _series(top["mentions"]), "y": list(top["label"]),
             "marker": {"color": _series(top["mean_sentiment"]), "colorscale": SENTIMENT_SCALE, "cmin": -1,
                        "cmax": 1, "colorbar": {"title": {"text": "sentiment"}}},
             "hovertemplate": "%{y}: %{x} texts<extra></extra>"}]
    return _figure_html(data, {"title": {"text": title},
                               "xaxis": {"title": {"text": f"texts in the last {RECENT_DAYS} days"}}}, key)


# ---------------------------------------------------------------- data


def _services(conn: sa.Connection) -> pd.DataFrame:
    name = sa.func.min(dim_journey.c.journey_name).label("journey_name")
    journeys = sa.select(dim_journey.c.journey_id, name).group_by(dim_journey.c.journey_id).subquery()
    query = (sa.select(dim_service.c.service_id, dim_service.c.service_name, dim_service.c.journey_id,
                       journeys.c.journey_name, dim_service.c.standard_days)
             .join(journeys, journeys.c.journey_id == dim_service.c.journey_id)
             .where(dim_service.c.service_id != UNMAPPED)
             .order_by(journeys.c.journey_name, dim_service.c.service_name))
    return _frame(conn, query, ["service_id", "service_name", "journey_id", "journey_name", "standard_days"])


def _decided(conn, start: date, end: date) -> pd.DataFrame:
    c = fact_case.c
    query = sa.select(c.service_id, c.decided_date, c.cycle_days, c.over_standard).where(
        c.decided_date >= start, c.decided_date < end, c.status.in_(["approved", "denied"]))
    frame = _frame(conn, query, ["service_id", "decided_date", "cycle_days", "over_standard"])
    return frame.astype({"cycle_days": "float64"})


def _responses(conn, start: date, end: date) -> pd.DataFrame:
    r = fact_survey_response.c
    columns = ["service_id", "response_date", "created_at", "response_id", "trust", "satisfaction",
               "comment", "comment_sentiment"]
    query = sa.select(*[r[c] for c in columns]).where(r.response_date >= start, r.response_date < end)
    frame = _frame(conn, query, columns)
    return frame.astype({"trust": "float64", "satisfaction": "float64"})


def _drivers(conn, day: date) -> pd.DataFrame:
    m = mart_driver_quarterly.c
    columns = ["service_id", "driver", "band", "band_order", "is_baseline", "responses", "mean_satisfaction",
               "satisfaction_ci_low", "satisfaction_ci_high", "diff_satisfaction", "diff_satisfaction_ci_low",
               "diff_satisfaction_ci_high"]
    query = sa.select(*[m[c] for c in columns]).where(
        m.period_start == bounds_of(Period.FISCAL_QUARTER, day).start, m.segment_kind == "all")
    return _frame(conn, query, columns)


def _themes(conn, start: date, end: date) -> pd.DataFrame:
    t = fact_text_theme.c
    query = (sa.select(t.service_id, dim_theme.c.label, sa.func.count().label("mentions"),
                       sa.func.avg(t.sentiment).label("mean_sentiment"))
             .join(dim_theme, dim_theme.c.theme_id == t.theme_id)
             .where(t.date_day >= start, t.date_day < end)
             .group_by(t.service_id, dim_theme.c.label))
    return _frame(conn, query, ["service_id", "label", "mentions", "mean_sentiment"]).astype(
        {"mean_sentiment": "float64"})


def _review(conn, day: date) -> tuple[pd.DataFrame, pd.DataFrame]:
    week = bounds_of(Period.WEEK, day).start
    e = mart_cycle_time_exceedance.c
    open_cases = _frame(conn, sa.select(e.service_id, e.product_line, e.office, e.received_date, e.age_days,
                                        e.standard_days, e.days_over, e.days_over_band, e.review_date)
                        .where(e.period_start == week),
                        ["service_id", "product_line", "office", "received_date", "age_days", "standard_days",
                         "days_over", "days_over_band", "review_date"])
    w = mart_cycle_time_weekly.c
    completed = _frame(conn, sa.select(w.service_id, w.product_line, w.standard_days, w.cases_completed,
                                       w.mean_cycle_days, w.mean_days_vs_standard, w.pct_over_standard)
                       .where(w.period_start == week, w.segment_kind == "all")
                       .order_by(w.service_id, w.product_line),
                       ["service_id", "product_line", "standard_days", "cases_completed", "mean_cycle_days",
                        "mean_days_vs_standard", "pct_over_standard"])
    return open_cases, completed


def _segment_gaps(conn, start: date, end: date) -> list[dict[str, Any]]:
    s = mart_segment_daily.c
    frame = _frame(conn, sa.select(s.segment_kind, s.segment, s.survey_responses, s.mean_trust,
                                   s.mean_satisfaction, s.pct_agree_trust)
                   .where(s.date_day >= start, s.date_day < end, s.survey_responses > 0),
                   ["segment_kind", "segment", "n", "trust", "satisfaction", "agree_trust"])
    if frame.empty:
        return []
    for column in ("trust", "satisfaction", "agree_trust"):
        frame[column] = frame[column].astype("float64") * frame["n"]
    totals = frame.groupby(["segment_kind", "segment"], as_index=False)[
        ["n", "trust", "satisfaction", "agree_trust"]].sum()
    for column in ("trust", "satisfaction", "agree_trust"):
        totals[column] = totals[column] / totals["n"]
    overall = totals[totals["segment_kind"] == "all"]
    base = overall.iloc[0] if len(overall) else None
    rows = []
    for r in totals[(totals["segment_kind"] != "all") & (totals["n"] >= MIN_SEGMENT_RESPONSES)].itertuples():
        rows.append({"kind": r.segment_kind.replace("_", " "), "segment": r.segment, "n": int(r.n),
                     "trust": r.trust, "satisfaction": r.satisfaction, "agree_trust": r.agree_trust,
                     "gap": None if base is None else r.satisfaction - base["satisfaction"]})
    return sorted(rows, key=lambda r: (r["kind"], r["segment"]))


def _costs(conn, day: date) -> pd.DataFrame:
    m = mart_contact_cost_monthly.c
    sums = [sa.func.sum(m[c]) for c in ("contacts", "cost", "avoidable_fcr", "avoidable_online_status",
                                         "avoidable_cost")]
    query = (sa.select(m.service_id, *sums)
             .where(m.period_start == bounds_of(Period.MONTH, day).start, m.segment_kind == "all",
                    m.channel != "web")
             .group_by(m.service_id).order_by(m.service_id))
    return _frame(conn, query, ["service_id", "contacts", "cost", "avoidable_fcr", "avoidable_online_status",
                                "avoidable_cost"])


def _emerging(conn, day: date) -> pd.DataFrame:
    m = mart_emerging_terms.c
    query = (sa.select(m.service_id, m.rank, m.term, m.mentions, m.texts, m.rate_ratio)
             .where(m.period_start == bounds_of(Period.WEEK, day).start, m.segment_kind == "all",
                    m.rank <= 5).order_by(m.service_id, m.rank))
    return _frame(conn, query, ["service_id", "rank", "term", "mentions", "texts", "rate_ratio"])


def _examples(responses: pd.DataFrame) -> list[dict[str, Any]]:
    """A few recent redacted comments in which redaction found nothing: the two most negative
    and the most positive of the last four weeks."""
    texts = responses[responses["comment"].notna()].copy()
    texts = texts[texts["comment"].astype(str).str.strip() != ""]
    texts = texts[~has_placeholder(texts["comment"])]
    if texts.empty:
        return []
    texts["comment_sentiment"] = texts["comment_sentiment"].astype("float64")
    ordered = texts.sort_values(["comment_sentiment", "created_at", "response_id"], kind="stable")
    picked = pd.concat([ordered.head(EXAMPLE_COMMENTS - 1), ordered.tail(1)]).drop_duplicates("response_id")
    return [{"text": r.comment, "date": r.response_date, "satisfaction": int(r.satisfaction),
             "sentiment": r.comment_sentiment} for r in picked.itertuples()]


# ---------------------------------------------------------------- the page


def build_report(conn: sa.Connection, day: date, run_id: str, docs: DataDocs | None,
                 docs_base: Path | None = None) -> str:
    """The report for the run that loaded ``day``, as one HTML document."""
    import plotly.offline

    trend_start, recent_start, end = (day - timedelta(days=TREND_DAYS - 1),
                                      day - timedelta(days=RECENT_DAYS - 1), day + timedelta(days=1))
    services = _services(conn)
    decided = _decided(conn, trend_start, end)
    responses = _responses(conn, trend_start, end)
    drivers = _drivers(conn, day)
    themes = _themes(conn, recent_start, end)
    open_cases, completed = _review(conn, day)
    costs = _costs(conn, day)
    emerging = _emerging(conn, day)
    journeys: dict[str, dict[str, Any]] = {}
    for i, s in enumerate(services.itertuples()):
        titles = chart_titles(s.service_name)
        standard = None if pd.isna(s.standard_days) else int(s.standard_days)
        mine = decided[decided["service_id"] == s.service_id]
        answers = responses[responses["service_id"] == s.service_id]
        recent_cases = mine[pd.to_datetime(mine["decided_date"]).dt.date >= recent_start]
        recent_answers = answers[pd.to_datetime(answers["response_date"]).dt.date >= recent_start]
        section = ServiceSection(s.service_id, s.service_name, standard, summary={
            "decided": len(recent_cases),
            "median_cycle": recent_cases["cycle_days"].median() if len(recent_cases) else None,
            "pct_over": (100 * recent_cases["over_standard"].astype(bool).mean()) if len(recent_cases)
            else None,
            "responses": len(recent_answers),
            "trust": recent_answers["trust"].mean() if len(recent_answers) else None,
            "satisfaction": recent_answers["satisfaction"].mean() if len(recent_answers) else None,
            "open_over": int((open_cases["service_id"] == s.service_id).sum()),
        })
        section.charts["cycle"] = _cycle_chart(mine, standard, titles["cycle"], f"cycle-{i}")
        section.charts["experience"] = _experience_chart(answers, titles["experience"], f"experience-{i}")
        section.charts["drivers"] = _driver_chart(drivers[drivers["service_id"] == s.service_id],
                                                  titles["drivers"], f"drivers-{i}")
        section.charts["themes"] = _themes_chart(themes[themes["service_id"] == s.service_id],
                                                 titles["themes"], f"themes-{i}")
        section.comments = _examples(recent_answers)
        section.emerging = emerging[emerging["service_id"] == s.service_id].to_dict("records")
        journey = journeys.setdefault(s.journey_id, {"name": s.journey_name, "services": []})
        journey["services"].append(section)
    names = dict(zip(services["service_id"], services["service_name"], strict=True))
    review = []
    for service_id, rows in open_cases.groupby("service_id", sort=True):
        bands = rows["days_over_band"].value_counts()
        oldest = rows.sort_values(["days_over", "received_date"], ascending=[False, True]).head(5)
        review.append({"service": names.get(service_id, service_id), "count": len(rows),
                       "bands": {b: int(bands.get(b, 0)) for b in ("1-30", "31-60", "61+")},
                       "oldest": oldest.to_dict("records")})
    fiscal_year, quarter = fiscal_year_quarter(day)
    page = _template().render(
        day=day, run_id=run_id, journeys=list(journeys.values()), review=review,
        review_date=open_cases["review_date"].max() if len(open_cases) else None,
        completed=[{**r, "service": names.get(r["service_id"], r["service_id"])}
                   for r in completed.to_dict("records")],
        gaps=_segment_gaps(conn, recent_start, end),
        costs=[{**r, "service": names.get(r["service_id"], r["service_id"])}
               for r in costs.to_dict("records")],
        docs=_docs_links(docs, docs_base), fiscal_year=fiscal_year, quarter=quarter,
        recent_days=RECENT_DAYS, plotly_js=plotly.offline.get_plotlyjs(), fmt=_fmt)
    return page


def _docs_links(docs: DataDocs | None, base: Path | None) -> dict[str, Any] | None:
    if docs is None:
        return None

    def link(path: Path) -> str:
        if base is None:
            return path.as_uri()
        return Path(_relative(path, base)).as_posix()

    return {"index": link(docs.index),
            "sources": [{"source": s, "href": link(p), "success": docs.success.get(s),
                         "stats": docs.statistics.get(s, {})} for s, p in sorted(docs.pages.items())]}


def _relative(path: Path, base: Path) -> str:
    import os

    return os.path.relpath(path, base)


def _fmt(value: Any, digits: int = 1, suffix: str = "") -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}{suffix}"
    return f"{value}{suffix}"


def write_report(conn: sa.Connection, path: Path, day: date, run_id: str, docs: DataDocs | None) -> Path:
    """Render the report to ``path`` (atomically: a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = build_report(conn, day, run_id, docs, docs_base=path.parent)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def safe_name(run_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)


def _template():
    from jinja2 import Environment

    environment = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    return environment.from_string(TEMPLATE_PATH.read_text(encoding="utf-8"))
