"""Issue 23: a Save As keeps the rendered frames, Encode Video holds its frames against renders while
Blender reads them, the panel's count after a render is of the scene as it is now, and a bake says
when it changes the scene's playback. Each test is written as the artist's steps."""

import os
import re
import subprocess
import sys
import textwrap

import bpy
import pytest

from blender_latentwalk.blender import compat, encode, render_job, sequencer

pytest.importorskip("torch")  # the worker runs in this Python (Blender's own, by default)
pytest.importorskip("diffusers")

from addon_helpers import pngs  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAYBACK_NOTE = "Playback set to Sync to Audio and Scrubbing on, so the picture follows the song"


def default_folder(name):
    return bpy.types.Scene.bl_rna.properties["latentwalk"].fixed_type.properties[
        "diffusion" if name == "output_folder" else "walk"].fixed_type.properties[name].default


def carried_lines(text):
    return [line for line in text.splitlines() if line.startswith(("Latent Walk: Save As", "Latent Walk: Save Copy"))]


def inode(path):
    return os.stat(path).st_ino


def test_save_as_a_new_version_brings_the_frames_along_and_encodes_without_a_render(baked, tmp_path, capfd):
    scene = baked
    settings = scene.latentwalk
    settings.diffusion.output_folder = default_folder("output_folder")  # //latentwalk_frames/{blend_name}/...
    settings.walk.preview_folder = default_folder("preview_folder")
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "song_v01.blend"))  # the first save: nothing to bring
    scene = bpy.context.scene
    assert bpy.ops.latentwalk.render() == {"FINISHED"}
    assert bpy.ops.latentwalk.preview() == {"FINISHED"}
    v01 = tmp_path / "latentwalk_frames" / "song_v01" / "Scene"
    previews_v01 = tmp_path / "latentwalk_preview" / "song_v01" / "Scene"
    frames_v01, previews = pngs(v01), pngs(previews_v01)
    assert len(frames_v01) == 72 and len(previews) == 72
    bpy.ops.wm.save_mainfile()  # Ctrl+S: the same name, nothing moves
    assert carried_lines(capfd.readouterr().out) == []

    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "song_v02.blend"))  # the next version
    scene = bpy.context.scene
    said = carried_lines(capfd.readouterr().out)
    v02 = tmp_path / "latentwalk_frames" / "song_v02" / "Scene"
    assert said == [
        f"Latent Walk: Save As song_v02.blend: the Output folder of scene 'Scene' is now '{v02}'; its 72 rendered "
        f"frames were linked there from '{v01}': nothing to render again",
        f"Latent Walk: Save As song_v02.blend: the Preview Folder of scene 'Scene' is now "
        f"'{tmp_path / 'latentwalk_preview' / 'song_v02' / 'Scene'}'; its 72 rendered frames were linked there "
        f"from '{previews_v01}': nothing to render again"]
    assert pngs(v02) == frames_v01 and inode(v02 / "frame_000001.png") == inode(v01 / "frame_000001.png")
    status, folder = encode.check_frames(scene)
    assert folder == str(v02) and status.summary() == "72 of 72 frames current"
    assert bpy.ops.latentwalk.encode_video() == {"FINISHED"}  # no render
    assert os.path.isfile(v02 / "song_v02.mp4")

    # The versions stay apart: an edit rendered in v02 leaves v01's frames, and v01 still encodes.
    scene.latentwalk.walk.seed = 7
    again = render_job.render_sync(scene)
    assert len(again.result.rendered) == 72
    assert pngs(v01) == frames_v01 and pngs(v02) != frames_v01
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "song_v01.blend"))
    assert encode.check_frames(bpy.context.scene)[0].summary() == "72 of 72 frames current"

    # Saved as a name whose folder has frames of its own: they are kept (and the old ones stay where they are).
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "song_v02.blend"))
    assert "has frames of its own, left as they are" in carried_lines(capfd.readouterr().out)[0]
    assert pngs(v01) == frames_v01
    assert encode.check_frames(bpy.context.scene)[0].summary() == "0 of 72 frames current (72 stale)"

    # File > Save Copy (4.2 and 5.0 tell the handlers its path, 3.4 does not): the copy gets the frames.
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "song_v03.blend"), copy=True)
    v03 = tmp_path / "latentwalk_frames" / "song_v03" / "Scene"
    said = carried_lines(capfd.readouterr().out)
    assert said[0].startswith(f"Latent Walk: Save Copy song_v03.blend: the copy's Output folder of scene 'Scene' "
                              f"is now '{v03}'; its 72 rendered frames were linked")
    assert pngs(v03) == pngs(v02) and bpy.data.filepath == str(tmp_path / "song_v02.blend")


def test_a_first_save_and_folders_that_do_not_move_change_nothing(baked, tmp_path, capfd):
    scene = baked  # Output folder: tmp/frames, absolute: the same folder whatever the file's name
    assert bpy.ops.latentwalk.render() == {"FINISHED"}
    scene.latentwalk.walk.preview_folder = "//previews/"  # no file name in it: moves only with the file's folder
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "a.blend"))  # first save of an unsaved file
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "b.blend"))
    assert carried_lines(capfd.readouterr().out) == []
    assert sorted(os.listdir(tmp_path)) == sorted(["a.blend", "b.blend", "frames", "song.wav"])


def claim_elsewhere(folder, frames, hold=False):
    """Another process's `claims.claim` on ``frames`` (a render's way): the FolderBusy message, or None once
    claimed. ``hold``: keep the claim until its stdin closes (returns the process, once it holds)."""
    script = textwrap.dedent(f"""
        import os, sys
        from blender_latentwalk.engine.render import claims
        try:
            held = claims.claim({str(folder)!r}, {list(frames)!r})
        except claims.FolderBusy as error:
            print("BUSY " + str(error), flush=True)
            sys.exit(0)
        print("HELD", os.getpid(), flush=True)
        if {hold!r}:
            sys.stdin.read()
        held.release()
        """)
    process = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True, env=dict(os.environ, PYTHONPATH=ROOT))
    line = process.stdout.readline().strip()
    if hold:
        assert line.startswith("HELD"), line
        return process
    process.wait(timeout=60)
    return line[len("BUSY "):] if line.startswith("BUSY ") else None


def test_encode_holds_its_frames_against_renders_until_blender_has_read_them(baked, tmp_path, monkeypatch):
    scene = baked
    folder = tmp_path / "frames"
    assert bpy.ops.latentwalk.render() == {"FINISHED"}
    seen = []
    encode_video = sequencer.encode_video

    def while_blender_reads(*args, **kwargs):
        seen.append(claim_elsewhere(folder, [1, 40, 72]))
        return encode_video(*args, **kwargs)

    monkeypatch.setattr(sequencer, "encode_video", while_blender_reads)
    assert bpy.ops.latentwalk.encode_video() == {"FINISHED"}  # background mode: the blocking path
    assert seen[0] is not None and seen[0].startswith(f"frames 1, 40, 72 of '{folder}' are held by process ")
    assert ", encoding a video since " in seen[0]  # a render refused by an encode is told so
    assert claim_elsewhere(folder, [1, 40, 72]) is None  # let go once the video is written
    assert [name for name in os.listdir(folder) if name.startswith(".latentwalk-render-")] == []

    # A render holding some of the frames: Encode refuses, naming it, and holds nothing afterwards.
    other = claim_elsewhere(folder, range(30, 41), hold=True)
    try:
        with pytest.raises(RuntimeError, match=re.escape(f"frames 30-40 of '{folder}' are being rendered by process "
                                                         f"{other.pid} on ")):
            bpy.ops.latentwalk.encode_video()
    finally:
        other.stdin.close()
        other.wait(timeout=60)
    assert claim_elsewhere(folder, [1]) is None

    # The interactive path: held from the check until Blender's render job has ended (EncodeJob), and let go
    # when the encode fails to start.
    monkeypatch.setattr(sequencer, "encode_video", lambda *args, **kwargs: None)  # Blender's job "started"
    hold = encode.FrameHold()
    encode.encode(scene, str(tmp_path / "modal.mp4"), interactive=True, hold=hold)
    assert claim_elsewhere(folder, [5]) is not None  # still held while Blender's render job runs
    job = encode.EncodeJob(scene, str(tmp_path / "modal.mp4"), hold)
    monkeypatch.setattr(compat, "render_job_running", lambda: True)
    assert not job.poll() and claim_elsewhere(folder, [5]) is not None
    monkeypatch.setattr(compat, "render_job_running", lambda: False)
    assert job.poll() and claim_elsewhere(folder, [5]) is None  # its job ended (or was stopped with Esc)

    def fails(*args, **kwargs):
        raise RuntimeError("Blender did not start the encode")

    monkeypatch.setattr(sequencer, "encode_video", fails)
    hold = encode.FrameHold()
    with pytest.raises(RuntimeError, match="did not start"):
        encode.encode(scene, str(tmp_path / "modal.mp4"), interactive=True, hold=hold)
    assert hold.held is None and claim_elsewhere(folder, [5]) is None


def test_the_count_after_a_render_is_of_the_scene_as_it_is_now(baked):
    scene = baked
    job = render_job.RenderJob(scene)
    job.wait()
    onset = compat.find_fcurve(scene, "latentwalk.onset", 0)  # the artist edits a curve while it renders
    for point in onset.keyframe_points:
        point.co.y = point.handle_left.y = point.handle_right.y = 1.0
    onset.update()
    job.finish(scene)
    shown = encode.last_check(scene).status  # what the panel shows after the render
    assert not shown.complete and shown.stale
    assert shown == encode.check_frames(scene)[0]  # the same as Check Frames says now


def test_a_bake_says_once_that_it_set_playback_to_follow_the_song(scene, song, capfd):
    scene.sync_mode, scene.use_audio_scrub = "NONE", False
    scene.latentwalk.audio_path = song
    assert bpy.ops.latentwalk.bake() == {"FINISHED"}
    first = capfd.readouterr()
    assert (first.out + first.err).count(PLAYBACK_NOTE) == 1
    assert (scene.sync_mode, scene.use_audio_scrub) == ("AUDIO_SYNC", True)
    assert bpy.ops.latentwalk.bake(overwrite_edited=True) == {"FINISHED"}  # nothing to change: nothing said
    second = capfd.readouterr()
    assert "Baked " in second.out + second.err and "Playback" not in second.out + second.err
    scene.use_audio_scrub = False  # the artist turns scrubbing off: the next bake says only that
    assert bpy.ops.latentwalk.bake(overwrite_edited=True) == {"FINISHED"}
    third = capfd.readouterr()
    assert "Playback set to Scrubbing on, so the picture follows the song" in third.out + third.err
