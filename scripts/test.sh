#!/usr/bin/env bash
# Run every test: the engine and add-on on bpy 5.0.1 (.venv), the add-on layer on
# bpy 4.2 LTS (.venv-bpy42), and, where a `blender` executable is on PATH, the
# literal `blender -b --python-exit-code 1 -P ...` commands and the real UI under Xvfb.
# Creates the environments when missing. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --bpy42

echo "== add-on layer on bpy 4.2 LTS"
.venv-bpy42/bin/python -m pytest -q -p no:cacheprovider tests/addon "$@"
echo "== engine, add-on on bpy 5.0.1, Blender application"
.venv/bin/python -m pytest -q -p no:cacheprovider tests "$@"
