"""Models from Blender: which ones are on this machine, downloading a missing one in the worker, the
stand-ins, and the check a render makes before its worker loads anything.

The list comes from the engine's Python (``python -m blender_latentwalk.engine models --json``),
where huggingface_hub and pytorch-pretrained-biggan are, and is kept until the next Refresh or
download. A download runs in the render worker (worker_client.py), a job of jobs.py like Render
Frames, with bytes in the status bar and Esc or Cancel to stop it. Nothing goes
to the network while Blender's "Allow Online Access" is off (4.2+): the operator says why and does
nothing.

Use Stand-in Models (only ever by that click: never a silent fallback) makes untrained tiny models
once, in the Engine Python (``make-tiny-models``, a job: a few seconds), into the add-on's data
folder, and points every model field of the scene at them; the panels and every render's report
then say that the video will be noise. Use Own Models puts the fields back as they were.

Messages say what failed first ("Download failed: the network: ...", "Model missing: ..."), fit
one line of the report popup, and print the whole of a long one to the console.
"""

import json
import os
import shutil
import subprocess
import sys
import time

import bpy
from bpy.props import StringProperty

from ..engine.errors import REPORT_LIMIT_CHARS, LatentWalkError, fit_report
from ..engine.generators import stylegan, stylegan_files
from ..engine.setup import models as engine_models
from ..engine.worker import messages
from . import compat, engine_client, jobs, output, preferences, worker_client

OFFLINE_MESSAGE = ("Download refused: online access is off. Tick Preferences > System > Network > Allow Online "
                   "Access, then press Download again")  # the model: the one whose button was pressed
STAND_IN_FOLDER = "stand-in-models"  # in the add-on's data folder
STAND_IN_BIGGAN, STAND_IN_PIPELINE = "biggan-tiny-UNTRAINED", "sd-tiny-UNTRAINED"  # as make-tiny-models names them
STAND_IN_STYLEGAN = "stylegan-tiny-UNTRAINED"  # the folder make-tiny-models writes the StyleGAN stand-ins into
STAND_INS_BEFORE = "latentwalk_models_before_stand_ins"  # the scene's fields before Use Stand-in Models (JSON)
STAND_IN_WARNING = "Stand-in models: the video will be noise"
# What a missing model's refusal says to do, in the UI: a name can be downloaded, a folder is picked again.
STAND_IN_ADVICE = "press Download in Models, or Use Stand-in Models to try with noise"
FOLDER_ADVICE = "pick another with the field's folder button, or Use Stand-in Models to try with noise"

# The latest listing: {"states": [ModelState], "when": "HH:MM:SS", "error": ""}, or None before the first.
_listing = None


def models_in_use(scene, preview=False):
    """[(name, role)] of the scene's render settings: BigGAN, the img2img model, the Tiny VAE (only BigGAN
    for a preview); a folder picked as "//..." as the absolute path the engine gets."""
    settings = scene.latentwalk
    used = [(output.model_name(settings.walk.model), engine_models.BIGGAN)]
    if not preview:
        used += [(output.model_name(settings.diffusion.model), engine_models.PIPELINE),
                 (output.model_name(settings.diffusion.tiny_vae), engine_models.VAE)]
    return used


def report_text(message):
    """``message`` as one line that fits the report popup (`fit_report`); a longer one is printed whole to
    the console."""
    fitted = fit_report(message)
    if fitted != " ".join(message.split()):
        print(message, file=sys.stderr, flush=True)
    return fitted


def refuse_missing(scene, preview, python):
    """Raise LatentWalkError "Model missing: ..." when a model the render needs is not on this machine,
    before any worker starts: the Engine Python looks (its caches, as the worker would) in a fraction of
    a second, where the worker would say so only after importing torch (seconds; half a minute on a
    cold disk with a CUDA build). The Models panel's list follows what it found (a missing model gets
    its Download button)."""
    global _listing
    try:
        states = engine_client.list_models(python, models_in_use(scene))
    except LatentWalkError as error:  # a check that cannot run stops nothing: the worker says what is wrong
        print(f"Latent Walk: the models were not checked before the render ({error})", file=sys.stderr)
        return
    _listing = {"states": states, "when": time.strftime("%H:%M:%S"), "error": ""}
    by_name = {state.name: state for state in states}
    for name, _role in models_in_use(scene, preview):
        found = by_name.get(name)
        if found is not None and not found.present:
            if bpy.app.background:
                what_to_do = ("get it with the engine CLI's 'models download', or give a model folder"
                              if found.downloadable else "give a folder with the model's files")
            else:
                what_to_do = STAND_IN_ADVICE if found.downloadable else FOLDER_ADVICE
            print(f"Latent Walk: {found.summary()}", file=sys.stderr, flush=True)
            raise LatentWalkError(engine_models.missing_message(found, what_to_do))


def stand_ins_in_use(scene, preview=False):
    """The scene's models that are untrained stand-ins: [(role title, name)]."""
    return [("StyleGAN" if stylegan.is_model_file(name) else engine_models.ROLE_TITLES[role], name)
            for name, role in models_in_use(scene, preview)
            if name and engine_models.STAND_IN_MARK in os.path.basename(os.path.normpath(name))]


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


class DownloadJob(worker_client.RequestJob):
    """One download request to the worker, and what has come back of it (a job of jobs.py in the UI). A
    cancel stops at the next chunk; complete files stay, and the next download continues."""

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
            self.error = f"Download failed: {self.worker.stopped_message(event.status)}"

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
        """One line for the report; raises LatentWalkError on a failed download, its message starting with
        "Download failed" (or "Download refused"), fitted to the report (all of it in the console)."""
        if self.error is not None:
            error = self.error if self.error.startswith("Download ") else f"Download failed: {self.error}"
            raise LatentWalkError(report_text(error))
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
        self.report({"ERROR"}, f"Latent Walk: {OFFLINE_MESSAGE}.")
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
    size: StringProperty(name="Size", description="The model's size on disk, as the tooltip says it")

    @classmethod
    def description(cls, context, properties):
        # The tooltip says where and how big: the sidebar is too narrow for either.
        return f"{properties.size} in {properties.path}" if properties.size else properties.path

    def execute(self, context):
        folder = self.path if os.path.isdir(self.path) else os.path.dirname(self.path)
        if not os.path.isdir(folder):
            self.report({"ERROR"}, f"Latent Walk: '{folder}' does not exist (yet).")
            return {"CANCELLED"}
        bpy.ops.wm.path_open(filepath=folder)
        return {"FINISHED"}


class LATENTWALK_OT_choose_model_file(bpy.types.Operator):
    """Choose a StyleGAN2 / StyleGAN3 model file: a .pkl from NVIDIA's training code or a rosinality .pt (read
    as data: no code in the file runs)"""

    bl_idname = "latentwalk.choose_model_file"
    bl_label = "Choose StyleGAN File"
    bl_options = {"REGISTER", "UNDO"}

    filepath: StringProperty(subtype="FILE_PATH", options={"SKIP_SAVE"})
    filter_glob: StringProperty(default="*.pkl;*.pt;*.pth", options={"HIDDEN", "SKIP_SAVE"})
    relative_path: bpy.props.BoolProperty(name="Relative Path", description="Store the path relative to the .blend",
                                          default=True)

    def invoke(self, context, event):
        current = output.model_name(context.scene.latentwalk.walk.model)
        if os.path.isfile(current):
            self.filepath = current
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        path = self.filepath
        if not (os.path.isfile(path) and stylegan.is_model_file(path)):
            self.report({"ERROR"}, f"Latent Walk: '{os.path.basename(path) or path}' is not a .pkl, .pt or .pth file: "
                        "choose a StyleGAN model file.")
            return {"CANCELLED"}
        if self.relative_path:
            path = output.relative_to_blend(path)
        context.scene.latentwalk.walk.model = path
        return {"FINISHED"}


_kinds_seen = {}  # (path, size, mtime) -> "StyleGAN2" / "StyleGAN3": the panel asks on every redraw


def is_stylegan_file(walk):
    """Whether the walk's model names a StyleGAN file (by its suffix), there or not."""
    return stylegan.is_model_file(output.model_name(walk.model))


def stylegan_kind(walk):
    """"StyleGAN2", "StyleGAN3" or None (BigGAN, or a file that is not there) of the walk's model."""
    path = output.model_name(walk.model)
    if not stylegan.is_model_file(path):
        return None
    try:
        status = os.stat(path)
    except OSError:
        return None
    key = (path, status.st_size, status.st_mtime_ns)
    if key not in _kinds_seen:
        _kinds_seen.clear()
        _kinds_seen[key] = stylegan_files.peek_kind(path)
    return _kinds_seen[key]


# ---------------------------------------------------------------- stand-ins


def stand_in_folder():
    """Where Use Stand-in Models keeps them: the add-on's data folder (made once, kept)."""
    return os.path.join(compat.addon_data_folder(preferences.ADDON_ID), STAND_IN_FOLDER)


def stand_ins_ready(folder):
    """True when every stand-in in ``folder`` is complete (every file their loaders read; the StyleGAN files too:
    a folder made before StyleGAN came is made again)."""
    stylegan_files_there = all(os.path.isfile(stylegan_stand_in(folder, kind)) for kind in stylegan.TINY_NAMES)
    return stylegan_files_there and not (
        engine_models.missing_in_folder(os.path.join(folder, STAND_IN_BIGGAN), engine_models.BIGGAN)
        or engine_models.missing_in_folder(os.path.join(folder, STAND_IN_PIPELINE), engine_models.PIPELINE))


def stylegan_stand_in(folder, kind):
    """The StyleGAN stand-in file of ``kind`` (a key of `stylegan.TINY_NAMES`) that make-tiny-models writes."""
    return os.path.join(folder, STAND_IN_STYLEGAN, stylegan.TINY_NAMES[kind])


class StandInJob:
    """Making the stand-ins with the Engine Python's ``make-tiny-models`` into ``folder``.partial, renamed
    to ``folder`` once complete (a job of jobs.py in the UI: torch and diffusers take seconds to import)."""

    kind = "stand-ins"

    def __init__(self, folder, python):
        self.folder, self.partial = folder, folder + ".partial"
        shutil.rmtree(self.partial, ignore_errors=True)
        engine_client.check_python(python)
        self.log_path = worker_client.log_path("stand-ins")
        self.command = engine_client.engine_command(python, "make-tiny-models", self.partial)
        self.started_s, self.cancel_requested = time.monotonic(), False
        self.outcome, self.message = None, ""  # "done", "error" or "cancelled"
        with worker_client.open_private(self.log_path) as log:
            try:
                self.process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=log,
                                                stderr=subprocess.STDOUT, env=engine_client.engine_environment())
            except OSError as error:
                raise LatentWalkError(f"Stand-ins failed: the Engine Python '{python}' could not be started "
                                      f"({error.strerror}).") from None

    def poll(self):
        """True once it has ended (see `outcome`); the stand-ins are in place when it is "done"."""
        if self.outcome is None and self.process.poll() is not None:
            self._settle(self.process.returncode)
        return self.outcome is not None

    def wait(self):
        self.process.wait()
        return self.poll()

    def _settle(self, status):
        if self.cancel_requested:
            self.outcome = "cancelled"
        elif status == 0 and stand_ins_ready(self.partial):
            shutil.rmtree(self.folder, ignore_errors=True)
            os.replace(self.partial, self.folder)
            self.outcome = "done"
            return
        else:
            self.outcome, self.message = "error", self._why(status)
        shutil.rmtree(self.partial, ignore_errors=True)

    def _why(self, status):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as stream:
                lines = [line.strip() for line in stream if line.strip()]
        except OSError:
            lines = []
        print("".join(line + "\n" for line in lines[-20:]) + f"Latent Walk: the stand-ins' log: {self.log_path}",
              file=sys.stderr, flush=True)
        for line in reversed(lines):
            if "No module named" in line:  # Blender's own Python, before the set-up
                module = line.split("No module named", 1)[1].strip(" '\"")
                return (f"Stand-ins failed: the Engine Python has no {module}. Press Set Up Render Environment in "
                        "the add-on's preferences first.")
        last = lines[-1] if lines else f"exit status {status}"
        return fit_report(f"Stand-ins failed: {last}", REPORT_LIMIT_CHARS - 45) + ". Its log's path is in the console."

    def cancel(self):
        if not self.cancel_requested:
            self.cancel_requested = True
            if self.process.poll() is None:
                self.process.kill()

    def abandon(self):
        self.cancel()

    def status_line(self):
        seconds = int(time.monotonic() - self.started_s)
        return f"Latent Walk: making the stand-in models (noise, for trying the path), {seconds} s..."


def use_stand_ins(scene, folder):
    """Point every model field of ``scene`` at the stand-ins in ``folder``; what they held before is kept
    in the scene (the first time) for Use Own Models."""
    walk, diffusion = scene.latentwalk.walk, scene.latentwalk.diffusion
    if STAND_INS_BEFORE not in scene:
        scene[STAND_INS_BEFORE] = json.dumps({"biggan": walk.model, "pipeline": diffusion.model,
                                              "vae": diffusion.tiny_vae})
    kind = stylegan_kind(walk) or ("StyleGAN2" if is_stylegan_file(walk) else None)
    if kind is None:
        walk.model = os.path.join(folder, STAND_IN_BIGGAN)
    else:  # the artist chose StyleGAN: its stand-in, of the same kind (the panel keeps that kind's settings)
        walk.model = stylegan_stand_in(folder, "stylegan3-t" if kind == "StyleGAN3" else "stylegan2")
    diffusion.model = os.path.join(folder, STAND_IN_PIPELINE)
    diffusion.tiny_vae = ""  # the stand-in pipeline has its own (tiny, untrained) VAE


def use_own_models(scene):
    """Put the model fields back as they were before Use Stand-in Models; False when nothing was kept."""
    kept = scene.get(STAND_INS_BEFORE)
    if kept is None:
        return False
    before = json.loads(kept)
    scene.latentwalk.walk.model = before["biggan"]
    scene.latentwalk.diffusion.model = before["pipeline"]
    scene.latentwalk.diffusion.tiny_vae = before["vae"]
    del scene[STAND_INS_BEFORE]
    return True


class LATENTWALK_OT_use_stand_in_models(jobs.JobOperator, bpy.types.Operator):
    """Point every model field at untrained tiny stand-ins (made once, in seconds): the whole path runs without a GPU or a network, and the video is noise"""

    bl_idname = "latentwalk.use_stand_in_models"
    bl_label = "Use Stand-in Models"
    bl_options = {"UNDO"}

    @classmethod
    def poll(cls, context):
        return not jobs.busy()

    def start_job(self, context):
        """The job that makes the stand-ins; None when they were made before (then they are in use now)."""
        self._scene, self._used = context.scene, False
        folder = stand_in_folder()
        if stand_ins_ready(folder):
            self._finish(folder)
            return None
        return StandInJob(folder, worker_client.worker_python(preferences.get().engine_python))

    def end_job(self, context, job):
        if job.outcome != "done":
            self.report({"WARNING"} if job.outcome == "cancelled" else {"ERROR"},
                        "Latent Walk: " + (job.message or "Stand-ins cancelled: nothing was changed."))
            return {"CANCELLED"}
        self._finish(job.folder)
        return {"FINISHED"}

    def _finish(self, folder):
        use_stand_ins(self._scene, folder)
        self._used = True
        _refresh_quietly(self._scene)
        self.report({"WARNING"}, f"Latent Walk: {STAND_IN_WARNING}: every model field now names an untrained "
                                 "stand-in. Use Own Models puts them back.")

    def invoke(self, context, event):
        if stand_ins_ready(stand_in_folder()):  # made before: nothing to wait for
            return self.execute(context)
        return super().invoke(context, event)

    def execute(self, context):
        # Scripts, background mode, and stand-ins made before: the same, blocking.
        job = self.start_reported(context)
        if job is None:
            return {"FINISHED"} if self._used else {"CANCELLED"}
        job.wait()
        return self.end_job(context, job)


class LATENTWALK_OT_use_own_models(bpy.types.Operator):
    """Put the model fields back as they were before Use Stand-in Models"""

    bl_idname = "latentwalk.use_own_models"
    bl_label = "Use Own Models"
    bl_options = {"UNDO"}

    def execute(self, context):
        if not use_own_models(context.scene):
            self.report({"WARNING"}, "Latent Walk: nothing to put back: set the model fields in Walk and Render.")
            return {"CANCELLED"}
        _refresh_quietly(context.scene)
        self.report({"INFO"}, "Latent Walk: the model fields are as they were before the stand-ins.")
        return {"FINISHED"}


def _refresh_quietly(scene):
    try:
        refresh(scene)
    except (LatentWalkError, ReferenceError):
        pass  # the panel's list says why at the next Refresh


def draw_stand_in_warning(layout, context, preview=False):
    """A warning row where the scene renders with stand-ins (the Walk, Render and Models panels)."""
    if stand_ins_in_use(context.scene, preview):
        row = layout.row(align=True)
        row.alert = True
        row.label(text="Stand-ins: noise", icon="ERROR")
        row.operator("latentwalk.use_own_models", text="", icon="LOOP_BACK")


def draw_stand_ins(layout, context):
    """The Models panel's stand-in row: the warning while they are in use, else the button (its job's
    status while it makes them)."""
    job = jobs.running("stand-ins")
    if job is not None:
        layout.label(text="Making stand-ins...", icon="SORTTIME")
    elif stand_ins_in_use(context.scene):
        column = layout.column(align=True)
        column.alert = True
        column.label(text="Stand-in models:", icon="ERROR")
        column.label(text="the video will be noise", icon="BLANK1")
        layout.operator("latentwalk.use_own_models", icon="LOOP_BACK")
    else:
        layout.operator("latentwalk.use_stand_in_models", icon="GHOST_ENABLED")


def draw_model_row(row, state):
    """One model of the list: its state icon and label, and a button: the folder (its tooltip says the
    size and where) or Download. No size column: the label keeps the whole width it needs ("BigGAN 512",
    "SDXL Turbo") in the Graph Editor's default sidebar."""
    row.label(text=state.label, icon="CHECKMARK" if state.present else "ERROR")
    if state.present or not state.downloadable:
        folder = row.operator("latentwalk.model_folder", text="", icon="FILE_FOLDER", emboss=False)
        folder.path = state.path
        folder.size = engine_models.format_size(state.size_bytes) if state.present else "missing"
    else:
        download = row.operator("latentwalk.model_download", text="", icon="IMPORT")
        download.name, download.role = state.name, state.role


classes = (LATENTWALK_OT_model_download, LATENTWALK_OT_model_download_cancel, LATENTWALK_OT_models_refresh,
           LATENTWALK_OT_model_folder, LATENTWALK_OT_use_stand_in_models, LATENTWALK_OT_use_own_models,
           LATENTWALK_OT_choose_model_file)


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
