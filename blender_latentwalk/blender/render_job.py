"""A render in the worker process: the plan file it renders, the devices it is dealt out to, and
what comes back (progress, warnings, the frames), placed on the Sequencer at the end.

`RenderJob` is one render, polled by jobs.py in the UI; `render_sync` runs one to the end
(background mode, scripts, tests), printing progress lines when asked.
"""

import os
import queue
import re
import sys
import time
from dataclasses import dataclass

import bpy

from ..engine.errors import LatentWalkError
from ..engine.render import frame_ranges
from ..engine.render.png_writer import ensure_writable_folder, frame_path
from ..engine.worker import messages
from . import bake_state, encode, models, output, preferences, sampling, sequencer, worker_client


def prepare_plan(scene, preview=False, ranges=None, check_models_with=None):
    """Check the scene, sample its plan and write it as the render's folder's plan.npz.

    ranges : [[first, last], ...] Blender frames that will be rendered (checked to be inside the song).
    check_models_with : the Engine Python that looks for the render's models before anything is written
        or sampled ("Model missing: ..."); None for a plan rendered elsewhere (a farm's nodes).
    Returns (notes, folder, request, plan, plan path); request as `output.render_request` gives it.
    """
    notes = sequencer.repair_song_strip(scene)  # a moved .blend: its song strip's path may have broken
    bake_state.check_current(scene)  # keys made at another fps or song start would drift off the music
    scene.latentwalk.ensure_default_classes()
    folder, request = output.render_request(scene, preview)
    song_first, song_last = sampling.plan_range(scene)
    for first, last in ranges or ():
        sampling.check_inside_render_range(first, last, scene)
    if check_models_with is not None:  # at once, not after the worker has imported torch (half a minute)
        models.refuse_missing(scene, preview, check_models_with)
    ensure_writable_folder(folder)
    # The whole song is sampled even for a part of it: travel and class smoothing carry history.
    plan = sampling.sample_plan(scene, song_first, song_last)
    plan_path = os.path.join(folder, output.PLAN_FILE_NAME)
    try:
        plan.save(plan_path)
    except OSError as error:
        raise LatentWalkError(f"cannot write '{plan_path}' ({error.strerror}): choose a writable folder.") from None
    return notes, folder, request, plan, plan_path


def engine_render_arguments(scene, request, plan_path, folder):
    """The engine CLI's ``render`` arguments that render ``plan_path`` exactly as Render Frames does
    (same models, size and batch size); a farm appends ``--plan-indices`` per chunk."""
    img2img, diffusion = request["img2img"], scene.latentwalk.diffusion
    arguments = ["render", plan_path, "--generator", request["generator"], "--sd", img2img["model"],
                 "--size", f"{img2img['width']}x{img2img['height']}", "--out", folder,
                 "--device", scene.latentwalk.walk.device]
    if img2img["tiny_vae"]:
        arguments += ["--tiny-vae", img2img["tiny_vae"]]
    if diffusion.batch_size:
        arguments += ["--batch-size", str(diffusion.batch_size)]
    return arguments


@dataclass(frozen=True)
class JobResult:
    """What a render, or one device's share of it, did: Blender frame numbers."""

    rendered: list  # written now
    reused: list  # current already, kept
    stopped: bool  # cancelled before its last frame


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
    come back of it (a job of jobs.py in the UI; `render_sync` waits for it).

    frames : optional Blender frames inside the song's range: (first, last), or a farm chunk's
        ranges [[first, last], ...] (`engine.render.frame_ranges.parse`), which may leave gaps.
    With several devices the frames are dealt out in whole aligned batches
    (`frame_ranges.interleave_batches`), so every frame has the bytes of a one-worker render; the
    progress, the cancel and the result are the job's, as one. A device that fails (an error, its
    worker killed) hands its frames to a device still working: frames it finished are current
    and kept, the rest are rendered there.
    """

    kind = "render"  # a preview too: one job at a time (jobs.py)

    def __init__(self, scene, preview=False, frames=None, python=None):
        self.scene = scene  # the render ends on the scene it began on, whichever is active then
        walk, diffusion = scene.latentwalk.walk, scene.latentwalk.diffusion
        self.preview = preview
        devices = parse_devices(diffusion.devices) or [walk.device]
        if python is None:
            python = worker_client.worker_python(preferences.get().engine_python)
        # Said in the status line and the report: stand-ins are only ever chosen by a click.
        self.stand_ins = [title for title, _ in models.stand_ins_in_use(scene, preview)]
        song_first = sampling.song_first_frame(scene)  # the plan's first frame (index 0)
        self.ranges = _frame_ranges(frames) if frames is not None else [list(sampling.render_range(scene))]
        self.notes, self.folder, request, self.plan, plan_path = prepare_plan(scene, preview, self.ranges,
                                                                              check_models_with=python)
        if self.stand_ins:
            self.notes.insert(0, f"stand-in models: the frames are noise ({', '.join(self.stand_ins)})")
        self.first, self.last = self.ranges[0][0], self.ranges[-1][1]
        index_ranges = [[a - song_first, b - song_first] for a, b in self.ranges]
        batch_size = diffusion.batch_size or None
        if len(devices) > 1:  # the engine's default said out loud: every worker must cut the same batches
            batch_size = batch_size or frame_ranges.default_batch_size(devices)
        self._request = dict(plan_path=plan_path, out_folder=self.folder, batch_size=batch_size, **request)
        self.shares = []
        self.done, self.total = 0, None
        self.started_s = None  # when the models were loaded and frames began
        self.result, self.error, self.cancel_requested = None, None, False  # result: a JobResult
        self.cancelled_s = None  # when cancel was asked for (Esc or the Cancel button)
        self.warnings = []  # what the worker warned of (a halved batch after running out of memory)
        self.handed_over = []  # one line per device that failed, saying where its frames went
        shares = frame_ranges.interleave_batches(index_ranges, batch_size or 1, len(devices))
        worker_client.end_workers_from(len(devices))
        for slot, (device, share) in enumerate(zip(devices, shares)):
            self._send(worker_client.get(python, slot), device, share, slot + 1)

    def _send(self, worker, device, index_ranges, slot):
        request_id = worker.render(plan_index_ranges=index_ranges, device=device, **self._request)
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
        return [frame_path(self.folder, number) for number in (self.result.rendered if self.result else [])]

    @property
    def finished(self):
        return self.result is not None or self.error is not None

    def _handle(self, event, worker=None):
        """Take in one event (a `messages` dataclass) of ``worker`` (default: the first device's)."""
        worker = worker if worker is not None else self.shares[0].worker
        request_id = messages.request_id_of(event)
        shares = [share for share in self.shares if share.worker is worker and not share.finished
                  and request_id in (share.request_id, None)]
        if isinstance(event, messages.RenderWarning) and shares:  # e.g. out of memory: a halved batch, going on
            self.warnings.append(event.message)
            if bpy.app.background:
                print(f"warning: {event.message}", file=sys.stderr, flush=True)
        for share in shares:
            if isinstance(event, messages.Progress):
                if self.started_s is None:
                    self.started_s = time.monotonic()
                share.done, share.total = event.done, event.total
            elif isinstance(event, messages.RenderDone):
                share.result = JobResult(rendered=event.rendered, reused=event.reused, stopped=event.stopped)
            elif isinstance(event, (messages.RequestFailed, messages.Fatal)):
                share.error = event.message
            elif isinstance(event, messages.ProcessExited) and self.cancel_requested and worker.closing:
                share.result = JobResult(rendered=[], reused=[], stopped=True)  # ended on purpose (Esc twice)
            elif isinstance(event, messages.ProcessExited):
                tail = worker.log_tail()
                share.error = (f"the render worker stopped (exit status {event.status})"
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
        rendered = sorted(set().union(*(result.rendered for result in results)))
        reused = sorted(set().union(*(result.reused for result in results)) - set(rendered))
        self.result = JobResult(rendered=rendered, reused=reused, stopped=any(r.stopped for r in results))

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
        """Stop before the next batch; finished frames stay."""
        if not self.cancel_requested:
            self.cancel_requested, self.cancelled_s = True, time.monotonic()
            for share in self.shares:
                if not share.finished:
                    share.worker.cancel(share.request_id)

    def abandon(self):
        """Nobody watches this render any more (a file load, the add-on disabled): stop it."""
        if not self.finished:
            self.cancel()

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
            " (stand-ins: noise)" if self.stand_ins else "") + (" (cancelling)" if self.cancel_requested else "")

    def finish(self, scene, place=True):
        """Put the frames in the sequencer (unless ``place`` is False: a farm chunk keeps its frames
        only); returns a one-line summary. Raises on a failed job."""
        if self.error is not None:
            raise LatentWalkError(self.error)
        rendered, reused = len(self.result.rendered), len(self.result.reused)
        if self.result.stopped:
            return (f"cancelled: {max(rendered, self.done)} new frames kept in {self.folder}; render again to "
                    "continue where it stopped")
        if not place:
            return "; ".join(self.notes + [f"{rendered} frames rendered, {reused} kept, in {self.folder} (frames "
                                           f"{frame_ranges.describe(self.ranges)})"])
        if not self.preview:
            try:  # the panel's "N of M frames current" follows each render: of the scene as it is now (sampled
                encode.check_frames(scene)  # again), not of the plan the render began with (an edit meanwhile)
            except LatentWalkError as error:
                self.notes.append(f"the frames could not be counted afterwards ({error})")
        strip = sequencer.lay_frames(scene, self.folder, self.first, self.last, preview=self.preview)
        summary = (f"{rendered} frames rendered, {reused} kept, in {self.folder}; strip '{strip.name}' on channel "
                   f"{strip.channel} from frame {strip.frame_final_start}")
        return "; ".join(self.notes + [summary])


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
