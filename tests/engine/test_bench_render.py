"""The documented benchmark command runs and prints every figure docs/performance.md reports (not a timing
test: the machines are shared; this keeps the command working)."""

import re
import subprocess
import sys

from render_helpers import ROOT


def test_bench_render_full_prints_the_whole_table():
    result = subprocess.run([sys.executable, "scripts/bench_render.py", "--full", "--frame-count", "2", "--size", "64",
                             "--batch-sizes", "2", "--repeats", "1", "--tiny-vae"], cwd=ROOT, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for line in ("typical add-on", "PNGs written in the loop", "PNGs on the writer pool", "compute only",
                 "device busy", "stages alone", "FLOP bound", "table row: |"):
        assert line in out, (line, out)
    rates = [float(value) for value in re.findall(r"([0-9.]+) frames/s", out)]
    assert rates and all(rate > 0 for rate in rates)
    assert float(re.search(r"([0-9.]+) GFLOP a frame", out).group(1)) > 1  # biggan-deep-256 alone is more
