"""Run one stage of the nightly job in its own process, so its time and peak memory are its own.

``python -m benchmarks.stage extract SOURCE START RUN_ID`` (and ``load``, ``marts``)
prints the stage's JSON result on the last line of stdout.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta

from pipelines import nightly


def main(argv: list[str]) -> None:
    stage, *rest = argv
    if stage == "extract":
        source, start_text, run_id = rest
    else:
        start_text, run_id = rest
    start = datetime.fromisoformat(start_text)
    end = start + timedelta(days=1)
    if stage == "extract":
        result = nightly.extract_and_validate(source, start, end, run_id)
    elif stage == "load":
        result = nightly.conform_and_load(start, end, run_id)
    elif stage == "marts":
        result = nightly.build_marts(start, end, run_id)
    else:
        raise SystemExit(f"unknown stage {stage!r}")
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main(sys.argv[1:])
