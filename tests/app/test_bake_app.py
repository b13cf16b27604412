"""Bake Curves clicked in Debian's Blender 3.4.1 under Xvfb: the analysis runs in a worker while Blender stays
usable, with its step in the status bar; Esc cancels and changes nothing; a bake let
run writes the curves; the dialog about edited curves still comes first."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from ui_results import results_of

import synth

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BLENDER = shutil.which("blender")
pytestmark = [pytest.mark.skipif(BLENDER is None, reason="no blender executable on PATH"),
              pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb-run is not installed")]


def test_bake_in_the_ui_shows_its_steps_cancels_on_esc_and_writes_the_curves_when_let_run(tmp_path):
    pytest.importorskip("librosa")  # the worker's Python (this one) analyses
    sample_rate, duration_s = 22050, 300.0  # five minutes on parts of the mix: seconds of measuring to press Esc in
    beats_s = np.arange(0.25, duration_s - 0.5, 0.5)
    signal = (synth.kicks(beats_s, sample_rate, duration_s) + synth.hats(beats_s + 0.25, sample_rate, duration_s)
              + synth.tone(55.0, sample_rate, duration_s, 0.2))
    song = synth.write(tmp_path / "long.wav", signal, sample_rate)
    blend = tmp_path / "empty.blend"  # a file, as an artist opens one: no splash screen over the first Esc
    subprocess.run([BLENDER, "-b", "--factory-startup", "--python-expr",
                    f"import bpy; bpy.ops.wm.save_as_mainfile(filepath={str(blend)!r})"],
                   capture_output=True, timeout=120, check=True)
    env = dict(os.environ, LATENTWALK_ENGINE_PYTHON=sys.executable, PYTHONPATH=ROOT)
    screenshot = str(tmp_path / "bake_progress.png")
    run = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1280x800x24", BLENDER, str(blend),
                          "--enable-event-simulate", "-P", os.path.join(ROOT, "tests", "app", "modal_bake_ui.py"),
                          "--", "--song", song, "--screenshot", screenshot],
                         capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    log = run.stdout + run.stderr
    results = results_of(log)
    assert "error" not in results and "Traceback" not in log, log[-4000:]

    # Clicked: the bake runs as a modal job, its step and share in the status bar; the other jobs' buttons are off.
    assert results["invoked"] == ["RUNNING_MODAL"]
    during = results["while_baking"]
    assert during["status"] == "Latent Walk bake: measuring bands and onsets (2/6)", during
    assert 1 / 6 <= during["fraction"] < 2 / 6
    assert not during["bake_enabled"] and not during["render_enabled"] and during["cancel_enabled"]
    assert os.path.getsize(screenshot) > 0

    # Esc: cancelled midway, the scene as it was.
    assert results["cancelled"] and results["unchanged"], results
    assert "Latent Walk: Bake cancelled: the curves are as they were." in results["reports"]

    # Let run: the steps go by in order (those the script's ticks catch), the bar only forwards, then the curves.
    assert results["invoked_again"] == ["RUNNING_MODAL"]
    shown = [line for line, _ in results["status"]]
    assert shown[0] == "Latent Walk bake: starting the analysis..." and (
        "Latent Walk bake: measuring bands and onsets (2/6)" in shown), shown
    step_numbers = [int(line[-4]) for line in shown[1:]]  # "... (3/6)"
    assert step_numbers == sorted(step_numbers) and all(line.endswith("/6)") for line in shown[1:]), shown
    fractions = [fraction for _, fraction in results["status"]]
    assert fractions == sorted(fractions) and len(set(fractions)) > 3  # the bar moves within the long step too
    baked = results["baked"]
    assert baked["n_curves"] == 7 + 2 + 4 + 12 and baked["n_keys"] == 7200 and baked["frame_end"] == 7200
    assert baked["summary"].startswith("7200 frames from 1 at 24 fps")  # the factory scene's rate

    # An edited curve: the dialog asks first (no bake yet), then the bake runs and keeps the edit.
    assert results["dialog_invoked"] == ["RUNNING_MODAL"] and not results["bake_before_confirming"]
    assert results["after_dialog"]["edit_kept"], results
    assert "kept 1 curve(s) edited by hand: Onset" in log
