"""Rendering from Blender: sample the plan, render it in the worker process with
progress and cancel, put the frames in the sequencer above the song, and encode
the video with Blender's own FFmpeg.

In the UI the operator is modal: it polls the worker on a timer, so Blender stays
responsive, shows progress and ETA in the status bar, and Esc stops the render
before its next batch. In background mode (``blender -b``) the same job runs
synchronously and prints progress lines.
"""

import os
import queue
import re
import sys
import tempfile
import time

import bpy

from ..engine.render import frame_ranges
from ..engine.errors import LatentWalkError
from ..engine.render.png_writer import ensure_writable_folder, frame_path
from . import bake_state, compat, engine_client, preferences, sampling, sequencer, worker_client

FINAL_STRIP_NAME = "Latent Walk"
PLAN_FILE_NAME = "plan.npz"
# Blender 5.0's path-template names, understood here in every version: the .blend's and the scene's.
BLEND_NAME_TOKEN, SCENE_NAME_TOKEN = "{blend_name}", "{scene_name}"


def resolve_folder(path, what, scene):
    """An absolute folder from a Blender path property: ``//`` is relative to the .blend, and
    ``{blend_name}`` / ``{scene_name}`` are the .blend's and the scene's names, so two files
    in one folder, or two scenes in one file, never share frames."""
    if (path.startswith("//") or BLEND_NAME_TOKEN in path) and not bpy.data.filepath:
        raise LatentWalkError(f"the {what} '{path}' depends on the .blend file: save the .blend first, "
                              "or choose an absolute folder.")
    blend_name = os.path.splitext(os.path.basename(bpy.data.filepath))[0]
    path = path.replace(BLEND_NAME_TOKEN, blend_name).replace(SCENE_NAME_TOKEN, bpy.path.clean_name(scene.name))
    return os.path.abspath(bpy.path.abspath(path))


def output_size(scene):
    """(width, height) of final frames: the scene's render size, made even for H.264."""
    render = scene.render
    scale = render.resolution_percentage / 100.0
    return (max(8, int(render.resolution_x * scale) // 2 * 2), max(8, int(render.resolution_y * scale) // 2 * 2))


def preview_size(scene):
    """(width, height) of preview frames: Preview Width wide, the render's aspect."""
    render = scene.render
    aspect = (render.resolution_y * render.pixel_aspect_y) / (render.resolution_x * render.pixel_aspect_x)
    width = scene.latentwalk.walk.preview_width
    return width, max(2, int(round(width * aspect / 2)) * 2)


def render_request(scene, preview):
    """(folder, what the worker is asked to render with) from the scene's settings.

    Refuses a Preview Folder that is the Output folder: previews would replace finished frames.
    """
    settings = scene.latentwalk
    walk, diffusion = settings.walk, settings.diffusion
    folders = {}
    for name, path, what in (("preview", walk.preview_folder, "Preview Folder"),
                             ("output", diffusion.output_folder, "Output folder")):
        try:
            folders[name] = resolve_folder(path, what, scene)
        except LatentWalkError:
            if name == ("preview" if preview else "output"):
                raise  # the folder this render writes
            folders[name] = None  # cannot hold frames yet, so cannot clash with the other
    preview_folder, output_folder = folders["preview"], folders["output"]
    same = None not in (preview_folder, output_folder) and (
        os.path.normcase(preview_folder) == os.path.normcase(output_folder))
    if same:
        raise LatentWalkError(f"the Preview Folder and the Output folder are the same ('{preview_folder}'): "
                              "previews would replace the rendered frames. Choose another Preview Folder.")
    if preview:
        folder, size = preview_folder, preview_size(scene)
        sd_model, tiny_vae = "none", ""
    else:
        folder, size = output_folder, output_size(scene)
        sd_model, tiny_vae = diffusion.model.strip() or "none", diffusion.tiny_vae.strip()
    return folder, {"biggan": walk.model, "img2img": {"model": sd_model, "width": size[0], "height": size[1],
                                                       "tiny_vae": tiny_vae}}


def check_frames(scene, first=None, last=None, python=None, plan=None):
    """(FrameStatus, folder): which of the Output folder's frames first..last (default: the song's
    frames) are, on disk, a finished render of the scene as it is now.

    The files decide, not anything remembered in the .blend: the plan is sampled now (or is
    ``plan``, just sampled by a render) and the check runs in the worker's Python, so it
    computes the same frame keys the render does.
    """
    folder, request = render_request(scene, preview=False)
    song_first, song_last = sampling.plan_range(scene)
    first = song_first if first is None else first
    last = song_last if last is None else last
    _check_inside(first, last, song_first, song_last, scene)
    plan = sampling.sample_plan(scene, song_first, song_last) if plan is None else plan
    python = engine_client.engine_python(preferences.get().engine_python) if python is None else python
    with tempfile.TemporaryDirectory(prefix="latentwalk-check-") as temp:
        plan_path = os.path.join(temp, PLAN_FILE_NAME)
        plan.save(plan_path)
        status = engine_client.frame_status(python, plan_path, request, folder,
                                            (first - song_first, last - song_first))
    _last_checks[_check_key(scene, folder)] = (time.strftime("%H:%M:%S"), status)
    return status, folder


# (.blend, scene, Output folder) -> (local time, FrameStatus) of the latest check: what the panel
# shows until the next one. Forgotten when a file loads.
_last_checks = {}


def _check_key(scene, folder):
    return bpy.data.filepath, scene.name, folder


def last_check(scene):
    """(time, FrameStatus) of the latest check of this scene's Output folder as it is set now, or None."""
    try:
        folder = resolve_folder(scene.latentwalk.diffusion.output_folder, "Output folder", scene)
    except LatentWalkError:
        return None
    return _last_checks.get(_check_key(scene, folder))


def _check_inside(first, last, song_first, song_last, scene):
    if not (song_first <= first <= last <= song_last):
        end = "the scene's end frame" if song_last == scene.frame_end else "the song's end"
        raise LatentWalkError(f"frames {first}-{last} are outside the frames to render, {song_first}-{song_last} "
                              f"(from the song's first frame to {end}): choose a range inside them.")


def prepare_plan(scene, preview=False, ranges=None):
    """Check the scene, sample its plan and write it as the render's folder's plan.npz.

    ranges : [[first, last], ...] Blender frames that will be rendered (checked to be inside the song).
    Returns (notes, folder, request, plan, plan path); request as `render_request` gives it.
    """
    notes = sequencer.repair_song_strip(scene)  # a moved .blend: its song strip's path may have broken
    bake_state.check_current(scene)  # keys made at another fps or song start would drift off the music
    scene.latentwalk.ensure_default_classes()
    folder, request = render_request(scene, preview)
    song_first, song_last = sampling.plan_range(scene)
    for first, last in ranges or ():
        _check_inside(first, last, song_first, song_last, scene)
    ensure_writable_folder(folder)
    # The whole song is sampled even for a part of it: travel and class smoothing carry history.
    plan = sampling.sample_plan(scene, song_first, song_last)
    plan_path = os.path.join(folder, PLAN_FILE_NAME)
    try:
        plan.save(plan_path)
    except OSError as error:
        raise LatentWalkError(f"cannot write '{plan_path}' ({error.strerror}): choose a writable folder.") from None
    return notes, folder, request, plan, plan_path


def engine_render_arguments(scene, request, plan_path, folder):
    """The engine CLI's ``render`` arguments that render ``plan_path`` exactly as Render Frames does
    (same models, size and batch size); a farm appends ``--frames`` per chunk."""
    img2img, diffusion = request["img2img"], scene.latentwalk.diffusion
    arguments = ["render", plan_path, "--biggan", request["biggan"], "--sd", img2img["model"],
                 "--size", f"{img2img['width']}x{img2img['height']}", "--out", folder,
                 "--device", scene.latentwalk.walk.device]
    if img2img["tiny_vae"]:
        arguments += ["--tiny-vae", img2img["tiny_vae"]]
    if diffusion.batch_size:
        arguments += ["--batch-size", str(diffusion.batch_size)]
    return arguments


class _Share:
    """One worker's part of a render: its device, plan-index ranges, request and what came back."""

    def __init__(self, worker, device, index_ranges, request_id, slot):
        self.worker, self.device, self.index_ranges, self.request_id = worker, device, index_ranges, request_id
        self.slot = slot  # which worker: 1, 2, ... (messages)
        self.frame_count = len(frame_ranges.numbers(index_ranges))
        self.done, self.total, self.result, self.error, self.handed = 0, None, None, None, False

    @property
    def finished(self):
        return self.result is not None or self.error is not None

    def describe(self):
        return f"{self.device} (worker {self.slot})"


def parse_devices(text):
    """Devices text ("cuda:0,cuda:1", "cpu,cpu"; "" -> []) -> list; raises LatentWalkError naming a bad entry."""
    devices = [part.strip() for part in text.split(",")] if text.strip() else []
    for device in devices:
        if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", device):
            raise LatentWalkError(f"Devices '{text}': '{device}' is not a device (cuda:0, cuda:1, cuda, mps, cpu); "
                                  "separate them with commas, e.g. cuda:0,cuda:1.")
    return devices


class RenderJob:
    """One render in the worker process, or in one worker per device of Devices, and what has
    come back of it.

    frames : optional Blender frames inside the song's range: (first, last), or a farm chunk's
        ranges [[first, last], ...] (`engine.frame_ranges.parse`), which may leave gaps.
    With several devices the frames are dealt out in whole aligned batches
    (`frame_ranges.interleave_batches`), so every frame has the bytes of a one-worker render; the
    progress, the cancel and the result are the job's, as one. A device that fails (an error, its
    worker killed) hands its frames to a device still working: frames it finished are current
    and kept, the rest are rendered there.
    """

    def __init__(self, scene, preview=False, frames=None, python=None):
        self.scene = scene  # the render ends on the scene it began on, whichever is active then
        walk, diffusion = scene.latentwalk.walk, scene.latentwalk.diffusion
        self.preview = preview
        devices = parse_devices(diffusion.devices) or [walk.device]
        song_first, song_last = sampling.plan_range(scene)
        self.ranges = _frame_ranges(frames) if frames is not None else [[song_first, song_last]]
        self.notes, self.folder, request, self.plan, plan_path = prepare_plan(scene, preview, self.ranges)
        self.first, self.last = self.ranges[0][0], self.ranges[-1][1]
        if python is None:
            python = worker_client.worker_python(preferences.get().engine_python)
        index_ranges = [[a - song_first, b - song_first] for a, b in self.ranges]
        batch_size = diffusion.batch_size or None
        if len(devices) > 1:  # the engine's default said out loud: every worker must cut the same batches
            batch_size = batch_size or frame_ranges.default_batch_size(devices)
        self._request = dict(plan=plan_path, out=self.folder, batch_size=batch_size, **request)
        self.shares = []
        self.done, self.total = 0, None
        self.started_s = None  # when the models were loaded and frames began
        self.result, self.error, self.cancel_requested = None, None, False
        self.cancelled_s = None  # when cancel was asked for (Esc or the Cancel button)
        self.warnings = []  # what the worker warned of (a halved batch after running out of memory)
        self.handed_over = []  # one line per device that failed, saying where its frames went
        shares = frame_ranges.interleave_batches(index_ranges, batch_size or 1, len(devices))
        worker_client.end_workers_from(len(devices))
        for slot, (device, share) in enumerate(zip(devices, shares)):
            self._send(worker_client.get(python, slot), device, share, slot + 1)

    def _send(self, worker, device, index_ranges, slot):
        request_id = worker.render(frames=index_ranges, device=device, **self._request)
        self.shares.append(_Share(worker, device, index_ranges, request_id, slot))

    @property
    def worker(self):
        """The first device's worker (with one device: the worker)."""
        return self.shares[0].worker

    @property
    def request_id(self):
        return self.shares[0].request_id

    def _workers(self):
        workers = []
        for share in self.shares:
            if all(share.worker is not known for known in workers):
                workers.append(share.worker)
        return workers

    @property
    def rendered_paths(self):
        """The PNGs this job wrote (not the ones it kept), in frame order."""
        return [frame_path(self.folder, number) for number in (self.result or {}).get("rendered", [])]

    @property
    def finished(self):
        return self.result is not None or self.error is not None

    def _handle(self, event, worker=None):
        """Take in one event of ``worker`` (default: the first device's)."""
        worker = worker if worker is not None else self.shares[0].worker
        kind, request_id = event.get("event"), event.get("id")
        shares = [share for share in self.shares if share.worker is worker and not share.finished
                  and request_id in (share.request_id, None)]
        if kind == "warning" and shares:  # e.g. out of memory: the batch was halved and the render goes on
            self.warnings.append(event["message"])
            if bpy.app.background:
                print(f"warning: {event['message']}", file=sys.stderr, flush=True)
        for share in shares:
            if kind == "progress":
                if self.started_s is None:
                    self.started_s = time.monotonic()
                share.done, share.total = event["done"], event["total"]
            elif kind == "done":
                share.result = event
            elif kind in ("error", "fatal"):
                share.error = event["message"]
            elif kind == "exit" and self.cancel_requested and worker.closing:
                share.result = {"rendered": [], "reused": [], "stopped": True}  # ended on purpose (Esc twice)
            elif kind == "exit":
                tail = worker.log_tail()
                share.error = (f"the render worker stopped (exit status {event['status']})"
                               + (f": {tail}" if tail else "") + f". Its log: {worker.log_path}")
        self._settle()

    def _settle(self):
        """Hand a failed device's frames to a working one, sum the progress, and end the job when
        every share is over."""
        failed_workers = [share.worker for share in self.shares if share.error is not None]
        for share in self.shares:
            if share.error is None or share.handed or self.cancel_requested:
                continue
            working = [other for other in self.shares if other.error is None and other.worker.alive()
                       and all(other.worker is not failed for failed in failed_workers)]
            if not working:
                continue
            target = min(working, key=lambda other: other.frame_count - other.done)
            share.handed = True
            line = (f"{share.describe()} failed ({share.error.splitlines()[0]}); its frames go to "
                    f"{target.describe()}")
            self.handed_over.append(line)
            if bpy.app.background:
                print(f"warning: {line}", file=sys.stderr, flush=True)
            self._send(target.worker, target.device, share.index_ranges, target.slot)
        self.done = sum(share.done for share in self.shares)
        if self.started_s is not None:  # a share not started yet counts all its frames
            self.total = sum(share.done if share.error is not None else
                             share.total if share.total is not None else share.frame_count for share in self.shares)
        if self.finished or not all(share.finished for share in self.shares):
            return
        unhandled = [share for share in self.shares if share.error is not None and not share.handed]
        results = [share.result for share in self.shares if share.result is not None]
        if unhandled or not results:
            self.error = (unhandled or self.shares)[0].error
            return
        rendered = sorted(set().union(*(result["rendered"] for result in results)))
        reused = sorted(set().union(*(result["reused"] for result in results)) - set(rendered))
        self.result = {"rendered": rendered, "reused": reused, "stopped": any(r["stopped"] for r in results)}

    def _next_event(self):
        """(worker, event) from any worker, blocking; one worker is waited on directly."""
        workers = self._workers()
        if len(workers) == 1:
            return workers[0], workers[0].events.get()
        while True:
            for worker in workers:
                try:
                    return worker, worker.events.get_nowait()
                except queue.Empty:
                    pass
            time.sleep(0.02)

    def poll(self):
        """Take in what the workers have said (never blocks); True once the job is over."""
        while not self.finished:
            for worker in self._workers():
                try:
                    event = worker.events.get_nowait()
                except queue.Empty:
                    continue
                self._handle(event, worker)
                break
            else:
                break
        return self.finished

    def wait(self, on_progress=None):
        """Block until the job is over (background mode); ``on_progress(job)`` after each batch."""
        while not self.finished:
            before = self.done, self.total
            worker, event = self._next_event()
            self._handle(event, worker)
            if on_progress is not None and (self.done, self.total) != before:
                on_progress(self)

    def cancel(self):
        if not self.cancel_requested:
            self.cancel_requested, self.cancelled_s = True, time.monotonic()
            for share in self.shares:
                if not share.finished:
                    share.worker.cancel(share.request_id)

    def status_line(self):
        if self.total is None:
            return "Latent Walk: loading models..."
        text = f"Latent Walk: {self.done}/{self.total} frames"
        elapsed = time.monotonic() - self.started_s
        if self.done and elapsed > 0:
            rate = self.done / elapsed
            left_s = max(0, self.total - self.done) / rate
            text += f", {rate:.2f} frames/s, {int(left_s // 60)}:{int(left_s % 60):02d} left"
        devices = len(self._workers())
        return text + (f" on {devices} devices" if devices > 1 else "") + (
            " (cancelling)" if self.cancel_requested else "")

    def finish(self, scene, place=True):
        """Put the frames in the sequencer (unless ``place`` is False: a farm chunk keeps its frames
        only); returns a one-line summary. Raises on a failed job."""
        if self.error is not None:
            raise LatentWalkError(self.error)
        rendered, reused = len(self.result["rendered"]), len(self.result["reused"])
        if self.result["stopped"]:
            return (f"cancelled: {max(rendered, self.done)} new frames kept in {self.folder}; render again to "
                    "continue where it stopped")
        if not place:
            return "; ".join(self.notes + [f"{rendered} frames rendered, {reused} kept, in {self.folder} (frames "
                                           f"{frame_ranges.describe(self.ranges)})"])
        if not self.preview:
            try:  # the panel's "N of M frames current" follows each render (its plan, not sampled again)
                check_frames(scene, plan=self.plan)
            except LatentWalkError as error:
                self.notes.append(f"the frames could not be counted afterwards ({error})")
        strip = lay_frames(scene, self.folder, self.first, self.last, preview=self.preview)
        summary = (f"{rendered} frames rendered, {reused} kept, in {self.folder}; strip '{strip.name}' on channel "
                   f"{strip.channel} from frame {strip.frame_final_start}")
        return "; ".join(self.notes + [summary])


def lay_frames(scene, folder, first, last, preview=False):
    """Put frames first..last of ``folder`` on the Sequencer above the song, replacing the strip
    of their kind; the final frames mute the preview strip. Returns the strip."""
    paths = [frame_path(folder, number) for number in range(first, last + 1)]
    song = sequencer.song_strip(scene)
    name = sequencer.PREVIEW_STRIP_NAME if preview else FINAL_STRIP_NAME
    strip = sequencer.replace_image_strip(scene, name, paths, first, song.channel if song else 0)
    if not preview:
        sequencer.mute_strip(scene, sequencer.PREVIEW_STRIP_NAME)
    return strip


def _frame_ranges(frames):
    """[[first, last], ...] from (first, last) or from ranges already."""
    if len(frames) == 2 and all(isinstance(value, int) for value in frames):
        return [[int(frames[0]), int(frames[1])]]
    return frame_ranges.to_ranges(frame_ranges.numbers(frames))


def render_sync(scene, preview=False, frames=None, python=None, print_progress=False, place=True):
    """Render and place the frames (``place`` False: keep them only), blocking (background mode,
    scripts, tests); returns the job."""
    job = RenderJob(scene, preview=preview, frames=frames, python=python)

    def report(job):
        print(job.status_line(), flush=True)

    job.wait(report if print_progress else None)
    job.summary = job.finish(scene, place=place)
    return job


_active_job = None  # the job the modal operator is running, if any
ESC_HINT = "  (Esc: cancel; finished frames are kept)"


class _RenderOperator:
    preview = False

    @classmethod
    def poll(cls, context):
        # Not while Encode Video's render job reads the frames this would rewrite, nor while the worker
        # downloads, nor while Set Up Render Environment replaces the Python the worker would run in.
        from . import environment_setup, models

        return (_active_job is None and not compat.render_job_running() and not models.download_running()
                and environment_setup.active_job() is None)

    def execute(self, context):
        # Scripts and background mode: the same job, synchronously.
        try:
            job = render_sync(context.scene, preview=self.preview, print_progress=bpy.app.background)
        except LatentWalkError as error:
            self.report({"ERROR"}, f"Latent Walk: {error}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"Latent Walk: {job.summary}")
        for warning in job.warnings:
            self.report({"WARNING"}, f"Latent Walk: {warning}")
        return {"FINISHED"}

    def invoke(self, context, event):
        global _active_job
        if bpy.app.background:
            return self.execute(context)
        try:
            _active_job = RenderJob(context.scene, preview=self.preview)
        except LatentWalkError as error:
            self.report({"ERROR"}, f"Latent Walk: {error}")
            return {"CANCELLED"}
        self._job = _active_job
        self._workspace = context.workspace  # the status text is per workspace: clear the one we set
        self._timer = context.window_manager.event_timer_add(0.25, window=context.window)
        _active_job.ui = (self._timer, self._workspace)  # for a cleanup Blender does not announce
        context.window_manager.modal_handler_add(self)
        self._show(context)
        return {"RUNNING_MODAL"}

    def _show(self, context):
        job = self._job
        hint = " (Esc again: end the worker now)" if job.cancel_requested else ESC_HINT
        self._workspace.status_text_set(job.status_line() + hint)
        for area in context.screen.areas if context.screen else ():
            if area.type in ("SEQUENCE_EDITOR", "GRAPH_EDITOR"):
                area.tag_redraw()  # the sidebar shows the progress too

    def _end(self, context):
        """Always the way out: timer, status text and the active job are cleaned up."""
        global _active_job
        _release_ui(self._job)
        if _active_job is self._job:
            _active_job = None

    def cancel(self, context):
        # Blender ends the operator itself (its window closed, Blender quits).
        if not self._job.finished:
            self._job.cancel()
        self._end(context)

    def modal(self, context, event):
        job = self._job
        try:
            if event.type == "ESC" and event.value == "PRESS":
                if getattr(event, "is_repeat", False):
                    return {"RUNNING_MODAL"}  # a held key is one press
                if not job.cancel_requested:
                    job.cancel()  # the worker stops before its next batch; finished frames stay
                elif time.monotonic() - job.cancelled_s > 0.5:  # a second, deliberate press
                    worker_client.kill()  # a worker stuck (loading, a hung GPU) ends now; its exit ends the job
                self._show(context)
                return {"RUNNING_MODAL"}
            if event.type != "TIMER":
                return {"PASS_THROUGH"}  # the UI stays usable while frames render
            if not job.poll():
                self._show(context)
                return {"PASS_THROUGH"}
        except Exception:
            self._end(context)
            raise
        self._end(context)
        try:
            summary = job.finish(job.scene)
        except ReferenceError:  # the scene was deleted while it rendered: its frames stay in the folder
            self.report({"WARNING"}, f"Latent Walk: the rendered scene is gone; the frames are in {job.folder}")
            return {"CANCELLED"}
        except LatentWalkError as error:
            self.report({"ERROR"}, f"Latent Walk: {error}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"Latent Walk: {summary}")
        for warning in job.warnings:
            self.report({"WARNING"}, f"Latent Walk: {warning}")
        return {"FINISHED"}


class LATENTWALK_OT_render(_RenderOperator, bpy.types.Operator):
    """Render the latent walk (BigGAN, then Stable Diffusion img2img) into the Output folder and the Sequencer. Esc cancels; finished frames are kept"""

    bl_idname = "latentwalk.render"
    bl_label = "Render Frames"
    bl_options = {"UNDO"}  # not REGISTER: Repeat Last would re-run it blocking, without Esc


class LATENTWALK_OT_preview(_RenderOperator, bpy.types.Operator):
    """Render a quick BigGAN-only preview at Preview Width into the Sequencer, to judge the motion. Esc cancels"""

    bl_idname = "latentwalk.preview"
    bl_label = "Preview Walk"
    bl_options = {"UNDO"}
    preview = True


class LATENTWALK_OT_render_cancel(bpy.types.Operator):
    """Stop the render before its next batch; finished frames are kept"""

    bl_idname = "latentwalk.render_cancel"
    bl_label = "Cancel Render"

    @classmethod
    def poll(cls, context):
        return _active_job is not None and not _active_job.cancel_requested

    def execute(self, context):
        _active_job.cancel()
        return {"FINISHED"}


class LATENTWALK_OT_release_models(bpy.types.Operator):
    """End the render worker process, freeing the memory (VRAM) its loaded models hold"""

    bl_idname = "latentwalk.release_models"
    bl_label = "Release Models"

    @classmethod
    def poll(cls, context):
        from . import environment_setup, models

        return (_active_job is None and worker_client.running() and not models.download_running()
                and environment_setup.active_job() is None)

    def execute(self, context):
        worker_client.release()
        self.report({"INFO"}, "Latent Walk: render worker ended, models released")
        return {"FINISHED"}


def video_path(scene):
    """Where Encode Video writes: next to the frames, named after the .blend."""
    folder = resolve_folder(scene.latentwalk.diffusion.output_folder, "Output folder", scene)
    name = os.path.splitext(os.path.basename(bpy.data.filepath))[0] or "latentwalk"
    return os.path.join(folder, f"{name}.mp4")


def encode(scene, path, first=None, last=None, interactive=False, python=None):
    """Encode frames first..last (default: the song's) with the song, after checking both.

    Refuses (LatentWalkError) unless every frame in the Output folder is current for the
    scene as it is now and the song strip plays the song the curves were baked from; then
    lays those frames on the Sequencer (the preview strip muted) and encodes. Returns the
    lines to tell the user (a repaired song strip, the frames encoded).
    """
    notes = sequencer.repair_song_strip(scene)  # a moved .blend's strip path, before judging the bake
    bake_state.check_current(scene)  # curves baked at another fps or song start would drift off the music
    status, folder = check_frames(scene, first, last, python)
    if not status.complete:
        raise LatentWalkError(status.refusal(folder))
    sequencer.check_song_strip(scene)  # the song the curves were baked from, playing, not muted
    first, last = min(status.current), max(status.current)  # complete: every frame between is current
    lay_frames(scene, folder, first, last)
    sequencer.encode_video(scene, path, first, last, interactive=interactive)
    return notes + [f"{status.summary()}; encoding frames {first}-{last} with the song to {path}"]


class LATENTWALK_OT_check_frames(bpy.types.Operator):
    """Count the frames in the Output folder that are a finished render of the scene as it is now"""

    bl_idname = "latentwalk.check_frames"
    bl_label = "Check Frames"

    @classmethod
    def poll(cls, context):
        return _active_job is None and not compat.render_job_running()

    def execute(self, context):
        try:
            status, folder = check_frames(context.scene)
        except LatentWalkError as error:
            self.report({"ERROR"}, f"Latent Walk: {error}")
            return {"CANCELLED"}
        self.report({"INFO"} if status.complete else {"WARNING"},
                    f"Latent Walk: {status.refusal(folder) or status.summary() + ' in ' + folder}")
        return {"FINISHED"}


class LATENTWALK_OT_encode_video(bpy.types.Operator):
    """Encode the rendered frames and the song with Blender's FFmpeg as H.264 + AAC, next to the frames. Refuses frames that are not a finished render of the scene as it is now"""

    bl_idname = "latentwalk.encode_video"
    bl_label = "Encode Video"

    @classmethod
    def poll(cls, context):
        return _active_job is None and not compat.render_job_running() and bool(context.scene.latentwalk.audio_path)

    def execute(self, context):
        try:
            path = video_path(context.scene)
            lines = encode(context.scene, path, interactive=not bpy.app.background)
        except (LatentWalkError, RuntimeError, OSError) as error:
            self.report({"ERROR"}, f"Latent Walk: {str(error).strip()}")
            return {"CANCELLED"}
        for line in lines:
            self.report({"INFO"}, f"Latent Walk: {line}")
        return {"FINISHED"}


classes = (LATENTWALK_OT_render, LATENTWALK_OT_preview, LATENTWALK_OT_render_cancel, LATENTWALK_OT_release_models,
           LATENTWALK_OT_check_frames, LATENTWALK_OT_encode_video)


def active_job():
    return _active_job


def _release_ui(job):
    """Remove the modal render's timer and status text (safe to call twice)."""
    timer, workspace = getattr(job, "ui", (None, None))
    job.ui = (None, None)
    if timer is not None:
        bpy.context.window_manager.event_timer_remove(timer)
    try:
        if workspace is not None:
            workspace.status_text_set(None)
    except ReferenceError:  # the workspace was deleted meanwhile
        pass


@bpy.app.handlers.persistent
def _stop_job_on_file_load(*_args):
    # Loading a file, disabling the add-on or reloading scripts ends the modal operator
    # without telling it: stop the worker's render (finished frames stay), take the
    # timer and status text away, and let Render Frames run again.
    global _active_job
    _last_checks.clear()  # another file's counts must not show
    if _active_job is not None:
        _active_job.cancel()
        _release_ui(_active_job)
        _active_job = None


def register():
    bpy.app.handlers.load_pre.append(_stop_job_on_file_load)


def unregister():
    if _stop_job_on_file_load in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.remove(_stop_job_on_file_load)
    _stop_job_on_file_load()
    worker_client.release(timeout_s=2.0)  # disabling the add-on frees the models' memory too
