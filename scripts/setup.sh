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
stamp=.venv/.anomalyst-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "== installing torch==2.13.0, then anomalyst[dev,text] (about a minute)"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev,text]"
  touch "$stamp"
fi
