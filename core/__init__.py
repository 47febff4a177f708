"""Anomalyst engine: store, ingest, features, detectors, evaluation, explanation and reports.

Nothing in this package imports streamlit; the dashboard and the CLI are thin layers over it.
"""

from __future__ import annotations

__version__ = "0.1.0"
