#!/usr/bin/env bash
# Creates .venv (once) and installs Anomalyst with its dev tools. Safe to run again.
# torch is installed first and pinned: on these machines torch==2.13.0 is a local CPU wheel,
# while an unpinned torch pulls several GB of CUDA packages.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv"
  "$PY" -m venv .venv
fi
# ANOMALYST_EXTRAS picks the extras (scripts/test.sh adds scale: Ray, for its tests).
extras="${ANOMALYST_EXTRAS:-dev,text}"
stamp=".venv/.anomalyst-installed-${extras//,/-}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "== installing torch==2.13.0, then anomalyst[$extras] (about a minute)"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[$extras]"
  touch "$stamp"
fi
