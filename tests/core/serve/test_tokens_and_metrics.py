"""API tokens (hashed, private, revoked at once) and the Prometheus text."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from core.errors import ConfigError
from core.serve.api import check_bind, is_loopback
from core.serve.metrics import Metrics
from core.serve.tokens import TokenFile, digest

SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_]+="(?:[^"\\]|\\.)*",?)*\})? '
                    r'-?[0-9.e+Inf]+$')


def test_tokens_are_hashed_private_and_revoked_at_once(tmp_path: Path) -> None:
    tokens = TokenFile(tmp_path / "api_tokens.json")
    secret = tokens.add("ci", "analyst")
    reader = TokenFile(tmp_path / "api_tokens.json")  # a running service's view
    assert reader.verify(secret).role == "analyst"
    text = (tmp_path / "api_tokens.json").read_text()
    assert secret not in text and digest(secret) in text
    assert stat.S_IMODE((tmp_path / "api_tokens.json").stat().st_mode) == 0o600
    assert [t["name"] for t in tokens.listing()] == ["ci"]
    with pytest.raises(ConfigError, match="must be new"):
        tokens.add("ci", "viewer")
    tokens.revoke("ci")
    assert reader.verify(secret) is None and len(reader) == 0
    with pytest.raises(ConfigError, match="token must be one of none"):
        tokens.revoke("ci")
    with pytest.raises(ConfigError, match="role must be one of"):
        tokens.add("x", "root")


def test_metrics_text_parses() -> None:
    m = Metrics()
    m.observe("/v1/events", 200, 0.003)
    m.observe("/v1/events", 429, 2.0)
    m.observe('/odd"route', 401, 20.0)
    text = m.render({"anomalyst_queue_depth": ("gauge", "Pending.", 7)})
    types = {}
    for line in text.splitlines():
        if line.startswith("# TYPE"):
            _, _, name, kind = line.split()
            types[name] = kind
        elif not line.startswith("#"):
            assert SAMPLE.match(line), line
    assert types == {"anomalyst_requests_total": "counter",
                     "anomalyst_request_seconds": "histogram",
                     "anomalyst_queue_depth": "gauge"}
    assert 'anomalyst_request_seconds_bucket{route="/v1/events",le="+Inf"} 2' in text
    assert 'anomalyst_request_seconds_bucket{route="/v1/events",le="0.005"} 1' in text
    assert "anomalyst_queue_depth 7" in text


def test_insecure_local_is_refused_off_loopback() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.com")
    check_bind("127.0.0.1", insecure_local=True, n_tokens=0)
    with pytest.raises(ConfigError, match="--insecure-local must bind a loopback host"):
        check_bind("0.0.0.0", insecure_local=True, n_tokens=3)
    with pytest.raises(ConfigError, match="at least one API token"):
        check_bind("127.0.0.1", insecure_local=False, n_tokens=0)
