"""Set Up Render Environment in Debian's Blender 3.4.1, pressed as a click does, for real: pip installs the
render stack into the add-on's user data folder, the Engine Python becomes that environment, and a bake and a
preview render run through it. Skipped where no `blender` or `xvfb-run` is on PATH."""

import os
import shutil
import subprocess

import numpy as np
import pytest
from ui_results import results_of

import synth

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BLENDER = shutil.which("blender")
pytestmark = [pytest.mark.skipif(BLENDER is None, reason="no blender executable on PATH"),
              pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb-run is not installed")]


def test_the_button_makes_the_engine_python_that_bakes_and_renders(tmp_path):
    song = synth.write(tmp_path / "song.wav", synth.clicks(np.arange(0.5, 3.0, 0.5), 44100, 3.0)
                       + synth.tone(100, 44100, 3.0, 0.2), 44100)
    user_data = tmp_path / "user-data"
    env = {k: v for k, v in os.environ.items() if k != "LATENTWALK_ENGINE_PYTHON"}  # the preference decides
    env.update(PYTHONPATH=ROOT, BLENDER_USER_DATAFILES=str(user_data), BLENDER_USER_CONFIG=str(tmp_path / "config"),
               LATENTWALK_TORCH_INDEX_URL="default")  # this machine reaches PyPI only
    command = ["xvfb-run", "-a", "-s", "-screen 0 1280x800x24", BLENDER, "--factory-startup",
               "--enable-event-simulate", "-P", os.path.join(ROOT, "tests", "app", "setup_env_ui.py"), "--",
               "--song", song, "--out", str(tmp_path / "out")]
    run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1500, cwd=str(tmp_path))
    log = run.stdout + run.stderr
    results = results_of(log)
    assert "error" not in results and "Traceback" not in log, log[-5000:]
    assert results["enabled"] == ["FINISHED"] and results["has_preferences"]
    assert results["engine_python_before"] == "" and results["invoked"] == ["RUNNING_MODAL"]
    folder = str(user_data / "latentwalk" / "render-env")
    assert results["folder"] == folder
    assert results["engine_python"] == os.path.join(folder, "bin", "python"), log[-3000:]
    status = results["status"]
    for number, title in enumerate(["Creating the Python environment", "Installing PyTorch (CPU only)",
                                    "Installing diffusers", "Checking that the render stack imports"], 1):
        assert any(line.startswith(f"Latent Walk set-up {number}/4: {title}") for line in status), status
    assert any("Collecting" in line or "Installing collected packages" in line for line in status), status
    assert "render environment ready" in log  # the report
    assert not os.path.exists(folder + ".partial")
    logs = os.listdir(user_data / "latentwalk" / "logs")
    assert any(name.startswith("setup-env-") for name in logs)
    assert results["tiny_models"] == 0, results["tiny_models_log"]
    assert results["bake"] == ["FINISHED"] and "25 curves" in results["summary"], results
    assert results["preview"] == ["FINISHED"] and results["preview_frames"] == 72  # 3 s at 24 fps
