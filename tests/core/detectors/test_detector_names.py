"""No registered detector's name is spelled out in core/, dashboard/ or cli/ outside its module.

What a detector can do is read off its class (``requires_labels``, ``event_score_meaning``,
``has_attention``, ``combines_members``, ``explain_preference``, ``tiny_config``...) or the
registry built from those attributes, never from its name: a new detector then works
everywhere the day it is registered. Docstrings may name detectors (examples, prose).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from core.detectors import available_detectors, get_detector_class

ROOT = Path(__file__).resolve().parents[3]
SCANNED = ("core", "dashboard", "cli")
REGISTRY = Path("core/detectors/registry.py")

ALLOWED: dict[tuple[str, str], str] = {
    # The demo's line-up and each one's CPU budget are a product choice (what to showcase in a
    # three-minute build on two cores), not a capability; the names are checked by the
    # registry when the demo trains them.
    ("cli/demo.py", "zscore"): "demo line-up",
    ("cli/demo.py", "isolation_forest"): "demo line-up",
    ("cli/demo.py", "ecdf_tails"): "demo line-up",
    ("cli/demo.py", "autoencoder"): "demo line-up",
    ("cli/demo.py", "sequence_autoencoder"): "demo line-up",
    ("cli/demo.py", "vae"): "demo line-up",
    ("cli/demo.py", "sequence_vae"): "demo line-up",
    ("cli/demo.py", "mlp"): "demo line-up",
    ("cli/demo.py", "gbdt"): "demo line-up and its budget",
    ("cli/demo.py", "transformer"): "demo line-up and its budget",
    # The Models page's list of trainable detectors is spelled out because listing the
    # registry imports every detector module, and with them torch, on a page that needs none.
    **{("core/app/model_catalog.py", name): "Models page list, without importing torch"
       for name in ("zscore", "isolation_forest", "ecdf_tails", "ecdf_extremes", "autoencoder",
                    "sequence_autoencoder", "mlp", "gbdt", "transformer", "cnn_gru",
                    "transformer_mlm", "vae", "sequence_vae")},
}
"""(file, detector name) pairs that may spell a name, each with its reason."""


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings: a bare string statement (module, class
    and function docstrings, and attribute docstrings under an assignment)."""
    return {id(node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)}


def _own_module(name: str) -> Path:
    module = sys.modules[get_detector_class(name).__module__]
    return Path(module.__file__ or "").resolve().relative_to(ROOT)


def _offences() -> list[str]:
    names = set(available_detectors())
    own = {name: _own_module(name) for name in names}
    found = []
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if relative == REGISTRY:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            docs = _docstrings(tree)
            for node in ast.walk(tree):
                if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                        and node.value in names and id(node) not in docs
                        and own[node.value] != relative
                        and (relative.as_posix(), node.value) not in ALLOWED):
                    found.append(f"{relative}:{node.lineno}: {node.value!r}")
    return found


def test_no_detector_name_outside_its_module() -> None:
    offences = _offences()
    assert not offences, (
        "detector names spelled outside their module; read the capability off the class or "
        "core.detectors.registry instead (or add an allowlist entry with its reason):\n"
        + "\n".join(offences))


def test_every_detector_carries_its_capabilities() -> None:
    for name in available_detectors():
        cls = get_detector_class(name)
        assert isinstance(cls.tiny_config, dict) and cls.tiny_config, name
        assert cls.event_score_meaning in (None, "reconstruction_error", "surprise",
                                           "event_head", "event_score"), name
        if cls.event_score_meaning is not None:
            assert cls.input_kind == "sequences", name
        if cls.has_attention:
            assert callable(getattr(cls, "attentions", None)), name


def test_the_pipeline_names_ensembles_as_the_combiner_does() -> None:
    from core.detectors.ensemble import EnsembleCombiner
    from core.pipeline.registry import ENSEMBLE

    assert ENSEMBLE == EnsembleCombiner.kind
