"""The render worker process, seen from Blender.

Renders run in ``python -m blender_latentwalk.engine worker`` (see engine/worker/process.py),
a separate process that never imports bpy: Blender's UI stays responsive, a cancel
is clean, and ending the process releases the models' memory. One worker is kept
between renders so models stay loaded (one per device when Devices names several);
"Release Models" ends them.

Bake Curves analyses in a worker of its own, ``worker --analysis`` (``Worker(python, analysis_only=True)``),
started for one bake and ended after it (bake_job.py); it needs librosa, not torch.

Requests and events are the typed messages of engine/worker/messages.py. The job (jobs.py in the UI,
or a headless script) reads the worker's event lines on Blender's main thread, without blocking in
the UI (engine_client.EventPipe): no Python thread runs in Blender's process.
"""

import atexit
import itertools
import os
import queue
import subprocess
import sys
import time

from ..engine.errors import LatentWalkError
from ..engine.worker import messages
from . import engine_client

_ids = itertools.count(1)


class Worker:
    def __init__(self, python, analysis_only=False):
        """analysis_only : a ``worker --analysis`` (Bake Curves), which never imports the render stack."""
        self.python = python
        self.what = "analysis worker" if analysis_only else "render worker"  # for messages
        engine_client.check_python(python)
        try:
            self.log_path = log_path("analysis" if analysis_only else "worker")
        except OSError as error:
            raise LatentWalkError(f"cannot make the {self.what}'s log folder ({error}): check that Blender's user "
                                  "folder is writable.") from None
        try:
            self._log = open_private(self.log_path)
        except OSError as error:
            raise LatentWalkError(f"cannot write the {self.what}'s log '{self.log_path}' ({error.strerror}): "
                                  "check that Blender's user folder is writable.") from None
        arguments = ("worker", "--analysis") if analysis_only else ("worker",)
        try:
            self.process = subprocess.Popen(
                engine_client.engine_command(python, *arguments), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=self._log, env=engine_client.engine_environment(python), text=True, encoding="utf-8",
                bufsize=1,
            )
        except OSError as error:
            self._log.close()
            raise LatentWalkError(f"the {self.what} '{python}' could not be started ({error.strerror}).") from None
        self.events = engine_client.EventPipe(self.process, messages.decode_event, end_on_refusal=True)
        self.closing = False  # set when the add-on ends it, so its exit is not a crash

    def alive(self):
        return self.process.poll() is None

    def send(self, request):
        """Write one request (a `messages` dataclass) to the worker."""
        try:
            self.process.stdin.write(messages.encode(request) + "\n")
            self.process.stdin.flush()
        except (OSError, ValueError):
            pass  # the worker has exited; its `messages.ProcessExited` event says so

    def render(self, **fields):
        """Send a `messages.RenderRequest` of ``fields`` (all but its id); returns its id."""
        request_id = next(_ids)
        self.send(messages.RenderRequest(id=request_id, **fields))
        return request_id

    def download(self, model, role=None):
        """Send a `messages.DownloadRequest`; returns its id."""
        request_id = next(_ids)
        self.send(messages.DownloadRequest(id=request_id, model=model, role=role))
        return request_id

    def analyze(self, request, features_path):
        """Send a `messages.AnalyzeRequest` (``request``: the analysis request dict); returns its id."""
        request_id = next(_ids)
        self.send(messages.AnalyzeRequest(id=request_id, request=request, features_path=features_path))
        return request_id

    def cancel(self, request_id):
        self.send(messages.CancelRequest(id=request_id))

    def stopped_message(self, status):
        """Why a job of this worker ended with the process: its exit status, its log's last line, the log."""
        tail = self.log_tail()
        return f"the {self.what} stopped (exit status {status})" + (f": {tail}" if tail else "") + (
            f". Its log: {self.log_path}")

    def log_tail(self, lines=1):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as stream:
                text = [line.strip() for line in stream if line.strip()]
        except OSError:
            return ""
        return " | ".join(text[-lines:])

    def kill(self):
        """End the worker now, without waiting: its exit event ends the job."""
        self.closing = True
        if self.alive():
            self.process.kill()
        self._log.close()  # the process holds its own copy of the file until it is gone

    def close(self, timeout_s=10.0):
        """End the worker (models and their memory go with it)."""
        self.closing = True
        if self.alive():
            self.send(messages.QuitRequest())
            try:
                self.process.stdin.close()
            except OSError:
                pass
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                try:
                    self.process.wait(5.0)
                except subprocess.TimeoutExpired:  # stuck in a driver call: leave it to the OS
                    pass
        self._log.close()


class RequestJob:
    """One request sent to a worker, watched as a job of jobs.py: what the worker says goes to the
    subclass's ``_handle(event)`` until its ``finished`` property is True.

    Subclasses set ``worker``, ``request_id`` and ``cancel_requested = False``.
    """

    def poll(self):
        """Take in what the worker has said (never blocks); True once the job is over."""
        while not self.finished:
            try:
                self._handle(self.worker.events.get_nowait())
            except queue.Empty:
                break
        return self.finished

    def wait(self):
        """Block until the job is over (tests, scripts)."""
        while not self.finished:
            self._handle(self.worker.events.get())

    def cancel(self):
        """Ask the worker to stop this request at its next step; cancel_requested is then True."""
        if not self.cancel_requested:
            self.cancel_requested = True
            self.worker.cancel(self.request_id)


def log_folder():
    """A folder only this user can read: Blender's user data folder for the add-on (never a shared
    /tmp path another user could predict, pre-create or read)."""
    import bpy

    folder = bpy.utils.user_resource("DATAFILES", path=os.path.join("latentwalk", "logs"), create=True)
    os.chmod(folder, 0o700)
    return folder


LOGS_KEPT = 20


def log_path(kind="worker"):
    """A new log, <log_folder>/<kind>-<time>-<pid>-<n>.log; only the newest LOGS_KEPT of a kind are kept."""
    folder = log_folder()
    logs = sorted(name for name in os.listdir(folder) if name.startswith(f"{kind}-") and name.endswith(".log"))
    for name in logs[:max(0, len(logs) - LOGS_KEPT + 1)]:
        try:
            os.unlink(os.path.join(folder, name))
        except OSError:
            pass
    return os.path.join(folder, f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{next(_ids)}.log")


def open_private(path):
    """Create a log file only this user can read (0600); an existing file or link there is refused."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    return os.fdopen(os.open(path, flags, 0o600), "w", encoding="utf-8")


_worker = None  # the first device's worker (slot 0); one device renders there
_more_workers = {}  # slot (1, 2, ...) -> Worker: one per further device of Devices


def get(python, slot=0):
    """The running worker for ``python`` in ``slot`` (0: the one worker; 1, 2...: the further devices of
    a several-device render), started when there is none."""
    global _worker
    worker = _worker if slot == 0 else _more_workers.get(slot)
    if worker is not None and (not worker.alive() or worker.python != python):
        worker.kill()  # another Python asked for (or a dead worker): never wait on the UI thread
        worker = None
    if worker is None:
        worker = Worker(python)
        if slot == 0:
            _worker = worker
        else:
            _more_workers[slot] = worker
    return worker


def end_workers_from(slot_count):
    """End the idle workers of slots ``slot_count`` and up (Devices got shorter): they hold a device's
    memory (VRAM) and would otherwise stay until Release Models."""
    for slot in [slot for slot in _more_workers if slot >= slot_count]:
        _more_workers.pop(slot).kill()  # idle between renders: nothing to wait for


def workers():
    """The running workers, slot 0 first."""
    return [worker for worker in [_worker] + [_more_workers[slot] for slot in sorted(_more_workers)]
            if worker is not None and worker.alive()]


def running():
    return bool(workers())


def release(timeout_s=10.0):
    """End every worker (each killed after ``timeout_s``); True when one was running."""
    global _worker
    was_running = running()
    for worker in [_worker] + list(_more_workers.values()):
        if worker is not None:
            worker.close(timeout_s)
    _worker = None
    _more_workers.clear()
    return was_running


def kill():
    """End every worker at once and forget them (a second Esc: never blocks the UI)."""
    global _worker
    for worker in [_worker] + list(_more_workers.values()):
        if worker is not None:
            worker.kill()
    _worker = None  # the next render starts fresh ones; the old ones' logs stay
    _more_workers.clear()


def worker_python(preferences_python=""):
    """The worker's interpreter: Engine Python, else Blender's own."""
    return engine_client.engine_python(preferences_python) or sys.executable


atexit.register(release)
