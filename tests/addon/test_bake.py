"""Baking into F-curves on the bpy wheel (5.0.1 in .venv, 4.2 LTS in .venv-bpy42)."""

import os
import sys

import bpy
import numpy as np
import pytest

from blender_latentwalk.blender import compat, curves
from blender_latentwalk.engine.analysis import pipeline
from blender_latentwalk.engine.analysis.bands import DEFAULT_BANDS


def bake(scene, **kwargs):
    return bpy.ops.latentwalk.bake(**kwargs)


def curve_values(scene, data_path, n_frames, first_frame=1):
    fcurve = compat.find_fcurve(scene, data_path, 0)
    return np.array([fcurve.evaluate(first_frame + k) for k in range(n_frames)])


def test_bake_writes_curves_that_evaluate_to_the_analysis(scene, song):
    scene.latentwalk.audio_path = song
    assert bake(scene) == {"FINISHED"}
    expected = pipeline.analyze(song, 30)
    assert expected.n_frames == 120 and scene.frame_end == 120
    for i, band in enumerate(DEFAULT_BANDS):
        got = curve_values(scene, f"latentwalk.bands[{i}].value", 120)
        np.testing.assert_allclose(got, expected.bands[i], atol=1e-6, err_msg=band.name)
    np.testing.assert_allclose(curve_values(scene, "latentwalk.onset", 120), expected.onset, atol=1e-6)
    np.testing.assert_allclose(curve_values(scene, "latentwalk.rms", 120), expected.rms, atol=1e-6)
    for pitch in range(12):
        got = curve_values(scene, f"latentwalk.chroma[{pitch}].value", 120)
        np.testing.assert_allclose(got, expected.chroma[:, pitch], atol=1e-6)
    # The property itself follows the curve as the frame changes.
    peak = int(np.argmax(expected.onset))
    scene.frame_set(1 + peak)
    assert scene.latentwalk.onset == pytest.approx(expected.onset[peak], abs=1e-6)


def test_curves_are_grouped_and_named_for_the_graph_editor(scene, song):
    scene.latentwalk.audio_path = song
    bake(scene)
    fcurves = list(compat.fcurves_of(scene))
    assert len(fcurves) == len(DEFAULT_BANDS) + 2 + 4 + 12  # bands, onset and loudness, beat bar section drop, chroma
    assert {fc.group.name for fc in fcurves} == {"Latent Walk"}
    assert scene.latentwalk.bands[1].name == "Bass (60-250 Hz)"
    assert [p.name for p in scene.latentwalk.chroma][:3] == ["C", "C#", "D"]
    # A key per frame; the Section curve holds its value: a key per section (one: no structure in this song)
    assert all(len(fc.keyframe_points) == (1 if fc.data_path == "latentwalk.section" else 120) for fc in fcurves)


def test_song_goes_into_the_sequencer_once(scene, song):
    scene.latentwalk.audio_path = song
    bake(scene)
    bake(scene, overwrite_edited=True)
    sounds = [s for s in compat.all_strips(scene) if s.type == "SOUND"]
    if not sounds and "no audio" in scene.latentwalk.last_bake_summary:
        pytest.skip("this bpy build has no audio (Audaspace)")
    assert len(sounds) == 1 and sounds[0].frame_start == 1
    assert os.path.samefile(bpy.path.abspath(sounds[0].sound.filepath), song)


def test_rebake_keeps_hand_edits_unless_told_and_locks_always(scene, song):
    settings = scene.latentwalk
    settings.audio_path = song
    bake(scene)
    onset = compat.find_fcurve(scene, "latentwalk.onset", 0)
    onset.keyframe_points[5].co.y = 0.42
    bass = compat.find_fcurve(scene, "latentwalk.bands[1].value", 0)
    bass.modifiers.new("NOISE")
    settings.bands[3].locked = True
    mids = compat.find_fcurve(scene, "latentwalk.bands[3].value", 0)
    mids.keyframe_points[7].co.y = 0.99
    settings.bands[0].gain = 0.5  # changes the Sub curve on the next bake

    bake(scene)  # edits are kept
    assert onset.keyframe_points[5].co.y == pytest.approx(0.42)
    assert len(bass.modifiers) == 1
    assert mids.keyframe_points[7].co.y == pytest.approx(0.99)
    sub = curve_values(scene, "latentwalk.bands[0].value", 120)
    assert sub.max() <= 0.5 + 1e-6  # unedited curves were re-baked with the new gain

    bake(scene, overwrite_edited=True)  # edits replaced, the locked band still kept
    expected = pipeline.analyze(song, 30)
    assert onset.keyframe_points[5].co.y == pytest.approx(expected.onset[5], abs=1e-6)
    assert mids.keyframe_points[7].co.y == pytest.approx(0.99)


def test_curve_keyed_by_hand_before_any_bake_is_kept(scene, song):
    settings = scene.latentwalk
    settings.audio_path = song
    settings.onset = 0.3
    scene.keyframe_insert("latentwalk.onset", frame=10)
    bake(scene)
    onset = compat.find_fcurve(scene, "latentwalk.onset", 0)
    assert len(onset.keyframe_points) == 1 and onset.keyframe_points[0].co.y == pytest.approx(0.3)


def test_removing_a_band_keeps_the_others_on_their_curves(scene, song):
    settings = scene.latentwalk
    settings.audio_path = song
    bake(scene)
    before = {i: curve_values(scene, f"latentwalk.bands[{i}].value", 120) for i in range(len(settings.bands))}
    settings.active_band_index = 2
    assert bpy.ops.latentwalk.band_remove() == {"FINISHED"}
    assert [b.title for b in settings.bands] == [b.name for b in DEFAULT_BANDS if b.name != "Low Mids"]
    np.testing.assert_array_equal(curve_values(scene, "latentwalk.bands[2].value", 120), before[3])
    np.testing.assert_array_equal(curve_values(scene, "latentwalk.bands[5].value", 120), before[6])
    assert compat.find_fcurve(scene, "latentwalk.bands[6].value", 0) is None
    assert bake(scene) == {"FINISHED"}
    assert not curves.edited_targets(scene, curves.targets_for(settings, pipeline.analyze(
        song, 30, bands=[b.as_band() for b in settings.bands])))


def test_beat_markers_on_request(scene, song):
    scene.latentwalk.audio_path = song
    scene.latentwalk.add_beat_markers = True
    bake(scene)
    beats = sorted(m.frame for m in scene.timeline_markers if m.name == "beat")
    assert len(beats) >= 4
    bake(scene, overwrite_edited=True)
    assert sorted(m.frame for m in scene.timeline_markers if m.name == "beat") == beats


def test_engine_in_another_python_gives_the_same_curves(scene, song, monkeypatch):
    scene.latentwalk.audio_path = song
    bake(scene)
    scene.latentwalk.bands[1].gain = 0.5
    bake(scene, overwrite_edited=True)
    in_process = curve_values(scene, "latentwalk.bands[1].value", 120)
    monkeypatch.setenv("LATENTWALK_ENGINE_PYTHON", sys.executable)
    scene.latentwalk.bands[1].gain = 0.25
    bake(scene)
    worker = curve_values(scene, "latentwalk.bands[1].value", 120)
    assert worker.max() <= 0.25 + 1e-6
    scene.latentwalk.bands[1].gain = 0.5
    bake(scene)
    np.testing.assert_allclose(curve_values(scene, "latentwalk.bands[1].value", 120), in_process, atol=1e-6)


def test_show_curves_needs_a_bake(scene):
    assert bpy.ops.latentwalk.show_curves() == {"CANCELLED"}


def test_register_unregister_cycle(addon):
    addon.unregister()
    assert not hasattr(bpy.types.Scene, "latentwalk")
    addon.register()
    assert hasattr(bpy.types.Scene, "latentwalk") and hasattr(bpy.ops.latentwalk, "bake")


def test_song_path_relative_to_the_blend_file(scene, song, tmp_path):
    import shutil
    import warnings

    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "project.blend"))
    shutil.copy(song, tmp_path / "relative.wav")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Blender 5 warns when a property refuses "//"
        scene.latentwalk.audio_path = "//relative.wav"
    assert scene.latentwalk.audio_path == "//relative.wav"
    assert bake(scene) == {"FINISHED"}
    assert "120 frames" in scene.latentwalk.last_bake_summary


def test_overwrite_choice_is_never_remembered():
    assert bpy.ops.latentwalk.bake.get_rna_type().properties["overwrite_edited"].is_skip_save


@pytest.mark.parametrize("python,expected", [("/bin/true", "finished without writing features"),
                                             ("/etc/hostname", "cannot be run|could not be started")])
def test_a_broken_engine_python_is_explained(scene, song, monkeypatch, python, expected):
    scene.latentwalk.audio_path = song
    monkeypatch.setenv("LATENTWALK_ENGINE_PYTHON", python)
    with pytest.raises(RuntimeError, match=expected):
        bake(scene)


def test_engine_python_typed_as_the_readme_shows_it_is_found(monkeypatch, tmp_path):
    import os

    from blender_latentwalk.blender import engine_client

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    monkeypatch.delenv(engine_client.ENV_ENGINE_PYTHON, raising=False)
    monkeypatch.chdir(tmp_path)  # Blender started from anywhere
    assert engine_client.engine_python(".venv/bin/python") == os.path.join(root, ".venv", "bin", "python")
    assert engine_client.engine_python("elsewhere/python") == str(tmp_path / "elsewhere" / "python")
    assert engine_client.engine_python("") == ""
