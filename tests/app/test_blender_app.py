"""The real Blender application (Debian's 3.4.1 in CI): the literal headless
command, and the panel drawn in the UI under Xvfb.

Skipped where no `blender` executable is on PATH; `.ci/run` installs it.
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import synth
from blender_latentwalk.engine import analysis

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BLENDER = shutil.which("blender")
pytestmark = pytest.mark.skipif(BLENDER is None, reason="no blender executable on PATH")
SCREENSHOT = os.path.join(ROOT, "out", "screenshots", "panel.png")

CHECK_CURVES = """
import bpy, json, sys
from blender_latentwalk.blender import compat
scene = bpy.context.scene
out = {fc.data_path: [fc.evaluate(f) for f in range(scene.frame_start, scene.frame_end + 1)]
       for fc in compat.fcurves_of(scene)}
print("CURVES=" + json.dumps({"curves": out, "version": bpy.app.version_string}))
"""


def blender_env():
    env = dict(os.environ, LATENTWALK_ENGINE_PYTHON=sys.executable, PYTHONPATH=ROOT)
    return env


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    folder = tmp_path_factory.mktemp("app")
    signal = synth.clicks(np.arange(0.5, 3.0, 0.5), 44100, 3.0) + synth.tone(100, 44100, 3.0, 0.2)
    return synth.write(folder / "song.wav", signal, 44100)


@pytest.fixture(scope="module")
def baked_blend(song, tmp_path_factory):
    blend = str(tmp_path_factory.mktemp("blend") / "baked.blend")
    command = [BLENDER, "-b", "--factory-startup", "--python-exit-code", "1", "-P",
               os.path.join(ROOT, "scripts", "bake.py"), "--", "--audio", song, "--beat-markers",
               "--save", blend]
    result = subprocess.run(command, capture_output=True, text=True, env=blender_env(), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "baked 21 curves" in result.stdout
    return blend


def test_literal_headless_bake_gives_the_analysed_curves(baked_blend, song, tmp_path):
    checker = tmp_path / "check.py"
    checker.write_text("import sys; sys.path.insert(0, %r)\n" % ROOT + CHECK_CURVES)
    result = subprocess.run([BLENDER, "-b", baked_blend, "--python-exit-code", "1", "-P", str(checker)],
                            capture_output=True, text=True, env=blender_env(), timeout=300)
    assert result.returncode == 0, result.stderr
    payload = json.loads(next(l for l in result.stdout.splitlines() if l.startswith("CURVES="))[7:])
    expected = analysis.analyze(song, 24)  # factory-startup scenes run at 24 fps
    curves = payload["curves"]
    np.testing.assert_allclose(curves["latentwalk.onset"], expected.onset, atol=1e-6)
    np.testing.assert_allclose(curves["latentwalk.bands[1].value"], expected.bands[1], atol=1e-6)


def test_headless_bake_of_a_missing_file_exits_1_with_the_reason(baked_blend, tmp_path):
    missing = str(tmp_path / "nope.wav")
    command = [BLENDER, "-b", baked_blend, "--python-exit-code", "1", "-P",
               os.path.join(ROOT, "scripts", "bake.py"), "--", "--audio", missing]
    result = subprocess.run(command, capture_output=True, text=True, env=blender_env(), timeout=300)
    assert result.returncode == 1
    assert f"error: audio file not found: '{missing}'" in result.stderr


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb-run is not installed")
def test_panel_draws_in_the_real_ui_without_python_errors(baked_blend, song):
    if os.path.exists(SCREENSHOT):
        os.unlink(SCREENSHOT)
    command = ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", BLENDER, baked_blend,
               "--enable-event-simulate", "-P", os.path.join(ROOT, "scripts", "screenshot_panel.py"),
               "--", "--audio", song, "--out", SCREENSHOT]
    result = subprocess.run(command, capture_output=True, text=True, env=blender_env(), timeout=300)
    log = result.stdout + result.stderr
    assert "screenshot written" in log, log
    for marker in ("Traceback", "Error:", "rna_uiItem", "ERROR"):
        assert marker not in log, log
    from PIL import Image

    with Image.open(SCREENSHOT) as image:
        assert image.size == (1600, 1000)
        assert sum(1 for count in image.convert("L").histogram() if count) > 50  # drawn, not blank


def test_bake_script_save_to_an_unwritable_place_is_one_line(song, tmp_path):
    command = [sys.executable, os.path.join(ROOT, "scripts", "bake.py"), "--", "--audio", song,
               "--save", "/proc/latentwalk/out.blend"]
    result = subprocess.run(command, capture_output=True, text=True, env=blender_env(), timeout=300)
    assert result.returncode == 1
    assert "error: cannot" in result.stderr and "Traceback" not in result.stderr


def test_headless_preview_renders_through_the_engine_python(song, tmp_path):
    from blender_latentwalk.engine import biggan

    model = biggan.make_tiny_model(str(tmp_path / "biggan"))
    command = [BLENDER, "-b", "--factory-startup", "--python-exit-code", "1", "-P",
               os.path.join(ROOT, "scripts", "bake.py"), "--", "--audio", song, "--preview", "--biggan", model,
               "--preview-folder", str(tmp_path / "preview"), "--device", "cpu"]
    result = subprocess.run(command, capture_output=True, text=True, env=blender_env(), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "preview: 72 BigGAN frames" in result.stdout
    assert len([n for n in os.listdir(tmp_path / "preview") if n.endswith(".png")]) == 72
