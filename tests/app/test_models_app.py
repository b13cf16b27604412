"""Download in the Models panel, clicked in Debian's Blender 3.4.1 under Xvfb, from a loopback server."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from ui_results import results_of

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
    results = results_of(log)
    assert "error" not in results and "Traceback" not in log, log[-4000:]
    assert results["invoked"] == ["RUNNING_MODAL"] and results["invoked_again"] == ["RUNNING_MODAL"]
    assert results["cancelled"], log[-3000:]
    assert "BigGAN 128:" in results["status"][0] and "%" in results["status"][0]
    assert results["listed_after_cancel"]["biggan-deep-128"] is False  # the panel's list follows the cancel
    assert results["listed_at_end"]["biggan-deep-128"] is True
    ranges = server.ranges(weights_path)
    assert len(ranges) == 2 and ranges[0] is None and ranges[1].startswith("bytes=") and ranges[1] != "bytes=0-"


def test_models_panel_stand_ins_and_labels_fit_the_default_sidebars(tmp_path):
    """Issue 19: model labels cut in the sidebar ("BigGAN ...", "SDXL Tu..."), no way to try the path without the
    real models. Use Stand-in Models pressed as a click does; the panel drawn at the Sequencer's and the Graph
    Editor's default sidebar widths; the preferences with a set-up failure. The pictures go to tmp/out."""
    pytest.importorskip("torch")
    out = tmp_path / "out"
    addons = tmp_path / "scripts" / "addons"  # installed as a user links a checkout: the preferences list it
    addons.mkdir(parents=True)
    (addons / "blender_latentwalk").symlink_to(os.path.join(ROOT, "blender_latentwalk"))
    env = dict(os.environ, LATENTWALK_ENGINE_PYTHON=sys.executable, PYTHONPATH=ROOT, HF_HOME=str(tmp_path / "hf"),
               PYTORCH_PRETRAINED_BIGGAN_CACHE=str(tmp_path / "biggan"), HF_HUB_OFFLINE="1",
               BLENDER_USER_DATAFILES=str(tmp_path / "user-data"), BLENDER_USER_CONFIG=str(tmp_path / "config"),
               BLENDER_USER_SCRIPTS=str(tmp_path / "scripts"))
    env.pop("HF_HUB_CACHE", None)
    run = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1280x800x24", BLENDER, "--factory-startup",
                          "--enable-event-simulate", "-P", os.path.join(ROOT, "tests", "app", "models_panel_ui.py"),
                          "--", "--out", str(out)], capture_output=True, text=True, env=env, timeout=600)
    log = run.stdout + run.stderr
    results, cut = {}, None
    for line in log.splitlines():
        if line.startswith("RESULT "):
            results.update(json.loads(line[7:]))
        elif line.startswith("CUT_LABELS "):
            cut = json.loads(line[len("CUT_LABELS "):])
    assert "Traceback" not in log and "preferences_picture" in results, log[-5000:]
    assert results["enabled"] == ["FINISHED"] and results["refreshed"] == ["FINISHED"]
    assert results["fields_before"] == ["biggan-deep-256", "stabilityai/sd-turbo", ""]
    assert results["stand_ins_invoked"] == ["RUNNING_MODAL"]  # made in the Engine Python, Blender stays usable
    assert results["stand_in_status"] and "making the stand-in models" in results["stand_in_status"][0]
    folder = tmp_path / "user-data" / "latentwalk" / "stand-in-models"
    assert results["fields_with_stand_ins"] == [str(folder / "biggan-tiny-UNTRAINED"),
                                                str(folder / "sd-tiny-UNTRAINED"), ""]
    assert [title for title, _ in results["stand_ins_in_use"]] == ["BigGAN", "SD model"]
    assert results["fields_after"] == results["fields_before"]
    assert len(results["report"]) <= 150 and results["report"].startswith("Latent Walk: set-up failed: the network")
    assert results["graph_sidebar_px"] < results["sequencer_sidebar_px"]  # both at their defaults
    assert cut is not None and all(found == [] for found in cut.values()), cut
    for name in ("models_sequencer.png", "stand_ins_sequencer.png", "stand_ins_graph.png", "models_graph.png",
                 "preferences_failure.png"):
        assert (out / name).is_file(), name
