"""A schemas/ file that is not a mapping of settings stops the job with an error naming the file.

Each loader used to hand the parser's result straight on: a file holding a list failed later
with a bare ``AttributeError`` ('list' object has no attribute 'get'), and a syntax error
named no file ("<unicode string>", line 3).
"""

from __future__ import annotations

import shutil

import pytest

from pipelines.conform.catalog import load_catalog
from pipelines.contracts import ContractError, load_contracts
from pipelines.insight.a11 import load_a11_config
from pipelines.insight.marts import load_costs, load_driver_window
from pipelines.insight.text import load_taxonomy
from pipelines.settings import REPO_ROOT

LOADERS = [
    ("sources/contact_center.yaml", load_contracts),
    ("catalog.yaml", load_catalog),
    ("costs.yaml", load_costs),
    ("drivers.yaml", load_driver_window),
    ("a11.yaml", load_a11_config),
    ("themes.yaml", load_taxonomy),
]

NOT_SETTINGS = [
    ("- services\n- journeys\n", r"must be a mapping of settings at the top level, not a list"),
    ("just some words\n", r"must be a mapping of settings at the top level, not a str"),
    ("services:\n  - {service_id: a\n  - {service_id: b}\n", r"is not valid YAML at line \d+, column \d+"),
    ("a: 1\n\tb: 2\n", r"is not valid YAML at line 2, column 1"),
]


@pytest.fixture
def schemas(tmp_path):
    copied = tmp_path / "schemas"
    shutil.copytree(REPO_ROOT / "schemas", copied)
    return copied


@pytest.mark.parametrize(("name", "load"), LOADERS, ids=[name for name, _ in LOADERS])
@pytest.mark.parametrize(("text", "message"), NOT_SETTINGS, ids=["list", "scalar", "unclosed", "tab"])
def test_a_file_that_is_not_a_mapping_of_settings_is_refused_by_name(schemas, name, load, text, message):
    (schemas / name).write_text(text)
    with pytest.raises(ContractError, match=message) as refused:
        load(schemas)
    assert str(refused.value).startswith(f"{schemas / name}: ")


@pytest.mark.parametrize(("name", "load"), LOADERS, ids=[name for name, _ in LOADERS])
def test_the_shipped_files_load(name, load):
    assert load(REPO_ROOT / "schemas")


@pytest.mark.parametrize(("name", "load"), [("catalog.yaml", load_catalog), ("costs.yaml", load_costs)])
def test_a_missing_file_is_named(schemas, name, load):
    (schemas / name).unlink()
    with pytest.raises(ContractError, match=rf"{name}: .* not found"):
        load(schemas)
