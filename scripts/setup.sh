#!/usr/bin/env bash
# Set up ampnet in ./.venv: system library, virtual environment, the package.
# Usage: scripts/setup.sh [EXTRAS]   e.g. scripts/setup.sh test   (EXTRAS: train, test)
# torch is pinned to the CPU build through constraints.txt (no CUDA downloads).
set -euo pipefail
cd "$(dirname "$0")/.."

# PortAudio for live audio; for the test extra also JACK2, whose dummy driver is the
# audio server the live and capture tests run against (this machine has no sound card).
apt_packages=""
ldconfig -p 2>/dev/null | grep -q libportaudio.so.2 || apt_packages="libportaudio2"
if [[ "${1:-}" == *test* ]]; then
    command -v jackd >/dev/null || apt_packages="$apt_packages jackd2"
    # A real device in the JACK graph for the capture tests: a Guitarix LV2 plugin run by
    # jalv, and lv2apply to run the same plugin offline.
    command -v jalv >/dev/null || apt_packages="$apt_packages jalv"
    command -v lv2apply >/dev/null || apt_packages="$apt_packages lilv-utils"
    [ -d /usr/lib/lv2/gxtilttone.lv2 ] || apt_packages="$apt_packages guitarix-lv2"
fi
if [ -n "$apt_packages" ]; then
    echo "== installing $apt_packages (apt)"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        $apt_packages >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    echo "== creating .venv"
    python3 -m venv .venv
fi
spec="."
[ -n "${1:-}" ] && spec=".[$1]"
echo "== installing ampnet${1:+ with [$1]} into .venv"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e "$spec"
# Compile every kernel into Numba's cache now, so the first render or live session
# does not spend half a minute compiling.
echo "== compiling the kernels (once per install and CPU)"
.venv/bin/python -m ampnet.host.warm
