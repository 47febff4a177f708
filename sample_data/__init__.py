"""Generator of realistic, labelled e-commerce behaviour in Anomalyst's event schema.

    >>> import sample_data
    >>> data = sample_data.generate(sample_data.GeneratorConfig(users=50, days=2, seed=3))
    >>> list(data.events.columns)[:3]
    ['event_id', 'user_id', 'session_id']

See docs/SAMPLE_DATA.md for the personas, scenarios, labels and parameters.
"""

from __future__ import annotations

from sample_data.config import SCENARIOS, GeneratorConfig
from sample_data.generator import GeneratedData, generate
from sample_data.io import write

__all__ = ["SCENARIOS", "GeneratedData", "GeneratorConfig", "generate", "write"]
