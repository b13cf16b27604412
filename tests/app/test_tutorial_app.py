"""docs/tutorial.md walked click by click in Debian's Blender 3.4.1 under Xvfb (tests/app/tutorial_ui.py), in
Blender's default Video Editing workspace; its screenshots are the tutorial's pictures. Fails on any traceback
in the log or in the reports the UI showed. Skipped where no `blender` or `xvfb-run` is on PATH."""

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
TUTORIAL_SHOTS = ("tutorial_show_curves.png", "tutorial_noise_modifier.png", "tutorial_rebake_dialog.png",
                  "tutorial_render_progress.png", "tutorial_after_render.png", "tutorial_out_of_date.png",
                  "tutorial_models.png")
# The sidebars the tutorial uses, at their default widths in the Video Editing workspace (3.4.1, 100%).
SEQUENCER_SIDEBAR, GRAPH_SIDEBAR = "297 px", "229 px"


def walk(tmp_path, screen, *extra):
    pytest.importorskip("diffusers")
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    from demo_song import synthesise_song

    song = str(tmp_path / "song.wav")
    synthesise_song(song, seconds=3.0)
    env = dict(os.environ, LATENTWALK_ENGINE_PYTHON=sys.executable, PYTHONPATH=ROOT,
               BLENDER_USER_DATAFILES=str(tmp_path / "user-data"), BLENDER_USER_CONFIG=str(tmp_path / "config"))
    command = ["xvfb-run", "-a", "-s", f"-screen 0 {screen}x24", BLENDER, "--factory-startup",
               "--enable-event-simulate", "-P", os.path.join(ROOT, "tests", "app", "tutorial_ui.py"), "--",
               "--song", song, "--blend", str(tmp_path / "tutorial.blend"), "--shots", str(tmp_path / "shots"),
               *extra]
    run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1200, cwd=str(tmp_path))
    log = run.stdout + run.stderr
    found = checked_walk(log)
    return found, log


def check_show_curves(found):
    """Show Curves in the Video Editing workspace: a Graph Editor of at least 40% of the window each way."""
    state = found["show_curves_state"]
    (window_width, window_height), (width, height) = state["window"], state["graph"]
    assert found["workspace"] == "Video Editing"
    assert height >= 0.4 * window_height and width >= 0.4 * window_width, state
    assert state["visible"] == ["latentwalk.bands[1].value"] and state["selected_keys"] == 0, state
    first, last, low, high = state["view"]
    (song_first, song_last), (value_low, value_high) = state["frames"], state["values"]
    assert first <= song_first and last >= song_last and low <= value_low and high >= value_high, state


def test_the_tutorial_click_by_click_in_the_video_editing_workspace(tmp_path):
    found, log = walk(tmp_path, "1600x1000")
    # 2: Bake Curves runs as a job (invoked: Blender stays usable), Show Curves opens a working Graph Editor.
    assert found["bake"] == ["RUNNING_MODAL"] and "25 curves" in found["baked"]
    check_show_curves(found)
    # 3: the Noise modifier lands on the curve on screen (Mids), and Bake Curves again (Blender 3.4 has no
    # FModifier.name) asks, then keeps it.
    assert found["noise_added"] == ["FINISHED"] and found["mids_modifiers"] == ["NOISE"]
    assert found["visible_modifiers"] == ["NOISE"]
    assert found["rebake"] == ["RUNNING_MODAL"] and found["mids_after_rebake"] == ["NOISE"]
    assert "kept 1 curve(s) edited by hand: Mids (500-2000 Hz)" in found["REPORTS"]
    # 4: the cube follows the Bass curve; 5: Turbo's strength, the modulation added.
    assert all(abs(scale - expected) < 1e-5 for scale, expected in found["cube_follows_bass"])
    assert found["strength_after_preset"] == 0.5 and found["modulation"] == ["FINISHED"]
    # 6: stand-in models, preview, render stopped by Esc and resumed, encode without a render window.
    assert found["stand_ins"] == ["RUNNING_MODAL"] and found["preview"] == ["RUNNING_MODAL"]
    assert 1 <= found["cancelled_frames"] < 72 and found["render_again"] == ["RUNNING_MODAL"]
    assert found["frames_after_render"] == "72 of 72 frames current"
    assert found["encode"] == ["RUNNING_MODAL"] and found["windows_while_encoding"] == 1
    assert "Latent Walk: Video written: " in found["REPORTS"]
    assert "stand-in models: the frames are noise" in found["REPORTS"]
    # 7: at 30 fps the frame count no longer shows as current, and Re-bake works.
    assert found["frames_status_applies_after_fps_change"] is False
    assert found["rebake_after_fps"] == ["RUNNING_MODAL"] and "90 frames from 1 at 30 fps" in found["rebaked_at_30"]
    # No label cut in any state drawn, in both sidebars at their default widths, Models included.
    labels = found["CUT_LABELS"]
    for panel in ("LATENTWALK_PT_{}", "LATENTWALK_PT_{}_walk", "LATENTWALK_PT_{}_render",
                  "LATENTWALK_PT_{}_modulation", "LATENTWALK_PT_{}_models"):
        assert f"{panel.format('sequencer')} at {SEQUENCER_SIDEBAR}" in labels, labels
        assert f"{panel.format('graph')} at {GRAPH_SIDEBAR}" in labels, labels
    assert {key: cut for key, cut in labels.items() if cut} == {}
    os.makedirs(SCREENSHOTS, exist_ok=True)
    for name in TUTORIAL_SHOTS:  # the tutorial's pictures
        path = tmp_path / "shots" / name
        assert path.is_file() and path.stat().st_size > 10_000, name
        shutil.copyfile(path, os.path.join(SCREENSHOTS, name))


def test_show_curves_at_1920x1080_in_the_video_editing_workspace(tmp_path):
    found, _log = walk(tmp_path, "1920x1080", "--only-show-curves")
    check_show_curves(found)
