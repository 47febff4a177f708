#!/usr/bin/env bash
# README command 2 (and CI): install everything the tests need, then run them.
# Runs unit, integration, AppTest, real-browser and Ray (`scale`, on a local two-CPU cluster)
# tests; `slow` and `gpu` tests are opt-in (pass -m slow or -m gpu to run them).
set -euo pipefail
cd "$(dirname "$0")/.."
ANOMALYST_EXTRAS=dev,text,scale bash scripts/setup.sh
if ! command -v chromium >/dev/null 2>&1; then
  echo "== installing Debian's chromium for the browser tests"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq chromium >/dev/null
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
if [ "$#" -eq 0 ]; then
  set -- -m "not slow and not gpu"
fi
exec .venv/bin/python -m pytest -q "$@"
