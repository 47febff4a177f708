"""dashboard.safe_text.prose: the program's own sentences read back from the store are drawn
as plain text; anything markdown could render falls back to a code span."""

from __future__ import annotations

import numpy as np
import pytest

from core.operating_point import ScoreReference
from core.pipeline.operating_point import choose_point
from dashboard import safe_text as safe


def _sources() -> list[str]:
    rng = np.random.default_rng(0)
    reference = ScoreReference.from_scores(rng.normal(size=400), rng.normal(size=100))
    labels = np.zeros(100, bool)
    labels[-10:] = True
    scores = rng.normal(size=100) + 3 * labels
    return [
        choose_point(reference, scores, labels, supervised=False).source,
        choose_point(reference, scores, labels, supervised=True).source,
        choose_point(reference, scores, labels, supervised=False, contamination=0.02).source,
        "label-free: the members' median default flag rate on their training sessions (3.01%)",
        "top 1% of the store's scores (this model predates training references: retrain it "
        "for a label-free default)",
    ]


@pytest.mark.parametrize("source", _sources())
def test_the_default_threshold_sources_read_as_plain_text(source: str) -> None:
    assert safe.prose(source) == source


def test_an_explanation_note_reads_as_plain_text() -> None:
    note = "Explained through its strongest feature member, mlp (mlp-20261205-200538-8ef8)."
    assert safe.prose(note) == note


@pytest.mark.parametrize("text", [
    "![r](http://198.51.100.7/x.png)", "see www.example.com now", "mail a@b.io", "a :smile: b",
    ":red[alert]", ":material/lock:", "cost $x^2$", "<b>x</b>", "**bold**", "_it_", "a `b`",
    "- item", "1. item", "# title", "a | b", "~~gone~~", "x\ny", "&amp;", "ends with:",
    "example.com", "a\\*b", "x" * 3000,
])
def test_anything_that_could_render_is_a_code_span(text: str) -> None:
    drawn = safe.prose(text)
    assert drawn != text and drawn.startswith("`")
    assert drawn == safe.value(text)
