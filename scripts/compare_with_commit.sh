#!/usr/bin/env bash
# Render the demo with this checkout and with an earlier COMMIT, then compare every frame byte for byte.
# For changes that must not move a pixel (a refactor, a rename): analysis, bake, plan, BigGAN, img2img and
# the PNG writer all run, through the same headless script the demo uses.
#
#   scripts/compare_with_commit.sh COMMIT        exit 0 when every frame is identical, 1 otherwise
set -euo pipefail
cd "$(dirname "$0")/.."
commit="${1:?usage: scripts/compare_with_commit.sh COMMIT}"
scripts/setup.sh

scratch="$(mktemp -d)"
cleanup() { git worktree remove --force "$scratch/before" >/dev/null 2>&1 || true; rm -rf "$scratch"; }
trap cleanup EXIT
git worktree add --quiet --detach "$scratch/before" "$commit"
ln -s "$PWD/.venv" "$scratch/before/.venv"  # the same libraries: only the code differs

echo "== the demo at $(git rev-parse --short "$commit")"
(cd "$scratch/before" && .venv/bin/python scripts/demo.py >"$scratch/before.log" 2>&1) \
    || { tail -20 "$scratch/before.log"; exit 1; }
echo "== the demo in this checkout"
.venv/bin/python scripts/demo.py >"$scratch/after.log" 2>&1 || { tail -20 "$scratch/after.log"; exit 1; }

.venv/bin/python - "$scratch/before/out/demo/frames" out/demo/frames <<'EOF'
import hashlib, os, sys
def digests(folder):
    return {name: hashlib.sha256(open(os.path.join(folder, name), "rb").read()).hexdigest()
            for name in sorted(os.listdir(folder)) if name.endswith(".png")}
before, after = (digests(folder) for folder in sys.argv[1:3])
differ = sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
print(f"{len(after)} frames in this checkout, {len(before)} at the commit; {len(differ)} differ"
      + (f": {', '.join(differ[:10])}" if differ else " (byte-identical)"))
sys.exit(1 if differ or not after else 0)
EOF
