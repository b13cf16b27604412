"""Models from Blender: which ones are on this machine, and downloading a missing one in the worker.

The list comes from the engine's Python (``python -m blender_latentwalk.engine models --json``),
where huggingface_hub and pytorch-pretrained-biggan are, and is kept until the next Refresh or
download. A download runs in the render worker (worker_client.py), a job of jobs.py like Render
Frames, with bytes in the status bar and Esc or Cancel to stop it. Nothing goes
to the network while Blender's "Allow Online Access" is off (4.2+): the operator says why and does
nothing.
"""

import os
import queue
import time

import bpy
from bpy.props import StringProperty

from ..engine.errors import LatentWalkError
from ..engine.setup import models as engine_models
from ..engine.worker import messages
from . import compat, engine_client, jobs, preferences, worker_client

OFFLINE_MESSAGE = ("online access is off (Preferences > System > Network > Allow Online Access): nothing was "
                   "downloaded. Allow it and press Download again, or run `python -m blender_latentwalk.engine "
                   "models download {name}` on a machine with network access")

# The latest listing: {"states": [ModelState], "when": "HH:MM:SS", "error": ""}, or None before the first.
_listing = None


def models_in_use(scene):
    """[(name, role)] of the scene's render settings: BigGAN, the img2img model, the Tiny VAE."""
    settings = scene.latentwalk
    return [(settings.walk.model, engine_models.BIGGAN), (settings.diffusion.model, engine_models.PIPELINE),
            (settings.diffusion.tiny_vae, engine_models.VAE)]


def refresh(scene, python=None):
    """List the scene's models and the catalogue, as the engine's Python sees them; returns the states."""
    global _listing
    python = worker_client.worker_python(preferences.get().engine_python) if python is None else python
    try:
        states = engine_client.list_models(python, models_in_use(scene))
        _listing = {"states": states, "when": time.strftime("%H:%M:%S"), "error": ""}
    except LatentWalkError as error:
        _listing = {"states": [], "when": time.strftime("%H:%M:%S"), "error": str(error)}
        raise
    return states


def listing():
    return _listing


class DownloadJob:
    """One download request to the worker, and what has come back of it (a job of jobs.py in the UI)."""

    kind = "download"

    def __init__(self, name, role, python=None):
        self.name, self.role = name, role
        self.label = engine_models.label_of(name)
        if python is None:
            python = worker_client.worker_python(preferences.get().engine_python)
        self.worker = worker_client.get(python)
        self.request_id = self.worker.download(model=name, role=role)
        self.done, self.total = 0, 0
        self.state, self.stopped, self.error = None, False, None
        self.cancel_requested = False

    @property
    def finished(self):
        return self.state is not None or self.error is not None

    def _handle(self, event):
        """Take in one event (a `messages` dataclass) of the worker."""
        same = messages.request_id_of(event) in (self.request_id, None)
        if isinstance(event, messages.Progress) and same:
            self.done, self.total = event.done, event.total
        elif isinstance(event, messages.DownloadDone) and same:
            self.stopped = event.stopped
            self.state = engine_models.ModelState.from_dict(event.model)
        elif isinstance(event, (messages.RequestFailed, messages.Fatal)) and same:
            self.error = event.message
        elif isinstance(event, messages.ProcessExited) and not self.finished:
            tail = self.worker.log_tail()
            self.error = (f"the worker stopped (exit status {event.status})" + (f": {tail}" if tail else "")
                          + f". Its log: {self.worker.log_path}")

    def poll(self):
        """Take in what the worker has said (never blocks); True once the job is over."""
        while not self.finished:
            try:
                self._handle(self.worker.events.get_nowait())
            except queue.Empty:
                break
        return self.finished

    def wait(self):
        while not self.finished:
            self._handle(self.worker.events.get())

    def cancel(self):
        """Stop at the next chunk; complete files stay, and the next download continues."""
        if not self.cancel_requested:
            self.cancel_requested = True
            self.worker.cancel(self.request_id)

    def abandon(self):
        """Nobody watches this download any more (a file load, the add-on disabled): stop it."""
        if not self.finished:
            self.cancel()

    def status_line(self):
        if not self.total:
            text = f"Latent Walk: {self.label}: starting download..."
        else:
            text = (f"Latent Walk: {self.label}: {engine_models.format_size(self.done)} of "
                    f"{engine_models.format_size(self.total)} ({int(100 * self.done / self.total)}%)")
        return text + (" (cancelling)" if self.cancel_requested else "")

    def summary(self):
        """One line for the report; raises LatentWalkError on a failed download."""
        if self.error is not None:
            raise LatentWalkError(self.error)
        if self.stopped:
            return f"{self.label}: download cancelled; nothing was added. Download again to continue."
        return f"{self.label} downloaded: {engine_models.format_size(self.state.size_bytes)} in {self.state.path}"


def _refresh_after_download(scene):
    """The listing follows a download (what is on disk now, not what was remembered)."""
    try:
        refresh(scene)
    except (LatentWalkError, ReferenceError):
        pass


class LATENTWALK_OT_model_download(jobs.JobOperator, bpy.types.Operator):
    """Download this model into its cache (Hugging Face's, or pytorch-pretrained-biggan's for BigGAN) in the render worker. Esc cancels; the next download continues"""

    bl_idname = "latentwalk.model_download"
    bl_label = "Download Model"

    name: StringProperty(name="Model", description="A catalogue name or Hugging Face hub id")
    role: StringProperty(name="Role", description="biggan, pipeline or vae", default="")

    @classmethod
    def poll(cls, context):
        return not jobs.busy()  # renders and downloads share the worker's event stream: one at a time

    @classmethod
    def description(cls, context, properties):
        return f"Download {properties.name} (Esc cancels; an interrupted download continues next time)"

    def _refused(self):
        """Report why nothing is downloaded (online access off); True when refused."""
        if compat.online_access_allowed():
            return False
        self.report({"ERROR"}, "Latent Walk: " + OFFLINE_MESSAGE.format(name=self.name))
        return True

    def execute(self, context):
        # Scripts and background mode: the same download, blocking.
        job = self.start_reported(context)
        if job is None:
            return {"CANCELLED"}
        try:
            job.wait()
            return self.end_job(context, job)
        except LatentWalkError as error:
            self.report({"ERROR"}, f"Latent Walk: {error}")
            return {"CANCELLED"}

    def start_job(self, context):
        if self._refused():
            return None
        self._scene = context.scene  # the listing after it is of the scene it started in
        return DownloadJob(self.name, self.role or None)

    def end_job(self, context, job):
        summary = job.summary()  # raises LatentWalkError for a failed download
        _refresh_after_download(self._scene)
        self.report({"INFO"}, f"Latent Walk: {summary}")
        return {"FINISHED"}


class LATENTWALK_OT_model_download_cancel(jobs.CancelJobOperator, bpy.types.Operator):
    """Stop the download; complete files stay, and the next download continues"""

    bl_idname = "latentwalk.model_download_cancel"
    bl_label = "Cancel Download"
    job_kind = "download"


class LATENTWALK_OT_models_refresh(bpy.types.Operator):
    """Look again at which models are on this machine, their size and where (no network)"""

    bl_idname = "latentwalk.models_refresh"
    bl_label = "Refresh Models"

    def execute(self, context):
        try:
            states = refresh(context.scene)
        except LatentWalkError as error:
            self.report({"ERROR"}, f"Latent Walk: {error}")
            return {"CANCELLED"}
        here = sum(s.present for s in states)
        self.report({"INFO"}, f"Latent Walk: {here} of {len(states)} models on this machine")
        return {"FINISHED"}


class LATENTWALK_OT_model_folder(bpy.types.Operator):
    """Open the folder the model is in"""

    bl_idname = "latentwalk.model_folder"
    bl_label = "Open Model Folder"

    path: StringProperty(name="Path", subtype="FILE_PATH")

    @classmethod
    def description(cls, context, properties):
        return properties.path  # the tooltip says where: the sidebar is too narrow for the path

    def execute(self, context):
        folder = self.path if os.path.isdir(self.path) else os.path.dirname(self.path)
        if not os.path.isdir(folder):
            self.report({"ERROR"}, f"Latent Walk: '{folder}' does not exist (yet).")
            return {"CANCELLED"}
        bpy.ops.wm.path_open(filepath=folder)
        return {"FINISHED"}


classes = (LATENTWALK_OT_model_download, LATENTWALK_OT_model_download_cancel, LATENTWALK_OT_models_refresh,
           LATENTWALK_OT_model_folder)


@bpy.app.handlers.persistent
def _forget_listing_on_file_load(*_args):
    global _listing
    _listing = None  # the next file's scene names other models


def register():
    bpy.app.handlers.load_pre.append(_forget_listing_on_file_load)


def unregister():
    if _forget_listing_on_file_load in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.remove(_forget_listing_on_file_load)
    _forget_listing_on_file_load()
