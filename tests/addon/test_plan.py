"""Sampling the RenderPlan from Blender, and the BigGAN preview in the sequencer."""

import os

import bpy
import numpy as np
import pytest

import synth
from blender_latentwalk.blender import compat, render_job, sampling, sequencer


@pytest.fixture
def baked(scene, song):
    scene.latentwalk.audio_path = song
    assert bpy.ops.latentwalk.bake() == {"FINISHED"}
    scene.latentwalk.ensure_default_classes()
    return scene


def test_plan_sees_hand_edits_modifiers_and_drivers(baked):
    scene = baked
    bass = compat.find_fcurve(scene, "latentwalk.bands[1].value", 0)
    bass.keyframe_points[9].co.y = 0.9  # frame 10, moved by hand
    onset = compat.find_fcurve(scene, "latentwalk.onset", 0)
    generator = onset.modifiers.new("GENERATOR")
    generator.coefficients = (0.25, 0.0)  # replaces the curve with 0.25
    driver = scene.driver_add("latentwalk.walk.truncation").driver
    driver.type = "SCRIPTED"
    driver.expression = "0.2 + frame / 1000"
    scene.latentwalk.walk.pulse = 0.3
    scene.latentwalk.walk.keyframe_insert("pulse", frame=1)
    scene.latentwalk.walk.pulse = 0.9
    scene.latentwalk.walk.keyframe_insert("pulse", frame=101)

    plan = sampling.sample_plan(scene)

    assert plan.frame_start == 1 and plan.n_frames == 120
    assert plan.bands[1][9] == pytest.approx(0.9)
    np.testing.assert_allclose(plan.onset, 0.25, atol=1e-6)
    np.testing.assert_allclose(plan.truncation, 0.2 + np.arange(1, 121) / 1000, atol=1e-6)
    assert plan.pulse[0] == pytest.approx(0.3) and plan.pulse[100] == pytest.approx(0.9)
    assert 0.3 < plan.pulse[50] < 0.9
    assert scene.frame_current == 1  # the artist's frame is restored


def test_chroma_mode_needs_twelve_classes(baked):
    baked.latentwalk.walk.classes.remove(0)
    with pytest.raises(Exception, match="needs 12 classes"):
        sampling.sample_plan(baked)


def test_preview_renders_a_ten_second_song_into_the_sequencer(scene, use_engine_python, tmp_path):
    import engine_python as engine

    sample_rate = 22050
    t = np.arange(10 * sample_rate) / sample_rate
    signal = 0.3 * np.sin(2 * np.pi * 110 * t) * (1 + np.sin(2 * np.pi * t / 2)) / 2
    signal += synth.clicks(np.arange(0.5, 10, 0.5), sample_rate, 10.0, 0.5)
    song = synth.write(tmp_path / "ten.wav", signal.astype(np.float32), sample_rate)
    scene.render.fps = 24
    scene.latentwalk.audio_path = song
    assert bpy.ops.latentwalk.bake() == {"FINISHED"}
    walk_settings = scene.latentwalk.walk
    walk_settings.model = engine.make_tiny_biggan(use_engine_python, tmp_path / "tiny")
    walk_settings.preview_folder = str(tmp_path / "preview")
    walk_settings.preview_width = 64
    walk_settings.device = "cpu"
    scene.render.resolution_x, scene.render.resolution_y = 1920, 1080

    assert bpy.ops.latentwalk.preview() == {"FINISHED"}

    frames = sorted(n for n in os.listdir(tmp_path / "preview") if n.endswith(".png"))
    assert len(frames) == 240 and frames[0] == "frame_000001.png"
    assert engine.png_size(tmp_path / "preview" / frames[0]) == (64, 36)
    strip = next(s for s in compat.all_strips(scene) if s.name == sequencer.PREVIEW_STRIP_NAME)
    assert strip.type == "IMAGE" and strip.frame_final_start == 1 and strip.frame_final_duration == 240
    sound = [s for s in compat.all_strips(scene) if s.type == "SOUND"]
    if sound:
        assert strip.channel > sound[0].channel and sound[0].frame_start == strip.frame_final_start
    # Again: the strip is replaced, not duplicated.
    assert bpy.ops.latentwalk.preview() == {"FINISHED"}
    assert sum(s.name.startswith(sequencer.PREVIEW_STRIP_NAME) for s in compat.all_strips(scene)) == 1


def test_preview_folder_relative_to_an_unsaved_file_is_explained(baked):
    baked.latentwalk.walk.preview_folder = "//preview/"
    with pytest.raises(Exception, match="save the .blend"):
        render_job.RenderJob(baked, preview=True)


def test_class_picker_adds_by_imagenet_index(scene):
    walk_settings = scene.latentwalk.walk
    assert bpy.ops.latentwalk.class_add(class_id="980") == {"FINISHED"}
    assert [(c.index, c.name) for c in walk_settings.classes] == [(980, "volcano")]
    assert bpy.ops.latentwalk.classes_default() == {"FINISHED"}
    assert len(walk_settings.classes) == 12 and walk_settings.classes[0].name == "bubble"
    walk_settings.active_class_index = 0
    assert bpy.ops.latentwalk.class_remove() == {"FINISHED"}
    assert len(walk_settings.classes) == 11
