"""Demo source systems of a fictional agency, generated deterministically from a seed.

``build_demo_sources`` writes all five sources for a range of days; ``advance_sources``
moves the stateful ones (case DB, survey store) to a later moment. ``DemoWorld`` holds
the truth tests compare the pipeline's results with.
"""

from pipelines.demo.world import DemoWorld, Volumes
from pipelines.demo.writers import (
    advance_sources,
    build_demo_sources,
    read_survey_store,
    survey_store_path,
    write_case_db,
)

__all__ = [
    "DemoWorld",
    "Volumes",
    "advance_sources",
    "build_demo_sources",
    "read_survey_store",
    "survey_store_path",
    "write_case_db",
]
