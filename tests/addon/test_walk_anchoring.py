"""A frame's pixels depend on the song and the settings at its time, not on where the scene, a chunk or
a headless range starts: every plan begins at the song's first frame (sampling.plan_range)."""

import bpy
import pytest

from blender_latentwalk.blender import render_job, sampling

from addon_helpers import pngs  # noqa: E402


def _frames(folder, first, last):
    return {name: (folder / name).read_bytes() for name in pngs(folder)
            if first <= int(name[len("frame_"):-len(".png")]) <= last}


@pytest.mark.parametrize("walk", ["displacement", "travel", "jitter"])
def test_frames_31_to_40_are_the_same_bytes_whether_the_scene_starts_at_1_or_at_21(baked, tmp_path, walk):
    scene = baked
    settings = scene.latentwalk
    settings.walk.mode = "travel" if walk == "travel" else "displacement"
    settings.walk.jitter = 0.3 if walk == "jitter" else 0.0
    settings.walk.class_smoothing_ms = 800.0  # history that a plan starting at 21 would have begun afresh

    scene.frame_start = 1  # a chunk, as a farm task or `--frames 31-40` renders it
    settings.diffusion.output_folder = str(tmp_path / "chunk")
    chunk = render_job.render_sync(scene, frames=[[31, 40]])
    assert chunk.result.rendered == list(range(31, 41))

    scene.frame_start = 21  # the whole scene, which now starts later than the song
    assert sampling.render_range(scene) == (21, 72) and sampling.plan_range(scene) == (1, 72)
    settings.diffusion.output_folder = str(tmp_path / "from_21")
    whole = render_job.render_sync(scene)
    assert whole.result.rendered == list(range(21, 73))
    assert min(pngs(tmp_path / "from_21")) == "frame_000021.png"  # nothing before the scene's start

    assert _frames(tmp_path / "chunk", 31, 40) == _frames(tmp_path / "from_21", 31, 40)


def test_a_range_before_the_scene_start_is_refused_naming_the_frames_to_render(baked):
    scene = baked
    scene.frame_start = 21
    with pytest.raises(Exception, match=r"frames 5-10 are outside the frames to render, 21-72 \(from the scene's start"):
        render_job.render_sync(scene, frames=[[5, 10]])
    assert bpy.context.scene.frame_start == 21
