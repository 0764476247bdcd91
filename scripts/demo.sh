#!/usr/bin/env bash
# Set everything up, then render the shipped DI clip through the shipped model.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
mkdir -p out
.venv/bin/ampnet info models/gx-tiltdrive.json
.venv/bin/ampnet render models/gx-tiltdrive.json models/di-clip.flac -o out/di-clip-gx-tiltdrive.flac --overwrite
.venv/bin/ampnet render models/tiltdrive-cab.toml models/di-clip.flac -o out/di-clip-tiltdrive-cab.flac --overwrite
echo
echo "Listen: out/di-clip-gx-tiltdrive.flac (the DI clip models/di-clip.flac through the model)"
echo "        out/di-clip-tiltdrive-cab.flac (through the preset models/tiltdrive-cab.toml:"
echo "        gate, the model, EQ and a cabinet)"
