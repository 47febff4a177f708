"""Similar sessions: sessions as unit vectors (``vectors``), the typology guess (``typology``).

Kept apart from ``core.explain``, whose package imports the detectors (torch): the Explain
page and ``anomalyst similar`` must not pay for them to compare a few vectors.
"""
