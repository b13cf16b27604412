"""The render from Blender: frames through the worker process, the sequencer, the video."""

import bpy
import numpy as np
import pytest

import engine_python as engine
from blender_latentwalk.blender import compat, render_job, sequencer, worker_client

from addon_helpers import FPS, pngs  # noqa: E402


def test_three_second_song_becomes_frames_strips_and_a_video_with_sound(baked, engine_python, tmp_path):
    scene = baked
    assert bpy.ops.latentwalk.render() == {"FINISHED"}
    frames = pngs(tmp_path / "frames")
    assert len(frames) == 3 * FPS and min(frames) == "frame_000001.png" and max(frames) == "frame_000072.png"
    assert engine.png_size(tmp_path / "frames" / "frame_000001.png") == (64, 48)
    image_strip = next(s for s in compat.all_strips(scene) if s.name == sequencer.FINAL_STRIP_NAME)
    sounds = [s for s in compat.all_strips(scene) if s.type == "SOUND"]
    assert image_strip.type == "IMAGE" and image_strip.frame_final_duration == 3 * FPS
    if bpy.app.build_options.audaspace:  # the bpy 4.2 wheel has no audio
        assert len(sounds) == 1 and sounds[0].frame_start == image_strip.frame_final_start == 1
        assert image_strip.channel > sounds[0].channel

    # Again: everything is reused and the strip is replaced, not duplicated.
    job = render_job.render_sync(scene)
    assert job.result.rendered == [] and len(job.result.reused) == 3 * FPS
    assert sum(s.name.startswith(sequencer.FINAL_STRIP_NAME) for s in compat.all_strips(scene)) == 1

    if not bpy.app.build_options.audaspace:  # the bpy 4.2 wheel: a video would be silent, so there is none
        with pytest.raises(RuntimeError, match="cannot play or encode sound"):
            bpy.ops.latentwalk.encode_video()
        assert not (tmp_path / "frames" / "latentwalk.mp4").exists()
        return
    assert bpy.ops.latentwalk.encode_video() == {"FINISHED"}
    video = tmp_path / "frames" / "latentwalk.mp4"
    streams = engine.video_streams(engine_python, video)
    assert streams["video"]["codec"] == "h264"
    assert streams["video"]["seconds"] == pytest.approx(3.0, abs=1.5 / FPS)
    assert (streams["video"]["width"], streams["video"]["height"]) == (64, 48)
    assert streams["audio"]["codec"] == "aac"
    assert streams["audio"]["seconds"] == pytest.approx(3.0, abs=0.05)
    assert (scene.frame_start, scene.frame_end) == (1, 72)


def test_cancelled_render_resumes_byte_identical_computing_only_the_missing_frames(baked, tmp_path):
    scene = baked
    whole = render_job.render_sync(scene)
    assert len(whole.result.rendered) == 72
    uninterrupted = pngs(tmp_path / "frames")

    scene.latentwalk.diffusion.output_folder = str(tmp_path / "resumed")
    job = render_job.RenderJob(scene)
    while not job.finished and job.done < 8:  # Esc once two batches are done
        job._handle(job.worker.events.get())
    job.cancel()
    job.wait()
    assert job.result.stopped
    first_part = job.result.rendered
    assert 8 <= len(first_part) < 72
    assert "cancelled" in job.finish(scene)
    with pytest.raises(RuntimeError, match=r"of 72 frames current \(\d+ missing\).*is missing"):
        bpy.ops.latentwalk.encode_video()

    again = render_job.render_sync(scene)
    assert again.result.reused == first_part
    assert sorted(again.result.rendered + first_part) == list(range(1, 73))
    assert pngs(tmp_path / "resumed") == uninterrupted
    scene.latentwalk.diffusion.strength = 0.8  # changed since the render: refused again
    with pytest.raises(RuntimeError, match=r"0 of 72 frames current \(72 stale\).*frame 1 is not rendered from"):
        bpy.ops.latentwalk.encode_video()
    scene.latentwalk.diffusion.strength = 0.5
    if bpy.app.build_options.audaspace:
        assert bpy.ops.latentwalk.encode_video() == {"FINISHED"}
    else:  # every frame is current again: only the missing sound stops it (the bpy 4.2 wheel)
        with pytest.raises(RuntimeError, match="cannot play or encode sound"):
            bpy.ops.latentwalk.encode_video()


def test_prompt_edits_rerender_only_what_they_change(baked, tmp_path):
    scene = baked
    render_job.render_sync(scene)
    scene.timeline_markers.new("prompt: a lake", frame=49)
    scene.latentwalk.diffusion.prompt_blend_ms = 0.0
    marker = render_job.render_sync(scene)
    assert marker.result.rendered == list(range(49, 73))
    scene.latentwalk.diffusion.prompt = "a forest"
    base = render_job.render_sync(scene)
    assert base.result.rendered == list(range(1, 49))
    # Strength keyed from 0.2 to 1.0: the frames follow the curve (0.2 is below one step).
    diffusion = scene.latentwalk.diffusion
    diffusion.strength = 0.2
    diffusion.keyframe_insert("strength", frame=1)
    diffusion.strength = 1.0
    diffusion.keyframe_insert("strength", frame=72)
    keyed = render_job.render_sync(scene)
    plan = keyed.plan
    assert plan.strength[0] == pytest.approx(0.2) and plan.strength[-1] == pytest.approx(1.0)
    assert np.all(np.diff(plan.strength) >= 0)


def test_release_models_ends_the_worker(baked):
    render_job.render_sync(baked, frames=(1, 4))
    assert worker_client.running()
    assert bpy.ops.latentwalk.release_models() == {"FINISHED"}
    assert not worker_client.running()


def test_frames_outside_the_song_and_unwritable_output_are_refused_without_loss(baked, tmp_path):
    scene = baked
    render_job.render_sync(scene, frames=(1, 8))
    before = pngs(tmp_path / "frames")
    with pytest.raises(Exception, match="outside the frames to render, 1-72"):
        render_job.RenderJob(scene, frames=(60, 90))
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    scene.latentwalk.diffusion.output_folder = str(blocker / "frames")
    with pytest.raises(Exception, match="cannot write frames to"):
        render_job.RenderJob(scene)
    scene.latentwalk.diffusion.output_folder = str(tmp_path / "frames")
    scene.latentwalk.diffusion.model = str(tmp_path / "no-such-model")
    with pytest.raises(Exception, match="does not exist|could not be loaded"):
        render_job.render_sync(scene)
    assert pngs(tmp_path / "frames") == before
    assert sequencer.find_sound_strip(scene, scene.latentwalk.audio_path) is not None or \
        not bpy.app.build_options.audaspace
