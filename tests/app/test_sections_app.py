"""The song's structure in Debian's Blender 3.4.1 under Xvfb (tests/app/sections_ui.py): a song with a form (A B A C
and a drop, scripts/songs_with_form.py) baked in the Video Editing workspace; its section and drop markers in
the Timeline, the Sequencer and the Graph Editor (a drop marker wherever the Drop curve peaks); a section look's prompt; Render Frames with the BigGAN and img2img
stand-ins, whose plan switches prompt on that section's marker; a moved marker kept by a re-bake; Snap Markers to
Bars. Its screenshot is docs/screenshots/sections.png. Fails on any traceback in the log or in the reports the UI
showed. Skipped where no `blender` or `xvfb-run` is on PATH."""

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
SHOTS = ("sections.png",)
SIDEBARS = ("297 px", "229 px")  # the Sequencer's and the Graph Editor's sidebars at their default widths


def test_section_markers_looks_and_a_prompt_switch_in_the_ui(tmp_path):
    pytest.importorskip("diffusers")
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    from songs_with_form import form_song

    song, _truth = form_song(tmp_path / "song.wav")
    env = dict(os.environ, LATENTWALK_ENGINE_PYTHON=sys.executable, PYTHONPATH=ROOT,
               BLENDER_USER_DATAFILES=str(tmp_path / "user-data"), BLENDER_USER_CONFIG=str(tmp_path / "config"))
    command = ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", BLENDER, "--factory-startup",
               "--enable-event-simulate", "--python-exit-code", "1",
               "-P", os.path.join(ROOT, "tests", "app", "sections_ui.py"), "--",
               "--song", song, "--blend", str(tmp_path / "sections.blend"), "--shots", str(tmp_path / "shots")]
    run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900, cwd=str(tmp_path))
    log = run.stdout + run.stderr
    found = checked_walk(log)

    # The bake placed a marker per section start (the first on the song's first frame) and per drop.
    assert found["bake"] == ["RUNNING_MODAL"] and "section(s)" in found["baked"], found["baked"]
    markers = found["markers"]
    sections = [name for _frame, name in markers if name.startswith("section: ")]
    assert markers[0] == [1, "section: A"] and len(set(sections)) >= 2, markers
    # A drop marker on each drop the analysis found: where the Drop curve peaks (the form song has one at C).
    assert [frame for frame, name in markers if name == "drop"] == found["drop_peaks"], markers
    assert found["looks"] == sorted({name[len("section: "):] for name in sections}), found["looks"]
    # ... and they are drawn: every editor shows markers, over a view that spans them.
    for editor in ("timeline", "sequencer", "graph"):
        assert found[editor] == {"show_markers": True, "in_view": True}, (editor, found[editor])
    assert sorted(found["graph_curves"]) == ["latentwalk.bar", "latentwalk.drop", "latentwalk.section"]
    assert found["section_interpolation"] == ["CONSTANT"]
    section_starts = [frame for frame, name in markers if name.startswith("section: ")]
    assert [frame for frame, _value in found["section_keys"]] == section_starts
    # The look's prompt takes over on the frame of its section's marker (Prompt Blend 0), the base before it.
    switch = found["switch_frame"]
    assert found["render"] == ["RUNNING_MODAL"] and found["frames_written"] == 8
    assert found["plan_prompts"] == ["a volcano", "a forest at dawn"], found["plan_prompts"]
    assert found["first_look_frame"] == switch and found["look_weight_around_switch"] == [0.0, 1.0]
    assert found["frames_status"] == "8 of 8 frames current"
    # A marker moved by hand survives the re-bake (its dialog confirmed as it opened: keep), and the report says so.
    assert found["rebake"] == ["RUNNING_MODAL"]
    assert found["moved_to"] in [frame for frame, _name in found["markers_after_rebake"]]
    assert "kept the section and drop markers as you changed them" in found["REPORTS"]
    # Snap Markers to Bars moves the selected prompt marker onto the bar line, and only it.
    assert found["snap"] == ["FINISHED"] and found["city_snapped_to"] == found["bar_near_city"]
    assert found["moved_after_snap"] == found["moved_to"]
    assert "Latent Walk: moved 1 of 1 selected marker(s) to the nearest bar" in log  # a click's report, printed
    # No label cut in the Sections panel, in either sidebar it drew in.
    labels = {key: cut for key, cut in found["CUT_LABELS"].items() if "_sections " in key}
    assert any(SIDEBARS[0] in key for key in labels), found["CUT_LABELS"].keys()
    assert {key: cut for key, cut in labels.items() if cut} == {}
    os.makedirs(SCREENSHOTS, exist_ok=True)
    for name in SHOTS:
        path = tmp_path / "shots" / name
        assert path.is_file() and path.stat().st_size > 10_000, name
        shutil.copyfile(path, os.path.join(SCREENSHOTS, name))
