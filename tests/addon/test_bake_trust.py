"""Trust in the bake (issue 9), as an artist meets it: bake, edit, change, re-bake or render."""

import os

import bpy
import numpy as np
import pytest

import bake_scenarios
import synth
from blender_latentwalk.blender import bake_state, compat, curves, operators, render_job, sequencer
from blender_latentwalk.engine.analysis import pipeline


def test_a_new_fps_is_refused_until_a_rebake_that_retimes_the_edits(scene, song):
    bake_scenarios.fps_change_is_refused_until_a_rebake_that_retimes_edits(scene, song)


def test_bands_keep_their_animation_and_drivers_when_removed_moved_or_added(scene, song):
    bake_scenarios.removing_and_moving_bands_keeps_animation_and_drivers_on_their_band(scene, song)


def other_song(tmp_path, seconds, name="other.wav"):
    sample_rate = 44100
    signal = synth.clicks(np.arange(0.25, seconds, 0.5), sample_rate, seconds, amplitude=0.6)
    signal += synth.tone(220, sample_rate, seconds, 0.3)
    return synth.write(tmp_path / name, signal, sample_rate)


def has_audio(scene):
    return "no audio" not in scene.latentwalk.last_bake_summary


def test_moving_the_song_strip_or_changing_the_song_is_refused_until_a_rebake(scene, song, tmp_path):
    settings = scene.latentwalk
    settings.audio_path = song
    bpy.ops.latentwalk.bake()
    if has_audio(scene):  # the bpy 4.2 wheel has no audio, so no strip to move
        strip = next(s for s in compat.all_strips(scene) if s.type == "SOUND")
        strip.frame_start = 11
        assert bake_state.changes(scene) == ["the song strip now starts at frame 11, the curves were baked from "
                                             "frame 1"]
        with pytest.raises(Exception, match="starts at frame 11"):
            render_job.RenderJob(scene, preview=True)
        bpy.ops.latentwalk.bake()
        assert bake_state.changes(scene) == []
        assert compat.find_fcurve(scene, "latentwalk.onset", 0).keyframe_points[0].co.x == 11
    settings.audio_path = other_song(tmp_path, 4.0)
    assert bake_state.changes(scene)[0] == "the Song is now other.wav, the curves were baked from song.wav"
    with pytest.raises(Exception, match="other.wav"):
        render_job.RenderJob(scene)
    bpy.ops.latentwalk.bake()
    assert bake_state.changes(scene) == []


def test_encode_refuses_a_bake_made_at_another_fps(scene, song, tmp_path):
    settings = scene.latentwalk
    settings.audio_path = song
    bpy.ops.latentwalk.bake()
    settings.diffusion.output_folder = str(tmp_path)
    frame = tmp_path / "frame_000001.png"
    frame.write_bytes(b"")
    compat.new_image_strip(scene, sequencer.FINAL_STRIP_NAME, str(frame), 5, 1)  # as if rendered
    scene.render.fps = 25
    with pytest.raises(RuntimeError, match="the scene is now 25 fps, the curves were baked at 30 fps"):
        bpy.ops.latentwalk.encode_video()


def test_headless_rebake_reports_the_edited_curves_it_kept_and_retimed(scene, song):
    settings = scene.latentwalk
    settings.audio_path = song
    assert operators.bake_if_stale(scene, song)[0] == "baking: nothing is baked yet"
    assert operators.bake_if_stale(scene, song) == []  # current: nothing to do
    compat.find_fcurve(scene, "latentwalk.onset", 0).keyframe_points[30].co.y = 1.0
    compat.find_fcurve(scene, "latentwalk.rms", 0).modifiers.new("GENERATOR")
    driver = scene.driver_add("latentwalk.walk.pulse").driver
    driver.type, driver.expression = "SCRIPTED", "frame / 100"
    scene.render.fps = 60
    lines = operators.bake_if_stale(scene, song)
    assert lines[0] == "baking: the scene is now 60 fps, the curves were baked at 30 fps"
    assert "kept 2 curve(s) edited by hand: Onset, Loudness" in lines
    assert any(line.startswith("retimed to the new timing: ") and "Onset" in line for line in lines)
    assert any("Loudness" in line and "Generator modifier" in line and line.startswith("not retimed") for line in lines)
    assert "not retimed: the driver on Pulse uses the frame number (frame / 100): left as it is" in lines
    assert compat.find_fcurve(scene, "latentwalk.onset", 0).keyframe_points[30].co.x == pytest.approx(61.0)


def test_overwrite_replaces_the_artists_modifiers_with_the_keys_and_the_dialog_names_them(scene, song):
    settings = scene.latentwalk
    settings.audio_path = song
    bpy.ops.latentwalk.bake()
    bass = compat.find_fcurve(scene, "latentwalk.bands[1].value", 0)
    bass.modifiers.new("NOISE")
    edited = curves.edited_targets(scene, curves.targets_for(settings))
    assert [operators.edited_description(scene, t) for t in edited] == ["Bass (60-250 Hz): keys, Noise modifier"]
    bpy.ops.latentwalk.bake(overwrite_edited=True)
    bass = compat.find_fcurve(scene, "latentwalk.bands[1].value", 0)
    assert len(bass.modifiers) == 0
    expected = pipeline.analyze(song, 30).bands[1]
    np.testing.assert_allclose([bass.evaluate(1 + k) for k in range(120)], expected, atol=1e-6)
    bass.modifiers.new("NOISE")  # a new edit after the overwrite is an edit again
    assert [t.label for t in curves.edited_targets(scene, curves.targets_for(settings))] == ["Bass (60-250 Hz)"]


def test_rebake_keeps_the_artists_frame_range_and_fits_a_new_song(scene, song, tmp_path):
    settings = scene.latentwalk
    settings.audio_path = song
    scene.frame_end = 250
    bpy.ops.latentwalk.bake()
    assert scene.frame_end == 120  # first bake: fitted to the song
    bpy.ops.latentwalk.bake()
    assert scene.frame_end == 120
    scene.frame_end = 60  # the artist renders the first two seconds
    settings.bands[0].gain = 0.5
    bpy.ops.latentwalk.bake()
    assert (scene.frame_start, scene.frame_end) == (1, 60)
    scene.render.fps = 60  # at double the rate the same two seconds are frames 1-120
    bpy.ops.latentwalk.bake()
    assert (scene.frame_start, scene.frame_end) == (1, 120)
    settings.audio_path = other_song(tmp_path, 6.0)
    bpy.ops.latentwalk.bake()
    assert scene.frame_end == 360  # a new song: fitted again (6 s at 60 fps)


def test_a_failed_bake_changes_nothing(scene, song, tmp_path):
    settings = scene.latentwalk
    settings.audio_path = str(tmp_path / "missing.wav")
    scene.frame_end = 77
    with pytest.raises(RuntimeError, match="missing.wav"):
        bpy.ops.latentwalk.bake()
    assert len(settings.bands) == 0 and len(settings.chroma) == 0
    assert compat.fcurves_of(scene) is None and not compat.all_strips(scene) and scene.frame_end == 77

    settings.audio_path = song
    bpy.ops.latentwalk.bake()
    before = {fc.data_path: [tuple(p.co) for p in fc.keyframe_points] for fc in compat.fcurves_of(scene)}
    record = (settings.baked_timing, settings.baked_fingerprints, settings.last_bake_summary, scene.frame_end)
    (tmp_path / "broken.wav").write_bytes(b"RIFF....WAVEnot really")
    settings.audio_path = str(tmp_path / "broken.wav")
    scene.render.fps = 24
    with pytest.raises(RuntimeError, match="broken.wav"):
        bpy.ops.latentwalk.bake()
    after = {fc.data_path: [tuple(p.co) for p in fc.keyframe_points] for fc in compat.fcurves_of(scene)}
    assert after == before
    assert (settings.baked_timing, settings.baked_fingerprints, settings.last_bake_summary, scene.frame_end) == record


def test_swapping_the_song_for_a_longer_one_lengthens_the_strip_and_the_range(scene, song, tmp_path):
    settings = scene.latentwalk
    settings.audio_path = song
    bpy.ops.latentwalk.bake()
    assert scene.frame_end == 120
    if has_audio(scene):
        strip = next(s for s in compat.all_strips(scene) if s.type == "SOUND")
        strip.channel, strip.volume = 3, 0.5  # where and how the artist wants the song
    settings.audio_path = other_song(tmp_path, 7.0)
    bpy.ops.latentwalk.bake()
    assert scene.frame_end == 210
    if has_audio(scene):
        sounds = [s for s in compat.all_strips(scene) if s.type == "SOUND"]
        assert len(sounds) == 1 and sounds[0].frame_final_duration == 210
        assert (sounds[0].channel, sounds[0].volume, sounds[0].frame_start) == (3, 0.5, 1)
        assert os.path.basename(sounds[0].sound.filepath) == "other.wav"


def test_a_project_folder_moved_elsewhere_is_still_current_and_a_swapped_strip_is_not(scene, song, tmp_path):
    import shutil

    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(song, project / "song.wav")
    bpy.ops.wm.save_as_mainfile(filepath=str(project / "video.blend"))
    settings = scene.latentwalk
    settings.audio_path = "//song.wav"
    bpy.ops.latentwalk.bake()
    bpy.ops.wm.save_mainfile()
    moved = tmp_path / "elsewhere" / "project"
    shutil.copytree(project, moved)
    shutil.rmtree(project)
    bpy.ops.wm.open_mainfile(filepath=str(moved / "video.blend"))
    scene = bpy.context.scene
    assert bake_state.changes(scene) == []  # the same song, beside the same .blend
    if "no audio" in scene.latentwalk.last_bake_summary:
        return
    strip = next(s for s in compat.all_strips(scene) if s.type == "SOUND")
    strip.sound = bpy.data.sounds.load(other_song(tmp_path, 4.0))  # the artist swaps the strip's file
    assert bake_state.changes(scene) == ["the song strip 'song' now plays other.wav, not the Song song.wav"]


def test_prompt_markers_keep_their_time_in_the_song_when_the_fps_changes(scene, song):
    settings = scene.latentwalk
    settings.audio_path = song
    bpy.ops.latentwalk.bake()
    scene.timeline_markers.new("prompt: a volcano", frame=61)  # 2.0 s at 30 fps
    scene.timeline_markers.new("camera cut", frame=61)  # not ours: stays
    scene.render.fps = 24
    bpy.ops.latentwalk.bake()
    frames = {m.name: m.frame for m in scene.timeline_markers}
    # The bake's own section marker (one section: the song's start) is placed anew at the new rate.
    assert frames == {"prompt: a volcano": 49, "camera cut": 61, "section: A": 1}


def test_retimed_modifiers_give_the_same_curve_in_seconds(scene, song):
    # A kept curve with time-based modifiers evaluates, at each moment of the song, to what it did before.
    settings = scene.latentwalk
    scene.render.fps = 24
    settings.audio_path = song
    bpy.ops.latentwalk.bake()
    onset = compat.find_fcurve(scene, "latentwalk.onset", 0)
    wave = onset.modifiers.new("FNGENERATOR")
    wave.function_type, wave.use_additive, wave.phase_multiplier, wave.phase_offset = "SIN", True, 0.3, 0.5
    if "use_legacy_noise" in bpy.types.FModifierNoise.bl_rna.properties:
        noise = onset.modifiers.new("NOISE")  # 4.4+ noise: exactly retimable
        noise.scale, noise.strength, noise.offset, noise.use_legacy_noise = 5.0, 0.5, 3.0, False
    steps = onset.modifiers.new("STEPPED")
    steps.frame_step, steps.frame_offset = 3.0, 1.0
    window = onset.modifiers.new("ENVELOPE")
    window.use_restricted_range, window.frame_start, window.frame_end = True, 20.0, 70.0
    window.blend_in = window.blend_out = 4.0
    for frame, low, high in ((30, -0.5, 0.5), (60, 0.2, 1.5)):
        point = window.control_points.add(frame)
        point.min, point.max = low, high
    seconds = np.linspace(0.05, 3.9, 60)
    before = [onset.evaluate(1 + 24 * t) for t in seconds]

    scene.render.fps, scene.render.fps_base = 30, 1.001
    result = operators.bake(scene)
    rate = 30 / 1.001
    onset = compat.find_fcurve(scene, "latentwalk.onset", 0)
    assert "Onset" in result.retimed and not result.not_retimed
    after = [onset.evaluate(1 + rate * t) for t in seconds]
    np.testing.assert_allclose(after, before, atol=2e-4)


def test_legacy_noise_is_retimed_in_speed_and_named_as_not_exact(scene, song):
    settings = scene.latentwalk
    settings.audio_path = song
    bpy.ops.latentwalk.bake()
    noise = compat.find_fcurve(scene, "latentwalk.rms", 0).modifiers.new("NOISE")
    noise.scale = 6.0
    if hasattr(noise, "use_legacy_noise"):
        noise.use_legacy_noise = True  # as in files from before Blender 4.4
    scene.render.fps = 60
    result = operators.bake(scene)
    assert compat.find_fcurve(scene, "latentwalk.rms", 0).modifiers[0].scale == pytest.approx(12.0)
    assert result.not_retimed == ["Loudness: its Noise modifier (Blender's legacy noise) keeps its speed in seconds "
                                  "but not its exact pattern"]


def test_keys_pushed_down_to_the_nla_stay_on_their_band_when_a_band_is_removed(scene, song):
    settings = scene.latentwalk
    settings.audio_path = song
    bpy.ops.latentwalk.bake()
    # The artist keys Bass Weight, then pushes the action down into an NLA strip.
    settings.bands[1].weight = 2.5
    scene.keyframe_insert("latentwalk.bands[1].weight", frame=1)
    animation = scene.animation_data
    animation.nla_tracks.new().strips.new("weights", 1, animation.action)
    animation.action = None
    settings.active_band_index = 0
    assert bpy.ops.latentwalk.band_remove() == {"FINISHED"}  # Sub
    scene.frame_set(5)
    assert [(b.title, round(b.weight, 3)) for b in settings.bands][:3] == [("Bass", 2.5), ("Low Mids", 1.0),
                                                                            ("Mids", 1.0)]
