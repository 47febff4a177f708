"""core.app.investigate: the attention views the Explain page draws, and staying light."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd

from core.app import investigate


class _Maps:
    """Two layers of two heads over a session token and two events."""

    weights = np.stack([np.stack([np.eye(3), np.full((3, 3), 1 / 3)]),
                        np.stack([np.full((3, 3), 1 / 3), np.eye(3)])])


def test_attention_view_picks_a_layer_and_a_head() -> None:
    head = investigate.attention_view(_Maps(), 2, 2)  # type: ignore[arg-type]
    assert head.rollout is None and np.array_equal(head.matrix, np.eye(3))
    assert head.title == "Attention, layer 2, head 2"
    mean = investigate.attention_view(_Maps(), 1, "mean")  # type: ignore[arg-type]
    assert np.allclose(mean.matrix, (np.eye(3) + 1 / 3) / 2)


def test_attention_rollout_covers_the_events_and_the_last_layer() -> None:
    rolled = investigate.attention_view(_Maps(), "rollout", "mean")  # type: ignore[arg-type]
    assert rolled.rollout is not None and rolled.rollout.shape == (2,)
    assert np.isclose(rolled.rollout.sum(), 1.0)
    assert np.allclose(rolled.matrix, _Maps.weights[-1].mean(axis=0))


def test_importing_the_application_layer_loads_no_detector() -> None:
    code = ("import sys, core.app.alerts, core.app.investigate, core.app.policy, core.policy, "
            "core.pipeline.operating_point, core.pipeline.registry; "
            "print('torch' in sys.modules, 'shap' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]


def test_a_users_totals_and_pages() -> None:
    events = pd.DataFrame({"amount": [1.5, 2.0, 0.0], "device_id": ["d1", "d1", "d2"],
                           "ip": ["i1", "i2", "i3"]})
    view = investigate.UserView(pd.DataFrame(), events, pd.DataFrame(), 1001, 3, None)
    assert (view.amount, view.devices_and_ips, view.n_pages(500)) == (3.5, (2, 3), 3)
    assert view._replace(bucket="minute").devices_and_ips is None
