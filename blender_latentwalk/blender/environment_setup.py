"""Set Up Render Environment: the worker's Python, made from Blender (add-on preferences).

The engine does the work (``python -m blender_latentwalk.engine setup-env``, see
engine/setup/environment.py) in a subprocess started with Blender's own Python; this module
starts it, reads its JSON events on a thread (which never touches bpy), and shows them:
the step and what pip is doing in the status bar and the preferences, a progress count,
Esc or Cancel to stop. Everything the tools print goes to a log (0600) next to the
worker's logs. On success the new environment becomes the Engine Python; on failure or
cancel the preferences and any environment made before stay as they were.

A failure's report is one short line that says what failed first (the network, the index, the
disk) and the one thing to do; the log's path, pip's own words and the step as a terminal command
go to the console and to the preferences, which show the last failure with the PyTorch Index
field beside it and buttons that copy the log's path or open the log (`Failure`).

`SetupJob.poll` is the one step function: in the UI the set-up is a job of jobs.py, whose timer
calls it; the same operator run without a UI (scripts, ``blender -b``) calls it in a loop.
"""

import json
import os
import queue
import signal
import subprocess
import sys
import time

import bpy

from ..engine.errors import REPORT_LIMIT_CHARS, LatentWalkError, fit_report
from ..engine.setup import environment
from ..engine.worker import messages
from . import compat, engine_client, jobs, preferences, worker_client

ENVIRONMENT_FOLDER = "render-env"
CANCEL_GRACE_S = 20.0  # after this, a set-up that does not stop when asked is killed


def _setup_event(line):
    """The set-up's event on one line of its stdout (a dict, see engine/setup/environment.py), or None
    for a line that is not one."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


class SetupJob:
    """One run of the engine's set-up in a subprocess, as Blender's main thread sees it (a job of
    jobs.py)."""

    kind = "setup"

    def __init__(self, folder, torch_build="auto", torch_index_url="", python=None):
        self.folder = folder
        self.partial = environment.partial_folder(folder)
        self.python = ""  # the new environment's interpreter, once done
        self.step_index, self.step_count, self.step_title, self.step_command = 0, 0, "Starting", ""
        self.detail, self.variant_title = "", ""
        self.step_name, self.failure_kind, self.host, self.reason = "", "tool", "", ""  # see Failure
        self.torch_index = False
        self.outcome = None  # "done", "error" or "cancelled"
        self.message, self.size_bytes, self.seconds = "", 0, 0.0
        self.cancel_requested_s = None
        self.killed = False
        arguments = ["setup-env", folder, "--variant", torch_build, "--stop-on-stdin-close"]
        if torch_index_url:
            arguments += ["--torch-index-url", torch_index_url]
        self.command = engine_client.engine_command(python or compat.blender_python(), *arguments)
        try:
            self.log_path = worker_client.log_path("setup-env")
            self._log = worker_client.open_private(self.log_path)
        except OSError as error:
            raise LatentWalkError(f"cannot write the set-up's log in Blender's user folder ({error}): check that "
                                  "it is writable.") from None
        self._log.write(f"$ {environment.command_line(self.command)}\n")
        self._log.flush()
        options = {"start_new_session": True} if os.name == "posix" else {
            "creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)}
        try:  # its own process group: a kill reaches pip too
            self.process = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                            stderr=self._log, env=engine_client.engine_environment(), text=True,
                                            encoding="utf-8", bufsize=1, **options)
        except OSError as error:
            self._log.close()
            raise LatentWalkError(f"Blender's Python '{self.command[0]}' could not be started ({error.strerror}); "
                                  f"run this in a terminal instead: {self.copyable_command()}") from None
        self.events = engine_client.EventPipe(self.process, _setup_event)

    def copyable_command(self):
        """The whole set-up as one terminal command (the engine importable through PYTHONPATH)."""
        parent = engine_client.engine_environment()["PYTHONPATH"].split(os.pathsep)[0]
        if os.name == "nt":
            return f'set "PYTHONPATH={parent}" && {environment.command_line(self.command)}'
        return f"PYTHONPATH={environment.command_line([parent])} {environment.command_line(self.command)}"

    def poll(self):
        """Take in the events that arrived; True once the set-up has ended (see `outcome`)."""
        if self.cancel_requested_s is not None and not self.killed and self.outcome is None \
                and time.monotonic() - self.cancel_requested_s > CANCEL_GRACE_S:
            self.kill()  # it did not stop when asked (a tool that ignores it): end the whole group
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return self.outcome is not None and not self.process_alive()
            self._take(event)

    def _take(self, event):
        if isinstance(event, messages.ProcessExited):
            self._log.close()
            if self.outcome is None:  # it ended without saying why: killed, or crashed
                self._remove_partial()
                self.outcome = "cancelled" if self.cancel_requested_s is not None else "error"
                self.message = self.message or f"the set-up ended unexpectedly (exit status {event.status})"
            return
        kind = event.get("event")
        if event.get("version") != environment.PROTOCOL_VERSION:
            self.outcome, self.message = "error", (
                f"the engine's set-up speaks protocol version {event.get('version')}, this add-on version "
                f"{environment.PROTOCOL_VERSION}: reinstall the add-on")
            self.kill()
            return
        if kind == "start":
            self.variant_title = event.get("variant_title", "")
        elif kind == "step":
            self.step_index, self.step_count = int(event["index"]), int(event["count"])
            self.step_title, self.step_command, self.detail = event["title"], event.get("command", ""), ""
            self.step_name = event.get("name", "")
        elif kind == "detail":
            self.detail = event.get("text", "")
        elif kind == "done":
            self.outcome, self.python = "done", event["python"]
            self.size_bytes, self.seconds = int(event.get("size_bytes", 0)), float(event.get("seconds", 0.0))
        elif kind == "error":
            self.outcome, self.step_title = "error", event.get("step", self.step_title)
            self.message, self.step_command = event.get("message", ""), event.get("command") or self.step_command
            self.failure_kind, self.host = event.get("kind", "tool"), event.get("host", "")
            self.torch_index = bool(event.get("torch_index"))
            self.reason, self.step_name = event.get("reason", self.message), event.get("step_name", self.step_name)
        elif kind == "cancelled":
            self.outcome = "cancelled"

    def process_alive(self):
        return self.process.poll() is None

    @property
    def cancel_requested(self):
        return self.cancel_requested_s is not None

    def progress_fraction(self):
        """The share of the steps done, or None before the first step."""
        return self.step_index / self.step_count if self.step_count else None

    def cancel(self):
        """Ask the set-up to stop: it ends its tool and removes the half-made environment."""
        if self.cancel_requested_s is None:
            self.cancel_requested_s = time.monotonic()
            try:
                self.process.stdin.close()
            except OSError:
                pass

    def abandon(self):
        """Nobody watches the set-up any more (Blender quits, a file load, the add-on disabled): end it now."""
        self.kill()

    def kill(self):
        """End the set-up and its tools at once (abandoned, or it ignored a cancel)."""
        self.killed = True
        if self.process_alive():
            try:
                if os.name == "posix":
                    os.killpg(self.process.pid, signal.SIGKILL)
                else:
                    subprocess.run(["taskkill", "/T", "/F", "/PID", str(self.process.pid)], capture_output=True)
            except OSError:
                self.process.kill()
        self._remove_partial()

    def _remove_partial(self):
        import shutil

        shutil.rmtree(self.partial, ignore_errors=True)

    def status_line(self):
        """What the status bar says while it runs."""
        if self.cancel_requested_s is not None:
            return "Latent Walk set-up: cancelling, removing the unfinished environment..."
        count = f" {self.step_index + 1}/{self.step_count}" if self.step_count else ""
        detail = f": {self.detail}" if self.detail else ""
        return f"Latent Walk set-up{count}: {self.step_title}{detail}"

    def result_message(self):
        """One short line for the report once it has ended: what happened first, then what to do (the
        detail is in `details` and, after a failure, in the preferences)."""
        if self.outcome == "done":
            overridden = (f" (but {engine_client.ENV_ENGINE_PYTHON} overrides it)"
                          if os.environ.get(engine_client.ENV_ENGINE_PYTHON) else "")
            return fit_report(f"Latent Walk: set-up done: render environment ready ({self.size_bytes / 1e9:.1f} GB, "
                              f"{self.seconds / 60:.1f} min, PyTorch {self.variant_title}); it is the Engine Python "
                              f"now{overridden}")
        if self.outcome == "cancelled":
            return "Latent Walk: set-up cancelled: nothing was changed."
        return self.failure().report()

    def failure(self):
        """The `Failure` of a set-up that failed."""
        return Failure(step=self.step_title, step_name=self.step_name, kind=self.failure_kind, host=self.host,
                       torch_index=self.torch_index,
                       message=self.message.rstrip("."), reason=self.reason, log_path=self.log_path,
                       command=self.step_command or self.copyable_command())

    def details(self):
        """Everything about how it ended, for the console: the report, the log, pip's words, the command."""
        lines = [self.result_message(), f"  log: {self.log_path}"]
        if self.outcome == "done":
            lines.append(f"  Engine Python: {self.python}")
        elif self.outcome == "error":
            lines += [f"  what failed: {self.message}", f"  step: {self.step_title}", f"  pip said: {self.reason}",
                      f"  to run this step in a terminal: {self.step_command or self.copyable_command()}"]
        return "\n".join(lines)


class Failure:
    """A set-up that failed, as the report and the preferences show it: what failed first, the one
    thing to do, and the detail (the log, pip's words, the step as a command)."""

    def __init__(self, step, step_name, kind, host, message, reason, log_path, command, torch_index=False):
        self.step, self.step_name, self.kind, self.host = step, step_name, kind, host
        self.torch_index = torch_index  # the index that failed is PyTorch's (not pip's own)
        self.message, self.reason, self.log_path, self.command = message, reason, log_path, command

    @property
    def torch_index_to_blame(self):
        """The PyTorch index (not PyPI) could not be reached or lacks the build: PyTorch Index is the fix."""
        return self.torch_index and self.kind in ("network", "index")

    def advice(self):
        """The one thing to do."""
        if self.torch_index_to_blame:
            return ("Set PyTorch Index to 'default' and set up again" if self.kind == "network" else
                    "Set PyTorch Index to 'default' or change PyTorch Build")
        if self.kind == "network":
            return "Check the network (or proxy) and press Set Up again"
        if self.kind == "index":
            return "Check pip's index settings (PIP_INDEX_URL, pip.conf) and press Set Up again"
        if self.kind == "disk":
            return "Free space on the disk of Blender's user folder and press Set Up again"
        return "Its log says why: Copy Log Path in the add-on's preferences"

    def report(self):
        """One line that fits the report popup: what failed first, then the one thing to do (the why in
        parentheses only where there is room)."""
        what = self.message if self.kind != "tool" else f"'{self.step}': {self.message}"
        advice = self.advice()
        room = REPORT_LIMIT_CHARS - len(f"Latent Walk: set-up failed: . {advice}.")
        what = fit_report(what, max(40, room))
        return f"Latent Walk: set-up failed: {what}{'' if what.endswith('...') else '.'} {advice}."


def environment_folder(package=preferences.ADDON_ID):
    return os.path.join(compat.addon_data_folder(package), ENVIRONMENT_FOLDER)


def start(context):
    """Start the set-up with the preferences' choices as the running job (the caller checked `refusal`)."""
    prefs = preferences.get()
    folder = environment_folder()
    current = engine_client.engine_python(prefs.engine_python)
    if current and os.path.abspath(current).startswith(os.path.abspath(folder) + os.sep):
        worker_client.release()  # the worker runs from the environment this replaces
    job = SetupJob(folder, getattr(prefs, "torch_build", "auto"), getattr(prefs, "torch_index_url", ""))
    jobs.begin(job)
    return job


def finish(context, job):
    """Apply the outcome: the new environment becomes the Engine Python only when it is done. The whole
    story goes to the console; a failure stays in the preferences until the next set-up."""
    jobs.end(job)
    print(job.details(), file=sys.stderr, flush=True)
    preferences.remember_setup_failure(job.failure() if job.outcome == "error" else None)
    if job.outcome == "done":
        prefs = preferences.get()
        prefs.engine_python = job.python
        compat.mark_preferences_changed(context)


def refusal(context):
    """Why the set-up may not start now ("" when it may)."""
    if not compat.online_access_allowed():
        return ("Latent Walk: set-up refused: online access is off. Nothing was changed. Tick Allow Online Access "
                "(Preferences > System > Network), or set Engine Python.")
    if jobs.running("setup") is not None:
        return "Latent Walk: a set-up is already running (see the status bar)."
    if jobs.running() is not None:
        # The set-up may replace the Python the worker runs in: not under a running render or download.
        return ("Latent Walk: a render or a download is running in the worker: let it finish or cancel it, then "
                "set up the render environment. Nothing was changed.")
    return ""


class LATENTWALK_OT_setup_render_environment(jobs.JobOperator, bpy.types.Operator):
    """Create a Python environment for the render worker (PyTorch for this machine's GPU, diffusers, BigGAN, librosa: downloads 1-5 GB) in the add-on's user folder, and make it the Engine Python. Esc cancels"""

    bl_idname = "latentwalk.setup_render_environment"
    bl_label = "Set Up Render Environment"
    redraw_area_types = ("PREFERENCES",)  # the preferences show the step too
    progress_bar = True

    def start_job(self, context):
        why = refusal(context)
        if why:
            self.report({"ERROR"}, why)
            return None
        return start(context)

    def end_job(self, context, job):
        finish(context, job)
        message = job.result_message()
        if job.outcome == "done":
            self.report({"INFO"}, message)
            return {"FINISHED"}
        self.report({"WARNING"} if job.outcome == "cancelled" else {"ERROR"}, message)
        return {"CANCELLED"}

    def execute(self, context):
        # Scripts and background mode: the same job and step function, to the end.
        job = self.start_reported(context)
        if job is None:
            return {"CANCELLED"}
        shown = None
        while not job.poll():
            if bpy.app.background and job.status_line() != shown:
                shown = job.status_line()
                print(shown, flush=True)
            time.sleep(0.2)
        return self.end_job(context, job)


class LATENTWALK_OT_setup_render_environment_cancel(jobs.CancelJobOperator, bpy.types.Operator):
    """Stop the set-up; the unfinished environment is removed and the Engine Python stays as it was"""

    bl_idname = "latentwalk.setup_render_environment_cancel"
    bl_label = "Cancel Set-Up"
    job_kind = "setup"


class LATENTWALK_OT_copy_text(bpy.types.Operator):
    """Copy this text to the clipboard"""

    bl_idname = "latentwalk.copy_text"
    bl_label = "Copy"
    bl_options = {"INTERNAL"}

    text: bpy.props.StringProperty(name="Text")
    what: bpy.props.StringProperty(name="What", description="What the text is, for the report")

    @classmethod
    def description(cls, context, properties):
        return f"Copy {properties.what or 'this'} to the clipboard: {properties.text}"

    def execute(self, context):
        context.window_manager.clipboard = self.text
        self.report({"INFO"}, fit_report(f"Latent Walk: copied {self.what or 'it'}: {self.text}"))
        return {"FINISHED"}


classes = (LATENTWALK_OT_setup_render_environment, LATENTWALK_OT_setup_render_environment_cancel,
           LATENTWALK_OT_copy_text)
