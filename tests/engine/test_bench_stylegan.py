"""scripts/bench_stylegan.py runs and prints its table (not a timing test: the machines are shared; this keeps
the command working), on reduced StyleGAN2 and StyleGAN3-T networks at 32x32."""

import re
import subprocess
import sys

from render_helpers import ROOT


def test_bench_stylegan_prints_a_row_per_model_and_batch_size():
    result = subprocess.run([sys.executable, "scripts/bench_stylegan.py", "--resolution", "32", "--channel-base", "512",
                             "--channel-max", "32", "--frames", "2", "--batch-sizes", "1,2", "--device", "cpu"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for line in ("machine: CPU", "torch ", "threads", "command: ", "scripts/bench_stylegan.py --resolution 32",
                 "fp16 skipped", "ours f/s", "loop fp32 f/s"):
        assert line in out, (line, out)
    rows = re.findall(r"^(sg2|sg3t) +cpu +fp32 +(\d+) +([0-9.]+) +([0-9.]+) +([0-9.]+)x", out, re.MULTILINE)
    assert [(model, int(batch)) for model, batch, *_ in rows] == [("sg2", 1), ("sg2", 2), ("sg3t", 1), ("sg3t", 2)], out
    assert all(float(value) > 0 for row in rows for value in row[2:]), out
