"""Configuration is not an injection path: names from YAML that become SQL or paths are checked.

Where YAML values reach SQL identifiers or the file system, and what guards them:

- contract ``source``: raw and staging folders, lake table ``quarantine_<source>``
  (``SAFE_NAME``, the derived name too);
- contract column names and rename targets: DataFrame and SQL columns (``SAFE_NAME``);
- rename source names and ``watermark``: SQL columns of the source database (a printable
  name; a declared column);
- ``location.table`` / ``location.schema``: SQL identifiers of the source database (``SAFE_NAME``);
- ``location.folder`` / ``location.file_pattern``: paths under the landing folder (one plain
  name; ``{date}`` the only placeholder);
- ``pii`` / ``identifies``: what is protected and the pseudonym domain (known flags; ``SAFE_NAME``);
- catalog service, journey and channel ids: warehouse keys (``SAFE_NAME``); survey form ids:
  the survey API's URL path (``[A-Za-z0-9_-]{1,64}``);
- lake table, partition key and value: lake paths (``SAFE_NAME``; no separators, ``..``, NUL);
- view file names in ``warehouse/views``: views in schema ``bi`` (``SAFE_NAME``);
- privacy.yaml types: placeholders and ledger values (``[A-Z][A-Z0-9_]*``, tests/test_privacy.py).
"""

from __future__ import annotations

import copy
import re
import shutil
from pathlib import Path

import pytest
import yaml

from pipelines import lake
from pipelines.conform.catalog import load_catalog
from pipelines.contracts import ContractError, load_contracts, parse_contract
from pipelines.privacy import load_privacy
from pipelines.settings import REPO_ROOT

SCHEMAS = REPO_ROOT / "schemas"


def contract(source: str) -> dict:
    return yaml.safe_load((SCHEMAS / "sources" / f"{source}.yaml").read_text())


def broken(source: str, change) -> dict:
    raw = copy.deepcopy(contract(source))
    change(raw)
    return raw


def test_the_repos_own_configuration_passes_every_check():
    assert set(load_contracts(SCHEMAS)) == {
        "case_db", "contact_center", "survey", "web_analytics", "feedback"}
    assert load_catalog(SCHEMAS).services
    assert load_privacy(SCHEMAS).redactor.types


def rename_column(raw: dict, old: str, new: str) -> None:
    raw["columns"] = {(new if k == old else k): v for k, v in raw["columns"].items()}


@pytest.mark.parametrize(("source", "change", "named"), [
    ("feedback", lambda r: r.update(source="../../etc"), "'../../etc'"),
    ("feedback", lambda r: r.update(source='feedback"; DROP TABLE ledger; --'), "DROP TABLE"),
    ("feedback", lambda r: r.update(source="f" * 60), "derived table name"),
    ("feedback", lambda r: rename_column(r, "text", "text; DELETE FROM fact_case"), "DELETE FROM"),
    ("survey", lambda r: r["rename"].update(answer_09="comment --"), "'comment --'"),
    ("survey", lambda r: r["rename"].update({'answer_09"; DROP': "comment"}), "DROP"),
    ("case_db", lambda r: r.update(watermark="updated_at; DROP TABLE cases"), "watermark"),
    ("case_db", lambda r: r["location"].update(table="cases; DROP TABLE cases"), "location table"),
    ("case_db", lambda r: r["location"].update(schema="public.cases --"), "location schema"),
    ("contact_center", lambda r: r["location"].update(folder="../../../etc"), "location folder"),
    ("contact_center", lambda r: r["location"].update(folder="/etc"), "location folder"),
    ("contact_center", lambda r: r["location"].update(folder="contact_center/../.."), "location folder"),
    ("contact_center", lambda r: r["location"].update(folder=".."), "location folder"),
    ("contact_center", lambda r: r["location"].update(file_pattern="../contacts_{date}.csv"), "file_pattern"),
    ("contact_center", lambda r: r["location"].update(file_pattern="sub/c_{date}.csv"), "file_pattern"),
    ("contact_center", lambda r: r["location"].update(file_pattern="{date.__class__.__init__}.csv"),
     "file_pattern"),
    ("contact_center", lambda r: r["location"].update(file_pattern="c_{date}_{0}.csv"), "file_pattern"),
    ("contact_center", lambda r: r["location"].update(file_pattern="contacts.csv"), "file_pattern"),
    ("contact_center", lambda r: r["location"].update(file_pattern="..{date}.csv"), "file_pattern"),
    ("contact_center", lambda r: r["columns"]["notes"].update(pii="maybe"), "pii 'maybe'"),
    ("contact_center", lambda r: r["columns"]["contact_id"].pop("identifies"), "needs identifies"),
    ("contact_center", lambda r: r["columns"]["contact_id"].update(identifies="../case"), "identifies"),
    ("contact_center", lambda r: r["columns"]["queue"].update(identifies="case"), "without pii"),
    ("contact_center", lambda r: r["columns"]["wait_seconds"].update(pii="free_text"), "type string"),
])
def test_a_contract_with_an_unsafe_name_is_refused_with_file_and_value_named(source, change, named):
    path = SCHEMAS / "sources" / f"{source}.yaml"
    with pytest.raises(ContractError, match=str(path).replace(".", r"\.")) as error:
        parse_contract(broken(source, change), path)
    assert named in str(error.value)


@pytest.mark.parametrize("value", [0, -5, 1.5, "many", True])
def test_a_contract_batch_size_must_be_a_count_of_records(value):
    path = SCHEMAS / "sources" / "survey.yaml"
    with pytest.raises(ContractError, match=rf"{re.escape(str(path))}: batch_rows must be") as error:
        parse_contract(broken("survey", lambda c: c.update(batch_rows=value)), path)
    assert repr(value) in str(error.value)
    assert parse_contract(broken("survey", lambda c: c.update(batch_rows=97)), path).batch_rows == 97
    assert parse_contract(broken("survey", lambda c: c.pop("batch_rows", None)), path).batch_rows is None


def test_a_refused_contract_stops_before_any_path_is_built(tmp_path):
    schemas = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, schemas)
    path = schemas / "sources" / "contact_center.yaml"
    raw = contract("contact_center")
    raw["location"]["folder"] = "../../outside"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(ContractError, match="location folder"):
        load_contracts(schemas)
    assert not (tmp_path / "outside").exists()


@pytest.mark.parametrize(("change", "named"), [
    (lambda c: c["services"][0].update(service_id="natz'); DROP TABLE dim_service; --"), "service id"),
    (lambda c: c["journeys"][0].update(journey_id="../j"), "journey id"),
    (lambda c: c["channels"][0].update(channel_id="web portal"), "channel id"),
    (lambda c: c["services"][0]["codes"].update(survey_form=["../../admin"]), "survey form"),
    (lambda c: c["survey_forms"].update({"a?b=c": {"stage": "apply"}}), "survey form"),
])
def test_a_catalog_with_an_unsafe_id_is_refused(tmp_path, change, named):
    schemas = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, schemas)
    raw = yaml.safe_load((schemas / "catalog.yaml").read_text())
    change(raw)
    (schemas / "catalog.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(ContractError, match=named):
        load_catalog(schemas)


@pytest.mark.parametrize(("table", "key", "value"), [
    ("../fact_case", "date", "2026-03-01"),
    ("fact_case", "date/..", "2026-03-01"),
    ("fact_case", "date", "../../raw"),
    ("fact_case", "date", ".."),
    ("fact_case", "date", "2026..03"),
    ("fact_case", "date", "a\\b"),
    ("fact_case", "date", "a\x00b"),
    ("fact_case", "date", ""),
    ("quarantine_" + "x" * 60, "date", "2026-03-01"),
])
def test_lake_paths_take_plain_names_only(table, key, value):
    with pytest.raises(ValueError, match="unsafe"):
        lake.partition_path(Path("/lake"), table, key, value)


def test_lake_table_paths_stay_in_the_lake():
    with pytest.raises(ValueError, match="unsafe"):
        lake.table_path(Path("/lake"), "../raw")
    assert lake.partition_path(Path("/lake"), "fact_case", "received_month", "2026-03") == \
        Path("/lake/fact_case/received_month=2026-03/part.parquet")


def test_view_files_with_unsafe_names_are_refused(tmp_path):
    from pipelines.bi import ViewDefinition

    path = tmp_path / "cases; drop view x.sql"
    path.write_text("-- A view.\nSELECT 1 AS one")
    with pytest.raises(ValueError, match="view name"):
        ViewDefinition(path)
