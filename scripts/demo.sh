#!/usr/bin/env bash
# README command 1: install, build the sample store if there is none, open the dashboard.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/anomalyst demo "$@"
