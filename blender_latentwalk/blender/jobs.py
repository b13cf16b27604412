"""One job at a time: the bake, render (or preview), model download or set-up the add-on runs from the UI.

A job is long work outside Blender's main thread (a worker analyses, renders or downloads, the
set-up installs) that the main thread watches. This module is the one place that knows which job
runs and runs it: `JobOperator` starts it, polls it on a timer while Blender stays usable, shows
its status line, passes Esc on to it, cleans up (timer, status text, progress) however it ends, and
reports. The jobs exclude each other, because they share the worker (the set-up replaces the Python
it runs in, and a render would sample curves a bake is about to rewrite): `running()` says which
one runs, `refusal()` says so in words, `busy()` also counts Blender's own render job (Encode Video).

A job has:
    kind : "bake", "render" (a render or a preview), "download", "setup", "stand-ins" or "encode"
        (Blender's own render job making the video, watched for its end).
    poll() : take in what arrived, never blocking; True once the job is over.
    cancel() : ask it to stop (Esc, its Cancel button); cancel_requested is then True.
    abandon() : stop it for good because nobody will watch it any more (a file load, the add-on
        disabled, Blender quitting or ending the operator).
    status_line() : one line for the status bar.
"""

import atexit

import bpy

from ..engine.errors import LatentWalkError
from . import compat

POLL_INTERVAL_S = 0.25
ESC_HINT = "  (Esc: cancel)"
ESC_AGAIN_HINT = " (Esc again: end the worker now)"  # a job whose second Esc kills its worker

_running = None  # the job running in the UI, if any
_ui = {"timer": None, "workspace": None, "progress_bar": False}  # what the running job shows


def running(kind=None):
    """The job running now (only of ``kind``, when given), or None."""
    if _running is not None and kind in (None, _running.kind):
        return _running
    return None


def busy():
    """True while a job runs, or Blender's own render job (Encode Video in the UI)."""
    return _running is not None or compat.render_job_running()


_JOB_NAMES = {"bake": "a bake", "render": "a render", "download": "a model download",
              "setup": "the render environment's set-up", "encode": "Encode Video",
              "stand-ins": "making the stand-in models"}


def refusal():
    """Why no other job may start now ("" when one may)."""
    if _running is None:
        return ""
    return f"{_JOB_NAMES.get(_running.kind, _running.kind)} is running: let it finish or cancel it (Esc) first."


def begin(job):
    """Make ``job`` the one running job (`JobOperator`, environment_setup.start and tests call it)."""
    global _running
    if _running is not None and _running is not job:
        raise LatentWalkError(refusal())
    _running = job


def end(job):
    """``job`` is over or abandoned: forget it and take its timer, status text and progress away."""
    global _running
    if _running is job:
        _running = None
        _release_ui()


def _release_ui():
    """Remove the running job's timer, status text and progress bar (safe to call twice)."""
    timer, workspace, progress_bar = _ui["timer"], _ui["workspace"], _ui["progress_bar"]
    _ui.update(timer=None, workspace=None, progress_bar=False)
    window_manager = bpy.context.window_manager
    if timer is not None:
        window_manager.event_timer_remove(timer)
    if progress_bar:
        window_manager.progress_end()
    compat.set_status_text(workspace, None)


def _abandon_running():
    job = _running
    if job is not None:
        job.abandon()
        end(job)


class JobOperator:
    """The modal part of an operator that runs a job; mix it into a ``bpy.types.Operator``.

    Subclasses define ``start_job(context)`` (the new job; None when it was refused and reported; may
    raise LatentWalkError) and ``end_job(context, job)`` (report how the job ended, return the
    operator's result; may raise LatentWalkError). They may change what Esc does (`press_escape`), the
    hint after the status line (`escape_hint`), the areas that redraw with the status
    (`redraw_area_types`) and whether the job drives the progress bar (`progress_bar`: then the job
    has progress_fraction(), None or 0..1). In background mode (``blender -b``) `invoke` runs
    ``execute``, the subclass's blocking path. An operator that asks something first (a dialog) may
    call `run_modal` from its ``execute`` instead: Blender 3.4 to 5.0 then run it as a modal operator.
    """

    redraw_area_types = ("SEQUENCE_EDITOR", "GRAPH_EDITOR")  # the sidebars show the job too
    progress_bar = False

    def press_escape(self, job):
        job.cancel()

    def escape_hint(self, job):
        return "" if job.cancel_requested else ESC_HINT

    def start_reported(self, context):
        """`start_job`, its LatentWalkError reported: the job, or None when there is none."""
        try:
            return self.start_job(context)
        except LatentWalkError as error:
            self.report({"ERROR"}, f"Latent Walk: {error}")
            return None

    def invoke(self, context, event):
        if bpy.app.background:
            return self.execute(context)
        return self.run_modal(context)

    def run_modal(self, context):
        """Start the job and watch it from a modal handler; {"RUNNING_MODAL"}, or {"CANCELLED"} when refused."""
        if refusal():  # before the job starts anything (a worker, a download)
            self.report({"ERROR"}, f"Latent Walk: {refusal()}")
            return {"CANCELLED"}
        job = self.start_reported(context)
        if job is None:
            return {"CANCELLED"}
        begin(job)
        self._job = job
        window_manager = context.window_manager
        _ui.update(timer=window_manager.event_timer_add(POLL_INTERVAL_S, window=context.window),
                   workspace=context.workspace, progress_bar=self.progress_bar)
        if self.progress_bar:
            window_manager.progress_begin(0, 100)
        window_manager.modal_handler_add(self)
        self._show(context)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        job = self._job
        if running() is not job:  # a file load or unregister abandoned it meanwhile
            return {"CANCELLED"}
        try:
            if event.type == "ESC" and event.value == "PRESS":
                if not getattr(event, "is_repeat", False):  # a held key is one press
                    self.press_escape(job)
                self._show(context)
                return {"RUNNING_MODAL"}
            if event.type != "TIMER":
                return {"PASS_THROUGH"}  # Blender stays usable while the job runs
            if not job.poll() or compat.other_modal_operator_running(context.window):
                # Ending waits while, e.g., a key is being moved (G): a bake must not rewrite a curve under it.
                self._show(context)
                return {"PASS_THROUGH"}
        except Exception:
            job.abandon()
            end(job)
            raise
        end(job)
        self._redraw(context)
        try:
            return self.end_job(context, job)
        except LatentWalkError as error:
            self.report({"ERROR"}, f"Latent Walk: {error}")
            return {"CANCELLED"}

    def cancel(self, context):
        # Blender ends the operator itself (its window closed, Blender quits), or a dialog shown before the
        # job (Bake Curves asks about edited curves) was dismissed: then there is no job.
        job = getattr(self, "_job", None)
        if job is not None:
            job.abandon()
            end(job)

    def _show(self, context):
        job = self._job
        compat.set_status_text(_ui["workspace"], job.status_line() + self.escape_hint(job))
        fraction = job.progress_fraction() if self.progress_bar else None
        if fraction is not None:
            context.window_manager.progress_update(int(100 * fraction))
        self._redraw(context)

    def _redraw(self, context):
        for window in context.window_manager.windows:
            for area in window.screen.areas if window.screen else ():
                if area.type in self.redraw_area_types:
                    area.tag_redraw()


class CancelJobOperator:
    """Mix into a ``bpy.types.Operator``: ask the running job of `job_kind` to stop (its Cancel button)."""

    job_kind = None

    @classmethod
    def poll(cls, context):
        job = running(cls.job_kind)
        return job is not None and not job.cancel_requested

    def execute(self, context):
        running(self.job_kind).cancel()
        return {"FINISHED"}


@bpy.app.handlers.persistent
def _abandon_on_file_load(*_args):
    # Loading a file ends the modal operator without telling it: stop the job (finished frames
    # and files stay), take its timer and status text away, and let a new one start.
    _abandon_running()


def register():
    bpy.app.handlers.load_pre.append(_abandon_on_file_load)


def unregister():
    if _abandon_on_file_load in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.remove(_abandon_on_file_load)
    _abandon_running()  # disabling the add-on or reloading scripts ends the operator silently too


def _abandon_on_quit():
    if _running is not None:
        _running.abandon()  # Blender quits: leave nothing running (the set-up's pip, a download)


atexit.register(_abandon_on_quit)
