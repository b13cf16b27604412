"""Check Frames and Encode Video: the files decide what is finished.

Check Frames counts the Output folder's frames that are, on disk, a finished render of the
scene as it is now; the panel shows the latest count. Encode Video refuses anything less, then
lays the frames on the Sequencer above the song and encodes them with Blender's own FFmpeg.
"""

import os
import tempfile
import time
from dataclasses import dataclass

import bpy

from ..engine.errors import LatentWalkError
from . import bake_state, compat, engine_client, jobs, output, preferences, sampling, sequencer, worker_client


def check_frames(scene, first=None, last=None, python=None, plan=None, hold=None):
    """(FrameStatus, folder): which of the Output folder's frames first..last (default: the song's
    frames) are, on disk, a finished render of the scene as it is now.

    The files decide, not anything remembered in the .blend: the plan is sampled now (or is
    ``plan``, one the caller just sampled) and the check runs in the worker's Python, so it
    computes the same frame keys the render does.
    """
    folder, request = output.render_request(scene, preview=False)
    song_first, plan_last = sampling.plan_range(scene)
    render_first, render_last = sampling.render_range(scene)
    first = render_first if first is None else first
    last = render_last if last is None else last
    sampling.check_inside_render_range(first, last, scene)
    plan = sampling.sample_plan(scene, song_first, plan_last) if plan is None else plan
    python = engine_client.engine_python(preferences.get().engine_python) if python is None else python
    if hold is not None:  # `FrameHold`: from now until the encode has read them, no render rewrites them
        hold.take(folder, first, last)
    with tempfile.TemporaryDirectory(prefix="latentwalk-check-") as temp:
        plan_path = os.path.join(temp, output.PLAN_FILE_NAME)
        plan.save(plan_path)
        status = engine_client.frame_status(python, plan_path, request, folder,
                                            (first - song_first, last - song_first))
    _last_checks[_check_key(scene, folder)] = LastCheck(time.strftime("%H:%M:%S"), status, _timing_of(scene))
    return status, folder


@dataclass(frozen=True)
class LastCheck:
    """The latest Check Frames of a scene's Output folder, as the panel shows it until the next one.

    when : local time "16:02:11"; status : `FrameStatus`; timing : `_timing_of` the scene then.
    """

    when: str
    status: object
    timing: tuple

    def still_applies(self, scene):
        """False once the scene's frame rate, frame range or bake changed (a re-bake too): every count may be
        wrong then (cheap enough for a panel's draw; a full answer needs the curves sampled again: Check
        Frames). Hand edits of the curves are not seen here: Check Frames and Encode Video see them."""
        return self.timing == _timing_of(scene)


def _timing_of(scene):
    """What every frame's key hangs on and is cheap to read: the frame rate, the frame range, the bake (a
    re-bake with another gain changes its fingerprints) and whether it is current."""
    settings = scene.latentwalk
    return (scene.render.fps, scene.render.fps_base, scene.frame_start, scene.frame_end,
            settings.baked_timing, hash(settings.baked_fingerprints), tuple(bake_state.changes(scene)))


# (.blend, scene, Output folder) -> `LastCheck`. Forgotten when a file loads.
_last_checks = {}


def _check_key(scene, folder):
    return bpy.data.filepath, scene.name, folder


def last_check(scene):
    """The `LastCheck` of this scene's Output folder as it is set now, or None."""
    try:
        folder = output.resolve_folder(scene.latentwalk.diffusion.output_folder, "Output folder", scene)
    except LatentWalkError:
        return None
    return _last_checks.get(_check_key(scene, folder))


def encode(scene, path, first=None, last=None, interactive=False, python=None, hold=None):
    """Encode frames first..last (default: the song's) with the song, after checking both.

    Refuses (LatentWalkError) unless every frame in the Output folder is current for the
    scene as it is now and the song strip plays the song the curves were baked from; then
    lays those frames on the Sequencer (the preview strip muted) and encodes. Returns the
    lines to tell the user (a repaired song strip, the frames encoded).

    The frames are claimed as a render claims them (`FrameHold`) from before they are checked until
    Blender has read them, so no render (another Blender, a farm) rewrites them in between; frames a
    render holds are refused, naming it. ``hold``: the interactive encode's `FrameHold`, released by its
    job when Blender's render job ends (here only when the encode fails to start); without it the
    blocking encode takes its own and releases it here.
    """
    notes = sequencer.repair_song_strip(scene)  # a moved .blend's strip path, before judging the bake
    bake_state.check_current(scene)  # curves baked at another fps or song start would drift off the music
    own_hold = hold is None
    hold = FrameHold(python) if own_hold else hold
    try:
        status, folder = check_frames(scene, first, last, python, hold=hold)
        if not status.complete:
            raise LatentWalkError(status.refusal(folder))
        sequencer.check_song_strip(scene)  # the song the curves were baked from, playing, not muted
        first, last = min(status.current), max(status.current)  # complete: every frame between is current
        sequencer.lay_frames(scene, folder, first, last)
        sequencer.encode_video(scene, path, first, last, interactive=interactive)
    except BaseException:
        hold.release()
        raise
    if own_hold:  # a blocking encode has read every frame by now
        hold.release()
    return notes + [f"{status.summary()}; encoding frames {first}-{last} with the song to {path}"]


class FrameHold:
    """Encode Video's claim on the frames it reads (`engine_client.hold_frames`, in the render worker's
    Python: a claim's heartbeat is a thread, and none may run in Blender's process). `check_frames` takes
    it before it judges the frames; `release` (idempotent) once Blender has read them, or the encode
    failed or stopped."""

    def __init__(self, python=None):
        self.python = python or worker_client.worker_python(preferences.get().engine_python)
        self.held = None  # `engine_client.HeldFrames` while held

    def take(self, folder, first, last):
        self.release()
        if os.path.isdir(folder):  # else there are no frames to protect: the check refuses them all
            self.held = engine_client.hold_frames(self.python, folder, first, last)

    def release(self):
        held, self.held = self.held, None
        if held is not None:
            held.release()


def _frames_settled():
    """Neither a render of ours nor Blender's own render job (Encode Video) is changing the frames."""
    return jobs.running("render") is None and not compat.render_job_running()


class LATENTWALK_OT_check_frames(bpy.types.Operator):
    """Count the frames in the Output folder that are a finished render of the scene as it is now"""

    bl_idname = "latentwalk.check_frames"
    bl_label = "Check Frames"

    @classmethod
    def poll(cls, context):
        return _frames_settled()

    def execute(self, context):
        try:
            status, folder = check_frames(context.scene)
        except LatentWalkError as error:
            self.report({"ERROR"}, f"Latent Walk: {error}")
            return {"CANCELLED"}
        self.report({"INFO"} if status.complete else {"WARNING"},
                    f"Latent Walk: {status.refusal(folder) or status.summary() + ' in ' + folder}")
        return {"FINISHED"}


class EncodeJob:
    """Blender's own render job encoding the video (see `jobs`): it runs in this window, its progress in
    the status bar; Esc stops it (Blender's own Esc breaks a render job). However it ends, even where
    Blender's render job ends without its handlers (an FFmpeg that cannot open the file), the artist's
    output settings and render display go back as they were."""

    kind = "encode"

    def __init__(self, scene, path, hold=None):
        self.path, self.cancel_requested, self.cancelled = path, False, False
        self.hold = hold  # the `FrameHold` on the frames Blender's render job reads, released when it ends
        self.frames = scene.frame_end - scene.frame_start + 1  # the encode's own range, set by encode()
        self.started_s = time.time()
        bpy.app.handlers.render_cancel.append(self._on_cancel)

    def _on_cancel(self, *_args):
        self.cancelled = True

    def poll(self):
        if compat.render_job_running():
            return False
        self._settle()
        return True

    def _settle(self):
        if self._on_cancel in bpy.app.handlers.render_cancel:
            bpy.app.handlers.render_cancel.remove(self._on_cancel)
        sequencer.restore_output_settings()  # idempotent: the render job's handlers may have done it
        if self.hold is not None:
            self.hold.release()  # Blender has read the frames (or stopped): renders may write them again

    def cancel(self):
        self.cancel_requested = True  # the key press itself has already told Blender's job to stop

    def abandon(self):
        self._settle()

    def status_line(self):
        return f"Latent Walk: encoding {self.frames} frames with the song to {os.path.basename(self.path)}"

    def summary(self):
        """The report once the job is over: where the video is, or that none was written."""
        written = os.path.isfile(self.path) and os.path.getmtime(self.path) >= self.started_s - 1
        if self.cancelled or not written:  # an older video at that path is not this encode's
            return ("Encode stopped: no complete video was written (Blender's console says why, if it failed); "
                    "press Encode Video again.")
        size_mb = os.path.getsize(self.path) / 1e6
        return f"Video written: {self.path} ({size_mb:.1f} MB, {self.frames} frames with the song)"


class LATENTWALK_OT_encode_video(jobs.JobOperator, bpy.types.Operator):
    """Encode the rendered frames and the song with Blender's FFmpeg as H.264 + AAC, next to the frames. Refuses frames that are not a finished render of the scene as it is now"""

    bl_idname = "latentwalk.encode_video"
    bl_label = "Encode Video"

    @classmethod
    def poll(cls, context):
        return _frames_settled() and not jobs.busy() and bool(context.scene.latentwalk.audio_path)

    def escape_hint(self, job):
        return "" if job.cancel_requested else "  (Esc: stop)"

    def start_job(self, context):
        path = output.video_path(context.scene)
        hold = FrameHold()
        try:
            lines = encode(context.scene, path, interactive=True, hold=hold)  # released there if it fails
        except (RuntimeError, OSError) as error:
            raise LatentWalkError(str(error).strip()) from None
        for line in lines[:-1]:  # the last one is the status line's
            self.report({"INFO"}, f"Latent Walk: {line}")
        return EncodeJob(context.scene, path, hold)

    def end_job(self, context, job):
        summary = job.summary()
        self.report({"INFO"} if summary.startswith("Video written") else {"WARNING"}, f"Latent Walk: {summary}")
        return {"FINISHED"} if summary.startswith("Video written") else {"CANCELLED"}

    def execute(self, context):  # background mode (blender -b), scripts: blocking, Blender's render in place
        try:
            path = output.video_path(context.scene)
            lines = encode(context.scene, path, interactive=False)
        except (LatentWalkError, RuntimeError, OSError) as error:
            self.report({"ERROR"}, f"Latent Walk: {str(error).strip()}")
            return {"CANCELLED"}
        for line in lines:
            self.report({"INFO"}, f"Latent Walk: {line}")
        return {"FINISHED"}


classes = (LATENTWALK_OT_check_frames, LATENTWALK_OT_encode_video)


@bpy.app.handlers.persistent
def _forget_checks_on_file_load(*_args):
    _last_checks.clear()  # another file's counts must not show


def register():
    bpy.app.handlers.load_pre.append(_forget_checks_on_file_load)


def unregister():
    if _forget_checks_on_file_load in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.remove(_forget_checks_on_file_load)
    _last_checks.clear()
