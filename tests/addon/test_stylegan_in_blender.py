"""A StyleGAN model file in the add-on: picked, its own settings sampled (psi, seeds, space, noise, input
transform, as curves a modulation can follow), rendered through the worker into frames and a strip, chunked
and resumed like BigGAN's frames."""

import bpy
import numpy as np

import engine_python as engine
from blender_latentwalk.blender import compat, render_job, sampling, sequencer

from addon_helpers import FPS, pngs  # noqa: E402


def tiny_stylegan(engine_python, folder):
    """{kind: path} of the StyleGAN stand-ins, written by the worker's Python as make-tiny-models does."""
    import json

    code = ("import sys, json; from blender_latentwalk.engine.generators import stylegan; "
            "print(json.dumps(stylegan.make_tiny_models(sys.argv[1])))")
    return json.loads(engine.run(engine_python, code, str(folder)))


def test_a_stylegan3_file_walks_turns_and_renders_like_biggan(baked, engine_python, tmp_path):
    scene = baked
    files = tiny_stylegan(engine_python, tmp_path / "stylegan")
    assert bpy.ops.latentwalk.choose_model_file(filepath=files["stylegan3-t"], relative_path=False) == {"FINISHED"}
    walk = scene.latentwalk.walk
    walk.palette_seeds = "3,14,15,92"
    walk.truncation = 0.7
    walk.rotation_deg = 10.0
    walk.keyframe_insert("rotation_deg", frame=1)
    walk.rotation_deg = 80.0
    walk.keyframe_insert("rotation_deg", frame=72)
    turn = scene.latentwalk.modulations.add()
    turn.target, turn.curve, turn.amount = "translate_x", "onset", 0.2
    plan = sampling.sample_plan(scene)
    assert plan.settings["palette_seeds"] == [3, 14, 15, 92] and plan.settings["latent_space"] == "w"
    assert plan.rotation_deg[0] == 10.0 and plan.rotation_deg[-1] == 80.0  # the animation, sampled per frame
    assert np.allclose(plan.translate_x, 0.2 * plan.onset, atol=1e-6) and plan.translate_x.max() > 0

    assert bpy.ops.latentwalk.render() == {"FINISHED"}
    frames = pngs(tmp_path / "frames")
    assert len(frames) == 3 * FPS and engine.png_size(tmp_path / "frames" / "frame_000001.png") == (64, 48)
    strip = next(s for s in compat.all_strips(scene) if s.name == sequencer.FINAL_STRIP_NAME)
    assert strip.frame_final_duration == 3 * FPS

    # A chunk rendered elsewhere and a resume give the same bytes as the whole render.
    scene.latentwalk.diffusion.output_folder = str(tmp_path / "chunked")
    for first, last in ((30, 72), (1, 29)):
        render_job.render_sync(scene, frames=(first, last), place=False)
    assert pngs(tmp_path / "chunked") == frames


def test_stylegan_settings_are_checked_with_actionable_messages(baked, engine_python, tmp_path):
    import pytest

    from blender_latentwalk.engine.errors import LatentWalkError

    scene = baked
    files = tiny_stylegan(engine_python, tmp_path / "stylegan")
    walk = scene.latentwalk.walk
    walk.model = files["stylegan2"]
    walk.palette_seeds = "3, x"
    with pytest.raises(LatentWalkError, match="Seeds: 'x' in '3, x' is not a seed"):
        sampling.sample_plan(scene)
    walk.palette_seeds = "0-15"
    with pytest.raises(LatentWalkError, match="up to 12 seeds"):
        sampling.sample_plan(scene)
    walk.class_mode = "bands"
    assert sampling.sample_plan(scene).settings["palette_seeds"] == list(range(16))
    with pytest.raises(RuntimeError, match="'song.wav' is not a .pkl, .pt or .pth file"):
        bpy.ops.latentwalk.choose_model_file(filepath=str(tmp_path / "song.wav"))
    assert walk.model == files["stylegan2"]
