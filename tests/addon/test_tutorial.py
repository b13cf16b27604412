"""docs/tutorial.md, step by step, as the bpy calls its clicks make: song in, curves edited
(a Noise modifier, a cube following the bass through a driver, Strength following the kick
through a modulation), video out. If a step of the tutorial stops working, this test fails."""

import os

import bpy
import numpy as np
import pytest

import engine_python as engine
from blender_latentwalk.blender import compat, presets, sampling

from addon_helpers import FPS, pngs  # noqa: E402


def test_the_tutorial_from_song_to_video(baked, engine_python, tmp_path, capfd):
    scene = baked  # steps 1-2: the song chosen and baked (conftest.baked: the demo song, 3 s at 24 fps)
    settings = scene.latentwalk
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "tutorial.blend"))  # step 1.3: saved
    settings.diffusion.property_unset("output_folder")  # the default: next to the .blend
    frames = tmp_path / "latentwalk_frames" / "tutorial" / "Scene"
    titles = [band.title for band in settings.bands]
    bass, mids = titles.index("Bass"), titles.index("Mids")
    baked_mids = np.array([key.co.y for key in compat.find_fcurve(scene, f"latentwalk.bands[{mids}].value").keyframe_points])

    # Step 3: Graph Editor > Sidebar > Modifiers > Add Modifier > Noise, on the Mids curve.
    noise = compat.find_fcurve(scene, f"latentwalk.bands[{mids}].value").modifiers.new("NOISE")
    noise.scale, noise.strength = 4.0, 0.4

    # Step 4: a cube whose height follows the bass: Scale Z > Add Driver, a Single Property variable
    # "bass" reading the scene's latentwalk.bands[1].value, expression 1 + 2 * bass.
    cube = bpy.data.objects.new("Cube", bpy.data.meshes.new("Cube"))
    scene.collection.objects.link(cube)
    driver = cube.driver_add("scale", 2).driver
    driver.type = "SCRIPTED"
    variable = driver.variables.new()
    variable.name, variable.type = "bass", "SINGLE_PROP"
    variable.targets[0].id_type, variable.targets[0].id = "SCENE", scene
    variable.targets[0].data_path = f"latentwalk.bands[{bass}].value"
    driver.expression = "1 + 2 * bass"

    # Step 5: Render Presets > Turbo, then Render > Modulation > Add Modulation: Strength follows Bass, 0.4.
    tiny_pipeline = settings.diffusion.model
    turbo = os.path.join(presets.BUNDLED_FOLDER, "Turbo.py")
    assert bpy.ops.script.execute_preset(filepath=turbo, menu_idname="LATENTWALK_MT_render_presets") == {"FINISHED"}
    assert (settings.diffusion.strength, settings.diffusion.steps) == (0.5, 2)
    settings.diffusion.model, settings.diffusion.tiny_vae = tiny_pipeline, ""  # the stand-in: no sd-turbo here
    assert bpy.ops.latentwalk.modulation_add() == {"FINISHED"}
    modulation = settings.modulations[-1]
    modulation.target, modulation.curve_choice, modulation.amount = "strength", "band:Bass", 0.4

    plan = sampling.sample_plan(scene)
    assert np.abs(plan.bands[mids] - baked_mids).max() > 0.05  # the render sees the Noise modifier
    np.testing.assert_allclose(plan.strength, np.clip(0.5 + 0.4 * plan.bands[bass], 0, 1), atol=1e-6)
    assert (np.floor(plan.steps * plan.strength) >= 1).all()  # every frame gets at least one diffusion step
    heights = []
    for frame in range(scene.frame_start, scene.frame_end + 1):
        scene.frame_set(frame)
        heights.append(cube.matrix_world.to_scale()[2])
    np.testing.assert_allclose(heights, 1 + 2 * plan.bands[bass], atol=1e-5)  # the cube follows the bass
    assert np.ptp(heights) > 0.5  # visibly: the demo's bass is a held note under the kicks

    # Step 6: Render Frames, then Encode Video.
    assert bpy.ops.latentwalk.render() == {"FINISHED"}
    assert len(pngs(frames)) == 3 * FPS
    if bpy.app.build_options.audaspace:  # the bpy 4.2 wheel has no audio, so it refuses to encode
        assert bpy.ops.latentwalk.encode_video() == {"FINISHED"}
        streams = engine.video_streams(engine_python, frames / "tutorial.mp4")
        assert streams["video"]["seconds"] == pytest.approx(3.0, abs=1.5 / FPS)
        assert streams["audio"]["seconds"] == pytest.approx(3.0, abs=0.05)

    printed = capfd.readouterr()
    assert "Dependency cycle" not in printed.out + printed.err


def test_a_driver_on_strength_reading_a_band_is_the_cycle_modulation_avoids(scene, capfd):
    """Why the tutorial uses a modulation for Strength: the driver the README once suggested
    reads its own scene, and Blender reports a dependency cycle."""
    scene.latentwalk.ensure_default_bands()
    driver = scene.driver_add("latentwalk.diffusion.strength").driver
    variable = driver.variables.new()
    variable.type = "SINGLE_PROP"
    variable.targets[0].id_type, variable.targets[0].id = "SCENE", scene
    variable.targets[0].data_path = "latentwalk.bands[1].value"
    scene.frame_set(2)
    printed = capfd.readouterr()
    assert "Dependency cycle" in printed.out + printed.err


def test_step_1_song_the_browse_button_shows_sound_files_and_stores_a_blend_relative_path(scene, song, tmp_path):
    """Step 1.4: the folder button beside Song is Choose Song, whose file browser filters to sound files."""
    operator = bpy.ops.latentwalk.choose_song.get_rna_type().properties
    assert operator["filter_sound"].default and operator["filter_folder"].default  # what the file browser reads
    assert "filter_image" not in operator and "filter_movie" not in operator
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "song-choice.blend"))
    assert bpy.ops.latentwalk.choose_song(filepath=song) == {"FINISHED"}
    assert bpy.context.scene.latentwalk.audio_path == bpy.path.relpath(song)  # "//song.wav" beside the .blend
    missing = str(tmp_path / "nope.wav")
    with pytest.raises(RuntimeError, match="no song file at"):
        bpy.ops.latentwalk.choose_song(filepath=missing)
    assert bpy.context.scene.latentwalk.audio_path == bpy.path.relpath(song)  # kept
