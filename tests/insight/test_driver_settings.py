"""schemas/drivers.yaml: the contact window of the driver analysis, checked where it is read."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from pipelines.contracts import ContractError
from pipelines.insight.marts import load_driver_window
from pipelines.settings import REPO_ROOT


def test_the_shipped_window_is_read_in_days():
    assert load_driver_window(REPO_ROOT / "schemas") == timedelta(days=90)


@pytest.mark.parametrize("value", ["0", "-3", "'90'", "true", "1.5", "null"])
def test_a_window_that_is_not_a_whole_number_of_days_names_the_file_and_setting(tmp_path: Path, value: str):
    (tmp_path / "drivers.yaml").write_text(f"contact_window_days: {value}\n")
    with pytest.raises(ContractError, match=r"drivers\.yaml: contact_window_days must be a whole number"):
        load_driver_window(tmp_path)


def test_a_missing_file_is_named(tmp_path: Path):
    with pytest.raises(ContractError, match=r"drivers\.yaml: driver settings not found"):
        load_driver_window(tmp_path)
