"""Issue 23 in Debian's Blender 3.4.1 (`blender -b`): Save As of a rendered .blend as its next version, then
Encode Video, renders nothing (the frames came along on save, through 3.4's save handlers, which are given
no path), and the encode holds its frames against another process's render claim while Blender reads them.
Skipped where no `blender` executable is on PATH."""

import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BLENDER = shutil.which("blender")
pytestmark = pytest.mark.skipif(BLENDER is None, reason="no blender executable on PATH")


def test_save_as_then_encode_renders_nothing_and_the_encode_holds_its_frames(tmp_path):
    pytest.importorskip("torch")
    from demo_song import synthesise_song

    from blender_latentwalk.engine.diffusion import img2img
    from blender_latentwalk.engine.generators import biggan

    song = str(tmp_path / "song.wav")
    synthesise_song(song, seconds=3.0)
    models = (biggan.make_tiny_model(str(tmp_path / "biggan-tiny-UNTRAINED")),
              img2img.make_tiny_pipeline(str(tmp_path / "sd-tiny-UNTRAINED")))
    command = [BLENDER, "-b", "--factory-startup", "--python-exit-code", "1", "-P",
               os.path.join(ROOT, "tests", "headless", "save_as_in_blender.py"), "--", str(tmp_path), song, *models]
    env = dict(os.environ, LATENTWALK_ENGINE_PYTHON=sys.executable, PYTHONPATH=ROOT)
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stdout + result.stderr
    found = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))[7:])
    v01, v02 = (str(tmp_path / "latentwalk_frames" / name / "Scene") for name in ("song_v01", "song_v02"))
    assert found["blender"].startswith("3.4"), found
    assert f"Latent Walk: Save As song_v02.blend: the Output folder of scene 'Scene' is now '{v02}'; its 72 " \
           f"rendered frames were linked there from '{v01}': nothing to render again" in result.stdout
    assert found["rendered_first"] == 72 and found["folder"] == v02
    assert found["status"] == "72 of 72 frames current" and found["encoded"] == ["FINISHED"] and found["video"] > 0
    assert len(found["busy_while_encoding"]) == 1
    busy = found["busy_while_encoding"][0]
    assert busy.startswith(f"frames 1, 72 of '{v02}' are held by process") and ", encoding a video since " in busy
    assert found["busy_after"] == ""
