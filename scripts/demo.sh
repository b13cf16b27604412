#!/usr/bin/env bash
# The demo: set up .venv if needed, synthesise a song, bake its curves into out/demo/demo.blend.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/python scripts/demo.py
