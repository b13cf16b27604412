"""A StyleGAN3 model file in Debian's Blender 3.4.1 under Xvfb (tests/app/stylegan_ui.py): the Video Editing
workspace, Bake Curves, the Walk panel's StyleGAN settings (the file chosen, the StyleGAN3 Turn preset, Rotation
keyed), Render Frames and Encode Video pressed in the sidebar. Its screenshots are the README's StyleGAN
pictures. Fails on any traceback in the log or in the reports the UI showed. Skipped where no `blender` or
`xvfb-run` is on PATH."""

import os
import shutil
import subprocess
import sys

import pytest

from ui_results import checked_walk

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BLENDER = shutil.which("blender")
SCREENSHOTS = os.path.join(ROOT, "docs", "screenshots")
pytestmark = [pytest.mark.skipif(BLENDER is None, reason="no blender executable on PATH"),
              pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb-run is not installed")]
SHOTS = ("stylegan_walk_panel.png", "stylegan_after_render.png")
SEQUENCER_SIDEBAR = "297 px"  # the Sequencer's sidebar at its default width in the Video Editing workspace


def test_a_stylegan3_file_chosen_keyed_rendered_and_encoded_in_the_ui(tmp_path):
    pytest.importorskip("torch")
    from demo_song import synthesise_song

    from blender_latentwalk.engine.generators import stylegan

    song = str(tmp_path / "song.wav")
    synthesise_song(song, seconds=3.0)
    models = stylegan.make_tiny_models(str(tmp_path / "stylegan-tiny-UNTRAINED"))  # beside the .blend: "//..."
    env = dict(os.environ, LATENTWALK_ENGINE_PYTHON=sys.executable, PYTHONPATH=ROOT,
               BLENDER_USER_DATAFILES=str(tmp_path / "user-data"), BLENDER_USER_CONFIG=str(tmp_path / "config"))
    command = ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", BLENDER, "--factory-startup",
               "--enable-event-simulate", "--python-exit-code", "1",  # a script that fails to load quits at once
               "-P", os.path.join(ROOT, "tests", "app", "stylegan_ui.py"), "--",
               "--song", song, "--blend", str(tmp_path / "stylegan.blend"), "--shots", str(tmp_path / "shots"),
               "--model", models["stylegan3-t"]]
    run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900, cwd=str(tmp_path))
    log = run.stdout + run.stderr
    found = checked_walk(log)

    assert found["bake"] == ["RUNNING_MODAL"] and "72 frames from 1 at 24 fps" in found["baked"]
    # The Walk panel: the file chosen (stored relative to the .blend), its kind, the preset, Rotation keyed.
    assert found["choose_model_file"] == ["FINISHED"]
    assert found["generator"] == "//stylegan-tiny-UNTRAINED/stylegan3-t-tiny-UNTRAINED.pkl"
    assert found["kind_label"] == "StyleGAN3 model file"
    assert found["preset"] == ["FINISHED"] and found["latent_space"] == "w" and found["psi"] == 0.7
    assert ["rotation_deg", "rms", 90.0] in found["modulations"]
    assert 0.0 < found["rotation_at_36"] < 180.0  # between the two keys
    # Render Frames: 72 frames at 24 fps, the keyed rotation in the plan the worker drew; the strip above the song.
    assert found["render"] == ["RUNNING_MODAL"] and found["fps"] == 24 and found["frames_written"] == 72
    assert found["frames_status"] == "72 of 72 frames current"
    first, last = found["plan_rotation"]
    assert last - first >= 90.0, found["plan_rotation"]  # keyed 0 -> 180 degrees, plus the preset's modulation
    strips = {strip[1]: strip for strip in found["strips"]}
    assert strips["IMAGE"][2:] == [2, 1, 72] and strips["SOUND"][2] == 1, found["strips"]
    # Encode Video: H.264 of the song's length at the scene's size, and the song as AAC.
    assert found["encode"] == ["RUNNING_MODAL"] and "Latent Walk: Video written: " in found["REPORTS"]
    streams = found["streams"]
    assert streams["video"]["codec"] == "h264" and streams["video"]["seconds"] == pytest.approx(3.0, abs=1 / 24)
    assert (streams["video"]["width"], streams["video"]["height"]) == (64, 48)
    assert streams["audio"]["codec"] == "aac" and streams["audio"]["seconds"] == pytest.approx(3.0, abs=0.05)
    # No label cut in the Walk panel as it draws a StyleGAN3 file's settings.
    labels = found["CUT_LABELS"]
    assert f"LATENTWALK_PT_sequencer_walk at {SEQUENCER_SIDEBAR}" in labels, labels
    assert {key: cut for key, cut in labels.items() if cut} == {}
    os.makedirs(SCREENSHOTS, exist_ok=True)
    for name in SHOTS:  # the README's StyleGAN pictures
        path = tmp_path / "shots" / name
        assert path.is_file() and path.stat().st_size > 10_000, name
        shutil.copyfile(path, os.path.join(SCREENSHOTS, name))
