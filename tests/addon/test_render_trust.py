"""Every path that could put a wrong frame or a wrong (or silent) song in the video ends in a
refusal or a correct video. Each test is written as the artist's steps."""

import os
import shutil

import bpy
import numpy as np
import pytest

from blender_latentwalk.blender import compat, encode, jobs, output, render_job, sequencer, worker_client

pytest.importorskip("torch")  # the worker runs in this Python (Blender's own, by default)
pytest.importorskip("diffusers")
av = pytest.importorskip("av")

from addon_helpers import FPS, pngs  # noqa: E402


def strip_named(scene, name):
    return next((s for s in compat.all_strips(scene) if s.name == name), None)


def audio_rms(path):
    """RMS of the video's audio track (0.0 for silence)."""
    with av.open(str(path)) as container:
        samples = [frame.to_ndarray().astype(np.float64).ravel() for frame in container.decode(audio=0)]
    return float(np.sqrt(np.mean(np.concatenate(samples) ** 2)))


def test_a_preview_into_the_output_folder_never_reaches_the_video(baked, tmp_path):
    scene = baked
    settings = scene.latentwalk
    assert bpy.ops.latentwalk.render() == {"FINISHED"}
    finished = pngs(tmp_path / "frames")

    settings.walk.preview_folder = settings.diffusion.output_folder  # the artist points both at one folder
    for operator in (bpy.ops.latentwalk.preview, bpy.ops.latentwalk.render):
        with pytest.raises(RuntimeError, match="Preview Folder and the Output folder are the same"):
            operator()
    assert pngs(tmp_path / "frames") == finished
    # A link to the Output folder is the same folder, though its path differs (compared as files).
    os.symlink(tmp_path / "frames", tmp_path / "frames-link")
    settings.walk.preview_folder = str(tmp_path / "frames-link")
    with pytest.raises(RuntimeError, match="Preview Folder and the Output folder are the same"):
        bpy.ops.latentwalk.preview()
    assert pngs(tmp_path / "frames") == finished

    # Previews made elsewhere, then the Output folder pointed at them: not the frames of this render.
    settings.walk.preview_folder = str(tmp_path / "previews")
    assert bpy.ops.latentwalk.preview() == {"FINISHED"}
    settings.walk.preview_folder = str(tmp_path / "later-previews")
    settings.diffusion.output_folder = str(tmp_path / "previews")
    with pytest.raises(RuntimeError, match=r"0 of 72 frames current \(72 stale\)"):
        bpy.ops.latentwalk.encode_video()
    assert not os.path.exists(tmp_path / "previews" / "latentwalk.mp4")

    # Back to the finished frames: the video is made of them, and the preview strip is muted.
    settings.diffusion.output_folder = str(tmp_path / "frames")
    assert not strip_named(scene, sequencer.PREVIEW_STRIP_NAME).mute
    assert bpy.ops.latentwalk.encode_video() == {"FINISHED"}
    assert strip_named(scene, sequencer.PREVIEW_STRIP_NAME).mute
    final = strip_named(scene, sequencer.FINAL_STRIP_NAME)
    assert os.path.normpath(bpy.path.abspath(final.directory)) == os.path.normpath(str(tmp_path / "frames"))


def test_two_blend_files_in_one_folder_never_share_frames(baked, tmp_path):
    scene = baked
    settings = scene.latentwalk
    settings.diffusion.output_folder = settings.bl_rna.properties["diffusion"].fixed_type.properties[
        "output_folder"].default  # the default: //latentwalk_frames/{blend_name}/
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "first.blend"))
    scene = bpy.context.scene
    assert output.resolve_folder(scene.latentwalk.diffusion.output_folder, "Output", scene) == str(
        tmp_path / "latentwalk_frames" / "first" / "Scene")
    assert bpy.ops.latentwalk.render() == {"FINISHED"}
    first_frames = pngs(tmp_path / "latentwalk_frames" / "first" / "Scene")

    scene.latentwalk.walk.seed = 7  # a second file with another walk, saved next to the first
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "second.blend"))
    scene = bpy.context.scene
    assert output.resolve_folder(scene.latentwalk.diffusion.output_folder, "Output", scene) == str(
        tmp_path / "latentwalk_frames" / "second" / "Scene")
    # Save As brought the first file's frames along (linked, its own from now on): not of this walk.
    with pytest.raises(RuntimeError, match=r"0 of 72 frames current \(72 stale\)"):
        bpy.ops.latentwalk.encode_video()

    # Both pointed at one folder by hand: the second file's Encode sees the frames are not its own.
    scene.latentwalk.diffusion.output_folder = "//latentwalk_frames/first/Scene/"
    with pytest.raises(RuntimeError, match=r"0 of 72 frames current \(72 stale\)"):
        bpy.ops.latentwalk.encode_video()
    assert pngs(tmp_path / "latentwalk_frames" / "first" / "Scene") == first_frames


def test_an_edit_undone_after_a_cancelled_render_is_refused_then_rerendered(baked, tmp_path):
    scene = baked
    walk = scene.latentwalk.walk
    assert bpy.ops.latentwalk.render() == {"FINISHED"}
    walk.seed = 5  # an edit...
    job = render_job.RenderJob(scene)
    while not job.finished and job.done < 8:  # ...rendered part-way, then Esc
        job._handle(job.worker.events.get())
    job.cancel()
    job.wait()
    changed = [n for n in job.result.rendered]
    assert job.result.stopped and changed
    walk.seed = 0  # ...and undone: the folder now holds frames of a walk that is not the scene's
    with pytest.raises(RuntimeError, match=rf"{72 - len(changed)} of 72 frames current \({len(changed)} stale\)"
                                           rf".*frame {changed[0]} is not rendered from the scene as it is now"):
        bpy.ops.latentwalk.encode_video()
    again = render_job.render_sync(scene)
    assert again.result.rendered == changed  # exactly the frames of the abandoned edit
    assert encode.last_check(scene).status.complete
    assert bpy.ops.latentwalk.encode_video() == {"FINISHED"}


def test_a_moved_blend_plays_the_song_or_is_refused_never_silent(baked, tmp_path):
    if not bpy.app.build_options.audaspace:
        pytest.skip("this Blender build has no audio")
    scene = baked
    settings = scene.latentwalk
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(settings.audio_path, project / "song.wav")
    settings.audio_path = str(project / "song.wav")
    assert bpy.ops.latentwalk.bake() == {"FINISHED"}
    settings.diffusion.output_folder = str(tmp_path / "frames")
    bpy.ops.wm.save_as_mainfile(filepath=str(project / "video.blend"), relative_remap=True)
    assert bpy.ops.latentwalk.render() == {"FINISHED"}
    strip = sequencer.find_sound_strip(bpy.context.scene, settings.audio_path)
    assert strip.sound.filepath.startswith("//")  # Blender stores it relative to the .blend

    # The .blend alone, copied elsewhere: the strip's relative path no longer resolves.
    elsewhere = tmp_path / "elsewhere" / "deeper"
    elsewhere.mkdir(parents=True)
    shutil.copy(project / "video.blend", elsewhere / "video.blend")
    bpy.ops.wm.open_mainfile(filepath=str(elsewhere / "video.blend"))
    scene = bpy.context.scene
    assert bpy.ops.latentwalk.encode_video() == {"FINISHED"}  # repaired from the Song setting
    strip = sequencer.find_sound_strip(scene, scene.latentwalk.audio_path)
    assert os.path.isfile(bpy.path.abspath(strip.sound.filepath))
    assert audio_rms(tmp_path / "frames" / "video.mp4") > 0.01

    strip.mute = True
    with pytest.raises(RuntimeError, match="is muted, so the video would be silent"):
        bpy.ops.latentwalk.encode_video()
    strip.mute = False
    scene.sequence_editor.channels[strip.channel].mute = True  # the channel's own mute (3.0+)
    with pytest.raises(RuntimeError, match=f"channel {strip.channel}, which holds the song strip .* is muted"):
        bpy.ops.latentwalk.encode_video()
    scene.sequence_editor.channels[strip.channel].mute = False
    strip.volume = 0.0
    with pytest.raises(RuntimeError, match="has volume 0, so the video would be silent"):
        bpy.ops.latentwalk.encode_video()
    strip.volume = 1.0
    other = tmp_path / "other.wav"
    from demo_song import synthesise_song

    synthesise_song(str(other), seconds=2.0)
    strip.sound.filepath = str(other)
    with pytest.raises(RuntimeError, match="the song strip 'song' now plays other.wav, not the Song song.wav"):
        bpy.ops.latentwalk.encode_video()
    strip.sound.filepath = "//no-such-song.wav"
    os.unlink(project / "song.wav")
    with pytest.raises(RuntimeError, match="does not exist, and the Song setting"):
        bpy.ops.latentwalk.encode_video()


def test_encode_leaves_the_artists_output_settings_as_they_were(baked, tmp_path):
    scene = baked
    assert bpy.ops.latentwalk.render() == {"FINISHED"}
    output = scene.render
    output.filepath = "//my_renders/shot_"
    output.image_settings.file_format = "JPEG"
    output.image_settings.quality = 77
    output.use_sequencer, output.use_compositing = False, True
    scene.frame_end = 60  # the artist trims the scene; the song's frames up to it are encoded
    scene.frame_step = 2  # a Step for quick playblasts: the video still has every frame, in sync
    output.ffmpeg.audio_bitrate = 320
    assert bpy.ops.latentwalk.encode_video() == {"FINISHED"}
    with av.open(str(tmp_path / "frames" / "latentwalk.mp4")) as container:
        video = container.streams.video[0]
        assert float(video.duration * video.time_base) == pytest.approx(60 / FPS, abs=1.5 / FPS)
    assert output.filepath == "//my_renders/shot_" and output.image_settings.file_format == "JPEG"
    assert output.image_settings.quality == 77 and output.ffmpeg.audio_bitrate == 320
    assert (output.use_sequencer, output.use_compositing, scene.frame_start, scene.frame_end) == (False, True, 1, 60)
    assert scene.frame_step == 2


def test_a_file_load_during_a_render_stops_it_and_keeps_finished_frames(baked, tmp_path):
    scene = baked
    job = render_job.RenderJob(scene)
    jobs.begin(job)  # as the modal operator does
    while not job.finished and job.done < 4:
        job._handle(job.worker.events.get())
    bpy.ops.wm.read_factory_settings(use_empty=True)  # File > New while frames render
    assert jobs.running() is None and job.cancel_requested
    job.wait()
    assert job.result.stopped and 4 <= len(job.result.rendered) < 72
    assert len(pngs(tmp_path / "frames")) == len(job.result.rendered)


def test_disabling_the_addon_during_a_render_ends_it_and_the_worker(baked, addon, tmp_path):
    job = render_job.RenderJob(baked)
    jobs.begin(job)  # as the modal operator does
    while not job.finished and job.done < 4:
        job._handle(job.worker.events.get())
    worker = job.worker
    addon.unregister()  # Preferences > Add-ons: Latent Walk unticked while frames render
    try:
        assert jobs.running() is None and job.cancel_requested
        assert not worker.alive() and not worker_client.running()  # its models' memory is freed
        finished = pngs(tmp_path / "frames")
        assert 4 <= len(finished) < 72  # what was finished stays
    finally:
        addon.register()


def test_the_worker_log_is_private(baked):
    render_job.render_sync(baked, frames=(1, 4))
    log = worker_client._worker.log_path
    assert not log.startswith("/tmp/") and os.path.isfile(log)
    assert os.stat(log).st_mode & 0o077 == 0 and os.stat(os.path.dirname(log)).st_mode & 0o077 == 0


def test_the_panels_count_belongs_to_the_file_and_folder_it_was_made_for(baked, tmp_path):
    scene = baked
    assert bpy.ops.latentwalk.render() == {"FINISHED"}
    assert encode.last_check(scene).status.summary() == "72 of 72 frames current"
    assert encode.last_check(scene).still_applies(scene)
    scene.render.fps = 30  # every count may be wrong now: the panel shows it as checked before the change
    assert not encode.last_check(scene).still_applies(scene)
    scene.render.fps = 24
    assert encode.last_check(scene).still_applies(scene)
    scene.frame_end += 10
    assert not encode.last_check(scene).still_applies(scene)
    scene.frame_end -= 10
    assert encode.last_check(scene).still_applies(scene)
    scene.latentwalk.bands[1].gain = 0.5  # a re-bake at the same timing: every frame may be stale
    assert bpy.ops.latentwalk.bake(overwrite_edited=True) == {"FINISHED"}
    assert not encode.last_check(scene).still_applies(scene)
    scene.latentwalk.bands[1].gain = 1.0  # baked back: the curves the frames were made from
    assert bpy.ops.latentwalk.bake(overwrite_edited=True) == {"FINISHED"}
    assert encode.last_check(scene).still_applies(scene)
    scene.latentwalk.diffusion.output_folder = str(tmp_path / "elsewhere")
    assert encode.last_check(scene) is None  # another folder: not checked yet
    scene.latentwalk.diffusion.output_folder = str(tmp_path / "frames")
    assert encode.last_check(scene) is not None
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "a.blend"))
    assert encode.last_check(bpy.context.scene) is None  # a count is for one file: this one was unsaved
    assert bpy.ops.latentwalk.check_frames() == {"FINISHED"}
    assert encode.last_check(bpy.context.scene).status.complete
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "a.blend"))  # loading a file (the same, even) forgets it
    assert encode.last_check(bpy.context.scene) is None
