#!/usr/bin/env bash
# Create (or update) the project's Python environments. Idempotent and quiet.
#   scripts/setup.sh           .venv        (engine, bpy 5.0.1, torch CPU, diffusers, tests)
#   scripts/setup.sh --bpy42   also .venv-bpy42 (bpy 4.2 LTS, to test the add-on layer there)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || {
    echo "error: Python 3.11 is required (bpy 5.0.1 wheels exist only for 3.11); found $("$PYTHON" --version 2>&1)." >&2
    echo "       Install python3.11, or point PYTHON=/path/to/python3.11 at one." >&2
    exit 1
}

make_venv() {  # make_venv DIR REQUIREMENTS
    local venv="$1" requirements="$2" stamp="$1/.requirements.sha1"
    local wanted
    wanted="$(cat "$requirements" blender_latentwalk/engine/setup/data/render-requirements.txt | sha1sum | cut -d' ' -f1)"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
        return 0
    fi
    echo "setup: installing $requirements into $venv (first run takes a few minutes)"
    [[ -x "$venv/bin/python" ]] || "$PYTHON" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements" 2>&1 \
        | grep -v "is ignored: it is neither a file nor a directory" || true
    "$venv/bin/python" -c "import bpy, numpy, librosa" || { echo "error: $venv is incomplete" >&2; exit 1; }
    echo "$wanted" > "$stamp"
}

make_venv .venv requirements/main.txt
if [[ "${1:-}" == "--bpy42" ]]; then
    make_venv .venv-bpy42 requirements/bpy42.txt
fi
