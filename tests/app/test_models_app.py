"""Download in the Models panel, clicked in Debian's Blender 3.4.1 under Xvfb, from a loopback server."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from blender_latentwalk.engine.generators import biggan
from hub_server import ModelServer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BLENDER = shutil.which("blender")
pytestmark = [pytest.mark.skipif(BLENDER is None, reason="no blender executable on PATH"),
              pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb-run is not installed")]


def test_download_in_the_ui_shows_bytes_cancels_on_esc_and_continues(tmp_path):
    pytest.importorskip("torch")
    tiny = biggan.make_tiny_model(str(tmp_path / "served"))
    server = ModelServer()
    weights_path = "/biggan/biggan-deep-128-pytorch_model.bin"
    server.files["/biggan/biggan-deep-128-config.json"] = open(os.path.join(tiny, "config.json"), "rb").read()
    server.files[weights_path] = open(os.path.join(tiny, "pytorch_model.bin"), "rb").read()
    server.delay_s = 0.01  # slow enough for Esc to land mid-file
    blend = tmp_path / "empty.blend"
    subprocess.run([BLENDER, "-b", "--factory-startup", "--python-expr",
                    f"import bpy; bpy.ops.wm.save_as_mainfile(filepath={str(blend)!r})"],
                   capture_output=True, timeout=120, check=True)
    env = dict(os.environ, LATENTWALK_ENGINE_PYTHON=sys.executable, PYTHONPATH=ROOT, HF_HOME=str(tmp_path / "hf"),
               PYTORCH_PRETRAINED_BIGGAN_CACHE=str(tmp_path / "biggan"), LATENTWALK_BIGGAN_ENDPOINT=server.url,
               HF_HUB_OFFLINE="0")
    try:
        run = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1280x800x24", BLENDER, str(blend),
                              "--enable-event-simulate", "-P",
                              os.path.join(ROOT, "tests", "app", "modal_download_ui.py"),
                              "--", "--model", "biggan-deep-128"],
                             capture_output=True, text=True, env=env, timeout=600)
    finally:
        server.close()
    log = run.stdout + run.stderr
    results = {}
    for line in log.splitlines():
        if line.startswith("RESULT "):
            results.update(json.loads(line[7:]))
    assert "error" not in results and "Traceback" not in log, log[-4000:]
    assert results["invoked"] == ["RUNNING_MODAL"] and results["invoked_again"] == ["RUNNING_MODAL"]
    assert results["cancelled"], log[-3000:]
    assert "BigGAN 128:" in results["status"][0] and "%" in results["status"][0]
    assert results["listed_after_cancel"]["biggan-deep-128"] is False  # the panel's list follows the cancel
    assert results["listed_at_end"]["biggan-deep-128"] is True
    ranges = server.ranges(weights_path)
    assert len(ranges) == 2 and ranges[0] is None and ranges[1].startswith("bytes=") and ranges[1] != "bytes=0-"
