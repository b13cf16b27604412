"""scripts/bench_cpu_load.py runs and prints its table (not a timing test: the machines are shared; this keeps
the command working), on the tiny BigGAN stand-in, a 1 s song, one round idle and one under load."""

import re
import subprocess
import sys

from render_helpers import ROOT


def test_bench_cpu_load_prints_both_sides_idle_and_loaded_with_the_same_frames(tmp_path):
    result = subprocess.run([sys.executable, "scripts/bench_cpu_load.py", "--tiny", "--seconds", "1", "--rounds", "1",
                             "--load-processes", "1", "--ours-env", "OMP_WAIT_POLICY=PASSIVE", "--work", str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for line in ("machine: CPU", "torch ", "command: scripts/bench_cpu_load.py --tiny", "1 s synthesised", "30 frames",
                 "ours: render.run.render, batch 4 (default)", "OMP_WAIT_POLICY=PASSIVE",
                 "loop: deep-music-visualizer's way: batch 30", "load: 1 busy-loop processes", "ours/loop"):
        assert line in out, (line, out)
    rows = re.findall(r"^(idle|loaded) +([0-9.]+) +([0-9.]+) +([0-9.]+)x +(\d+) +(\d+) +([0-9.]+) +([0-9.]+)", out,
                      re.MULTILINE)
    assert [row[0] for row in rows] == ["idle", "loaded"], out
    for _, ours, loop, ratio, ours_frames, loop_frames, *cpu in rows:
        assert ours_frames == loop_frames == "30", out  # both sides keep every frame of the song
        assert float(ours) > 0 and float(loop) > 0, out
        assert abs(float(ratio) - float(ours) / float(loop)) <= 0.01 + 0.01 * float(ratio), out
        assert all(float(value) > 0 for value in cpu), out
    assert not [name for name in tmp_path.iterdir() if name.name.startswith("frames")], "frames left behind"
