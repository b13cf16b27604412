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
from ui_results import results_of

import synth
from blender_latentwalk.engine.analysis import pipeline

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BLENDER = shutil.which("blender")
pytestmark = pytest.mark.skipif(BLENDER is None, reason="no blender executable on PATH")
SCREENSHOTS = os.path.join(ROOT, "docs", "screenshots")

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
    blend = os.path.join(os.path.dirname(song), "baked.blend")  # beside the song: the strip shows //song.wav
    command = [BLENDER, "-b", "--factory-startup", "--python-exit-code", "1", "-P",
               os.path.join(ROOT, "scripts", "bake.py"), "--", "--audio", song, "--beat-markers",
               "--save", blend]
    result = subprocess.run(command, capture_output=True, text=True, env=blender_env(), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "baked 25 curves" in result.stdout
    return blend


def test_literal_headless_bake_gives_the_analysed_curves(baked_blend, song, tmp_path):
    checker = tmp_path / "check.py"
    checker.write_text("import sys; sys.path.insert(0, %r)\n" % ROOT + CHECK_CURVES)
    result = subprocess.run([BLENDER, "-b", baked_blend, "--python-exit-code", "1", "-P", str(checker)],
                            capture_output=True, text=True, env=blender_env(), timeout=300)
    assert result.returncode == 0, result.stderr
    payload = json.loads(next(l for l in result.stdout.splitlines() if l.startswith("CURVES="))[7:])
    expected = pipeline.analyze(song, 24)  # factory-startup scenes run at 24 fps
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


@pytest.fixture(scope="module")
def demo_blend(tmp_path_factory):
    """The demo song (8 s) baked by the literal headless command into a .blend saved beside it."""
    from demo_song import synthesise_song

    folder = tmp_path_factory.mktemp("demo")
    song = str(folder / "song.wav")
    synthesise_song(song, seconds=8.0)
    blend = str(folder / "demo.blend")
    command = [BLENDER, "-b", "--factory-startup", "--python-exit-code", "1", "-P",
               os.path.join(ROOT, "scripts", "bake.py"), "--", "--audio", song, "--beat-markers", "--save", blend]
    result = subprocess.run(command, capture_output=True, text=True, env=blender_env(), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return blend, song


UI_SHOTS = ("panel.png", "walk_panel.png", "render_panel.png", "show_curves.png", "graph_editor.png",
            "graph_sidebar.png")


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb-run is not installed")
def test_show_curves_pressed_in_the_ui_opens_a_working_graph_editor_and_the_screenshots(demo_blend):
    """Blender 3.4.1 under Xvfb: the panels at the default sidebar width, then Show Curves pressed as a click
    on its button runs it (invoked in the sidebar's region), checked through the Graph Editor's own context."""
    blend, song = demo_blend
    for name in UI_SHOTS:
        if os.path.exists(os.path.join(SCREENSHOTS, name)):
            os.unlink(os.path.join(SCREENSHOTS, name))
    command = ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", BLENDER, blend, "--enable-event-simulate",
               "-P", os.path.join(ROOT, "scripts", "screenshot_panel.py"), "--", "--audio", song,
               "--out-dir", SCREENSHOTS]
    run = subprocess.run(command, capture_output=True, text=True, env=blender_env(), timeout=300)
    log = run.stdout + run.stderr
    for marker in ("Traceback", "Error:", "rna_uiItem", "ERROR", "Segmentation fault"):
        assert marker not in log, log
    line = next((l for l in log.splitlines() if l.startswith("RESULT ")), None)
    assert line is not None, log
    found = json.loads(line[7:])
    assert found["show_curves"] == ["FINISHED"]
    # A Graph Editor of working size: at least 40% of the window each way (the Timeline was not turned into it).
    (window_width, window_height), (width, height) = found["window"], found["graph"]
    assert width >= 0.4 * window_width and height >= 0.4 * window_height, found
    assert not found["timeline_is_graph"] and "DOPESHEET_EDITOR" in found["types"], found
    # It draws the active band's curve alone (Bass), its channel selected, and no key selected (G moves nothing).
    assert found["visible"] == ["latentwalk.bands[1].value"], found
    assert found["selected_channels"] == ["latentwalk.bands[1].value"], found
    assert found["selected_keys"] == 0
    # Framed: the song's frames and the curve's values are in view, and fill most of it.
    first, last, low, high = found["view"]
    (song_first, song_last), (value_low, value_high) = found["frames"], found["values"]
    assert first <= song_first and last >= song_last and (song_last - song_first) >= 0.8 * (last - first), found
    assert low <= value_low and high >= value_high and (value_high - value_low) >= 0.6 * (high - low), found
    # No label cut at the Sequencer's or the Graph Editor's default sidebar width (scripts/cut_labels.py).
    line = next((l for l in log.splitlines() if l.startswith("CUT_LABELS ")), None)
    assert line is not None, log
    checked = json.loads(line[11:])
    assert {key.split(" at ")[0] for key in checked} >= {
        "LATENTWALK_PT_sequencer", "LATENTWALK_PT_sequencer_walk", "LATENTWALK_PT_sequencer_render",
        "LATENTWALK_PT_graph", "LATENTWALK_PT_graph_walk", "LATENTWALK_PT_graph_render",
        "LATENTWALK_UL_bands", "LATENTWALK_UL_classes"}, checked
    assert {key: cut for key, cut in checked.items() if cut} == {}
    from PIL import Image

    for name in UI_SHOTS:
        path = os.path.join(SCREENSHOTS, name)
        assert f"screenshot written: {path}" in log, log
        with Image.open(path) as image:
            assert image.size == (1600, 1000) or name == "graph_sidebar.png"
            assert sum(1 for count in image.convert("L").histogram() if count) > 50  # drawn, not blank


def test_bake_script_save_to_an_unwritable_place_is_one_line(song, tmp_path):
    command = [sys.executable, os.path.join(ROOT, "scripts", "bake.py"), "--", "--audio", song,
               "--save", "/proc/latentwalk/out.blend"]
    result = subprocess.run(command, capture_output=True, text=True, env=blender_env(), timeout=300)
    assert result.returncode == 1
    assert "error: cannot" in result.stderr and "Traceback" not in result.stderr


def test_headless_preview_renders_through_the_engine_python(song, tmp_path):
    from blender_latentwalk.engine.generators import biggan

    model = biggan.make_tiny_model(str(tmp_path / "biggan"))
    command = [BLENDER, "-b", "--factory-startup", "--python-exit-code", "1", "-P",
               os.path.join(ROOT, "scripts", "bake.py"), "--", "--audio", song, "--preview", "--biggan", model,
               "--preview-folder", str(tmp_path / "preview"), "--device", "cpu"]
    result = subprocess.run(command, capture_output=True, text=True, env=blender_env(), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "72 frames rendered, 0 kept" in result.stdout and "Latent Walk Preview" in result.stdout
    assert len([n for n in os.listdir(tmp_path / "preview") if n.endswith(".png")]) == 72


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    pytest.importorskip("diffusers")
    from blender_latentwalk.engine.generators import biggan
    from blender_latentwalk.engine.diffusion import img2img

    folder = tmp_path_factory.mktemp("models")
    return (biggan.make_tiny_model(str(folder / "biggan-tiny-UNTRAINED")),
            img2img.make_tiny_pipeline(str(folder / "sd-tiny-UNTRAINED")))


def test_literal_headless_render_command_leaves_frames_a_saved_file_and_a_video(tiny_models, tmp_path):
    import av
    from demo_song import synthesise_song

    song = str(tmp_path / "song.wav")
    synthesise_song(song, seconds=3.0)
    blend = str(tmp_path / "empty.blend")
    made = subprocess.run([BLENDER, "-b", "--factory-startup", "--python-expr",
                           f"import bpy; bpy.ops.wm.save_as_mainfile(filepath={blend!r})"],
                          capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    video = tmp_path / "out.mp4"
    command = [BLENDER, "-b", blend, "--python-exit-code", "1", "-P", os.path.join(ROOT, "scripts", "render.py"),
               "--", "--audio", song, "--output", str(tmp_path / "frames"), "--encode", str(video),
               "--biggan", tiny_models[0], "--sd", tiny_models[1], "--save", "--size", "64x48", "--device", "cpu"]
    result = subprocess.run(command, capture_output=True, text=True, env=blender_env(), timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Latent Walk: 72/72 frames" in result.stdout  # factory scenes run at 24 fps
    assert "Append frame" not in result.stdout and " Time: " not in result.stdout  # Blender's lines per frame
    assert not os.path.exists(str(video) + ".log")  # where they went; removed once the video is written
    assert len([n for n in os.listdir(tmp_path / "frames") if n.endswith(".png")]) == 72
    with av.open(str(video)) as container:
        streams = {s.type: s for s in container.streams}
        assert streams["video"].codec_context.name == "h264" and streams["audio"].codec_context.name == "aac"
        assert float(streams["video"].duration * streams["video"].time_base) == pytest.approx(3.0, abs=1 / 24)
        assert float(streams["audio"].duration * streams["audio"].time_base) == pytest.approx(3.0, abs=0.05)
    # --save wrote the bake and the strips into the file it opened.
    check = subprocess.run([BLENDER, "-b", blend, "--python-expr",
                            "import bpy; print('STRIPS', sorted((s.name, s.type, s.frame_final_start) "
                            "for s in bpy.context.scene.sequence_editor.sequences_all))"],
                           capture_output=True, text=True, timeout=120)
    line = next(l for l in check.stdout.splitlines() if l.startswith("STRIPS"))
    assert "('Latent Walk', 'IMAGE', 1)" in line and "'SOUND', 1)" in line

    bad = subprocess.run(command[:command.index("--") + 1] + ["--audio", song, "--output", str(tmp_path / "frames"),
                                                              "--frames", "70-80", "--sd", "none"],
                         capture_output=True, text=True, env=blender_env(), timeout=300)
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines()[-1].startswith("error: frames 70-80 are outside the frames to render, 1-72")


STATUS_BAR_PX = 30  # the bottom rows of a screenshot: Blender's status bar at 100% (22 pixels) and a margin


def keep_unless_changed_above_the_status_bar(new, committed):
    """Copy the screenshot ``new`` over ``committed`` unless they differ only in the status bar, whose
    numbers (frames done, frames/s, time left) follow the machine's speed: a rerun then changes no file."""
    from PIL import Image, ImageChops

    if os.path.exists(committed):
        with Image.open(new) as fresh, Image.open(committed) as old:
            if fresh.size == old.size:
                box = (0, 0, fresh.width, fresh.height - STATUS_BAR_PX)
                if ImageChops.difference(fresh.convert("RGB").crop(box), old.convert("RGB").crop(box)).getbbox() is None:
                    return
    shutil.copyfile(new, committed)


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb-run is not installed")
def test_modal_render_in_the_ui_shows_progress_cancels_on_esc_and_resumes(baked_blend, tiny_models, tmp_path):
    screenshot = str(tmp_path / "render_progress.png")
    after_render = os.path.join(SCREENSHOTS, "sequencer_render.png")
    os.makedirs(SCREENSHOTS, exist_ok=True)
    if os.path.exists(after_render):
        os.unlink(after_render)
    frames = os.path.join(os.path.dirname(baked_blend), "frames")  # beside the .blend: the strip shows //frames/
    command = ["xvfb-run", "-a", "-s", "-screen 0 1280x800x24", BLENDER, baked_blend, "--enable-event-simulate",
               "-P", os.path.join(ROOT, "tests", "app", "modal_render_ui.py"), "--", "--biggan", tiny_models[0],
               "--sd", tiny_models[1], "--out", frames, "--screenshot", screenshot,
               "--screenshot-sequencer", after_render]
    run = subprocess.run(command, capture_output=True, text=True, env=blender_env(), timeout=600)
    log = run.stdout + run.stderr
    results = results_of(log)
    assert "error" not in results and "Traceback" not in log, log[-4000:]
    assert results["invoked"] == ["RUNNING_MODAL"] and results["invoked_again"] == ["RUNNING_MODAL"]
    assert 6 <= results["cancelled_with"] < 72, log[-3000:]  # Esc stopped it; finished frames stayed
    assert "frames/s" in results["status"][0] and "left" in results["status"][0]
    assert results["finished_with"] == 72
    assert ["Latent Walk", "IMAGE", 2, 1, 72] in results["strips"]
    assert os.path.getsize(screenshot) > 0 and os.path.getsize(after_render) > 0
    keep_unless_changed_above_the_status_bar(screenshot, os.path.join(SCREENSHOTS, "render_progress.png"))
    assert results["cancel_clicked"] == ["FINISHED"]
    assert results["encode"] == ["RUNNING_MODAL"] and results["video"] is not None
    assert results["claims_while_encoding"] == [[[1, 72]]] and results["claims_after_encoding"] == []
    assert results["windows_while_encoding"] == 1  # no render window over the Sequencer
    assert "Latent Walk: Video written: " in log and " MB, 72 frames with the song)" in log
    assert results["settings_kept"], results["settings"]  # Encode Video put the artist's output settings back
    import av

    with av.open(results["video"]) as container:
        assert {s.type for s in container.streams} == {"video", "audio"}


def test_the_extension_zip_installs_as_a_legacy_add_on_through_preferences(song, tmp_path):
    """Blender 3.4.1: Preferences > Add-ons > Install (the operator), enable, bake."""
    build = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "build_extension.py"), "--out",
                            str(tmp_path / "dist")], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    package = build.stdout.strip().splitlines()[-1]
    script = tmp_path / "install.py"
    script.write_text("""
import json, sys, bpy
package, song = sys.argv[sys.argv.index("--") + 1:]
installed = bpy.ops.preferences.addon_install(filepath=package)
enabled = bpy.ops.preferences.addon_enable(module="blender_latentwalk")
import blender_latentwalk
scene = bpy.context.scene
scene.latentwalk.audio_path = song
baked = bpy.ops.latentwalk.bake()
print("RESULT " + json.dumps({"install": sorted(installed), "enable": sorted(enabled), "bake": sorted(baked),
                              "from": blender_latentwalk.__file__, "summary": scene.latentwalk.last_bake_summary}))
""")
    env = dict(blender_env(), BLENDER_USER_SCRIPTS=str(tmp_path / "scripts"))
    env.pop("PYTHONPATH")  # only the installed copy may be imported
    result = subprocess.run([BLENDER, "-b", "--factory-startup", "--python-exit-code", "1", "-P", str(script), "--",
                             package, song], capture_output=True, text=True, env=env, timeout=300,
                            cwd=str(tmp_path))
    line = next((l for l in result.stdout.splitlines() if l.startswith("RESULT ")), None)
    assert line is not None, result.stdout[-2000:] + result.stderr[-2000:]
    found = json.loads(line[7:])
    assert found["install"] == ["FINISHED"] and found["enable"] == ["FINISHED"] and found["bake"] == ["FINISHED"]
    assert found["from"].startswith(str(tmp_path / "scripts" / "addons" / "blender_latentwalk"))
    assert "25 curves" in found["summary"], found
