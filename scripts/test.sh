#!/usr/bin/env bash
# Set everything up (with the test extra: pytest, torch CPU, scipy), then run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
.venv/bin/python -m pytest "$@"
