"""The insight layer: why customers feel as they do, what to look at this week and quarter.

- ``text``: sentiment and themes of redacted free text (conform calls it).
- ``marts`` (with ``periods``, ``tables``, ``emerging``): segment, theme, driver,
  weekly-review, A-11 and cost marts, recomputed per period a run touches.
- ``a11``: the OMB Circular A-11 Section 280 quarterly export for Touchpoints.
- ``data_docs``, ``report``, ``publish``: the run's GX Data Docs and the static journey
  health report.
"""
