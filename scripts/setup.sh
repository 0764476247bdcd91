#!/usr/bin/env bash
# Set up ampnet in ./.venv: system library, virtual environment, the package.
# Usage: scripts/setup.sh [EXTRAS]   e.g. scripts/setup.sh test   (EXTRAS: train, test)
# torch is pinned to the CPU build through constraints.txt (no CUDA downloads).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! ldconfig -p 2>/dev/null | grep -q libportaudio.so.2; then
    echo "== installing libportaudio2 (PortAudio, for live audio)"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libportaudio2 >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    echo "== creating .venv"
    python3 -m venv .venv
fi
spec="."
[ -n "${1:-}" ] && spec=".[$1]"
echo "== installing ampnet${1:+ with [$1]} into .venv"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e "$spec"
