"""scripts/bench_bookkeeping.py runs and prints its table (not a timing test: the machines are shared; this keeps
the command working), at small song lengths, one of them above --old-full-up-to so that the sampled rows run too."""

import re
import subprocess
import sys

from render_helpers import ROOT


def test_bench_bookkeeping_prints_both_designs_side_by_side_for_each_length():
    result = subprocess.run([sys.executable, "scripts/bench_bookkeeping.py", "--frames", "200,400", "--old-full-up-to",
                             "200", "--old-samples", "2"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for line in ("machine: CPU", "torch ", "command: ", "scripts/bench_bookkeeping.py --frames 200,400",
                 "batches ms/f", "one update ms", "goal: under 1 ms a frame"):
        assert line in out, (line, out)
    number = r"([0-9.]+|-)"
    rows = re.findall(rf"^ *(\d+)  (journal|rewrite) +(whole|sampled x2) +{number} +{number} +{number} +{number} +"
                      rf"{number} +{number}$", out, re.MULTILINE)
    assert [(int(n), design, how) for n, design, how, *_ in rows] == [
        (200, "journal", "whole"), (200, "rewrite", "whole"), (400, "journal", "whole"),
        (400, "rewrite", "sampled x2")], out
    for row in rows:
        total, update = float(row[6]), float(row[7])
        assert total > 0 and update > 0, row
    assert re.search(r"^journal: [0-9.]+, [0-9.]+ ms a frame at 200, 400 frames", out, re.MULTILINE), out
