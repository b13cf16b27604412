"""Running the engine from Blender: in Blender's own Python, or in another one.

Blender's bundled Python rarely has librosa or torch, and installing them into it
is the most common way ML add-ons break. So the engine may run in any Python that
has it installed (``scripts/setup.sh`` makes ``.venv``): the add-on preference
"Engine Python", or the ``LATENTWALK_ENGINE_PYTHON`` environment variable for
headless runs. Headless, the analysis runs in-process when neither is set and
librosa imports (in the UI, Bake Curves runs it in an analysis worker: bake_job.py);
renders always run in the worker process (worker_client.py). Requests
and results travel as files; a subprocess gets an argument list, never a shell.
"""

import collections
import json
import os
import queue
import select
import subprocess
import sys
import tempfile
import time

from ..engine.errors import GET_THE_RENDER_STACK, LatentWalkError
from ..engine.analysis.features import Features
from ..engine.worker import messages

ENV_ENGINE_PYTHON = "LATENTWALK_ENGINE_PYTHON"
# Where a user sets the Engine Python, in the UI and headless (every message names both).
SET_ENGINE_PYTHON = ("Preferences > Add-ons > Latent Walk > Engine Python (headless: --engine-python PATH, or the "
                     f"{ENV_ENGINE_PYTHON} environment variable)")
# realpath: a checkout linked into Blender's add-ons folder resolves .venv/bin/python from the checkout.
_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
_PACKAGE_NAME = os.path.basename(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))


def engine_python(preferences_python=""):
    """The interpreter to run the engine in, or "" for Blender's own process.

    A relative path, as the README has people type it (``.venv/bin/python``), is taken from
    the folder that holds the add-on (a developer checkout), else from the current folder;
    ``//`` is relative to the .blend file, as in every Blender path.
    """
    python = os.environ.get(ENV_ENGINE_PYTHON) or preferences_python or ""
    if not python or os.path.isabs(python):
        return python
    if python.startswith("//"):
        import bpy

        return os.path.abspath(bpy.path.abspath(python))
    python = os.path.expanduser(python)
    in_checkout = os.path.join(_PACKAGE_PARENT, python)
    return os.path.abspath(in_checkout if os.path.exists(in_checkout) else python)


def analyze(request, python=""):
    """Analyse per ``request`` (`engine.analysis.request`), blocking; returns `Features`."""
    if not python:
        try:
            from ..engine.analysis import pipeline  # noqa: F401  (librosa must import)
            from ..engine.analysis import request as analysis_request
        except ImportError as error:
            raise LatentWalkError(
                f"the analysis needs librosa, which Blender's Python cannot import ({error}). {GET_THE_RENDER_STACK}"
            ) from None
        return analysis_request.run(request)
    return _analyze_in_subprocess(request, python)


def check_python(python):
    if not os.path.isfile(python) or not os.access(python, os.X_OK):
        raise LatentWalkError(
            f"Engine Python '{python}' does not exist or cannot be run: fix it in {SET_ENGINE_PYTHON} (e.g. the "
            "project's .venv/bin/python), or clear it to use Blender's own Python."
        )


def engine_environment(python=None):
    """The environment for an engine process: this add-on's folder importable. When ``python`` is Blender's
    own interpreter, also every folder Blender put on ``sys.path`` at run time (its scripts/modules, the
    add-ons' folders), so a library installed there imports in the process as it does in Blender."""
    environment = dict(os.environ)
    folders = [_PACKAGE_PARENT, environment.get("PYTHONPATH", "")]
    if python and _same_file(python, sys.executable):
        folders += [folder for folder in sys.path if folder and os.path.isdir(folder)]
    environment["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(f for f in folders if f))
    return environment


def _same_file(path_a, path_b):
    try:
        return os.path.samefile(path_a, path_b)
    except OSError:
        return False


class EventPipe:
    """What a process prints on stdout, one JSON object per line, read on Blender's own thread.

    No Python thread runs in Blender's process while the UI is live: Blender's docs warn that a
    thread outliving the script that started it ends in "random crashes ... in Blender's own drawing
    code", and Blender 3.4 did crash under Xvfb while such a reader thread decoded a line. So the pipe
    is read without blocking whenever the job's timer polls (POSIX: a non-blocking descriptor;
    Windows: the bytes the pipe holds, asked with PeekNamedPipe), and ``get`` waits on the descriptor
    (select) or sleeps in short steps.

    Each line ``decode(line)`` makes into an event is handed out in order (``decode`` returns None for
    a line to skip; other lines, not starting with "{", are not the protocol: skipped). A line it
    refuses with LatentWalkError (another protocol version) becomes a `messages.Fatal` saying why (and,
    with ``end_on_refusal``, the process is killed: a dead worker is replaced by the next job's). At the
    end of the output comes one `messages.ProcessExited` with the exit status.

    Queue-like: ``get_nowait()`` raises `queue.Empty` when nothing is there yet; ``get(timeout_s)``.
    """

    _WAIT_STEP_S = 0.02  # Windows has no select on pipes: how long ``get`` sleeps between looks

    def __init__(self, process, decode, end_on_refusal=False):
        self.process = process
        self._decode = decode
        self._end_on_refusal = end_on_refusal
        self._fd = process.stdout.fileno()
        self._partial = b""
        self._ready = collections.deque()
        self._ended = False  # the output reached its end and ProcessExited was queued
        if os.name == "nt":
            import msvcrt  # noqa: PLC0415 (Windows only)

            self._handle = msvcrt.get_osfhandle(self._fd)
        else:
            os.set_blocking(self._fd, False)

    def get_nowait(self):
        if not self._ready:
            self._read_available()
        if not self._ready:
            raise queue.Empty
        return self._ready.popleft()

    def get(self, timeout_s=None):
        """The next event, waiting for it up to ``timeout_s`` (None: as long as it takes); queue.Empty
        when none came in time."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            try:
                return self.get_nowait()
            except queue.Empty:
                left_s = None if deadline is None else deadline - time.monotonic()
                if left_s is not None and left_s <= 0:
                    raise
                self._wait_readable(left_s)

    def _wait_readable(self, timeout_s):
        if os.name == "nt":
            time.sleep(self._WAIT_STEP_S if timeout_s is None else min(self._WAIT_STEP_S, timeout_s))
        else:
            select.select([self._fd], [], [], timeout_s)

    def _read_available(self):
        """Move every complete line the pipe holds now into ``_ready`` (never blocks)."""
        if self._ended:
            return
        while True:
            chunk = self._read_chunk()
            if chunk is None:  # nothing more for now
                return
            if chunk == b"":  # the end of the output: the process has exited or closed it
                if self._partial:
                    self._take_line(self._partial)
                    self._partial = b""
                self._ready.append(messages.ProcessExited(status=self.process.wait()))
                self._ended = True
                return
            *lines, self._partial = (self._partial + chunk).split(b"\n")
            for line in lines:
                self._take_line(line)

    def _read_chunk(self):
        """Bytes the pipe holds (b"" at its end), or None when it holds none yet."""
        if os.name == "nt":
            import _winapi  # noqa: PLC0415 (Windows only)

            try:
                available, _left = _winapi.PeekNamedPipe(self._handle, 0)
            except OSError:  # broken pipe: the writer closed it
                return b""
            return os.read(self._fd, available) if available else None
        try:
            return os.read(self._fd, 65536)
        except BlockingIOError:
            return None

    def _take_line(self, raw):
        line = raw.decode("utf-8", errors="replace")
        if not line.lstrip().startswith("{"):
            return
        try:
            event = self._decode(line)
        except LatentWalkError as error:
            event = messages.Fatal(message=str(error))
            if self._end_on_refusal:  # it speaks another protocol: the next job starts a fresh worker
                self.process.kill()
        if event is not None:
            self._ready.append(event)


def engine_command(python, *arguments):
    """The argument list that runs ``python -m <add-on>.engine ARGUMENTS`` (never a shell)."""
    return [python, "-m", f"{_PACKAGE_NAME}.engine", *arguments]


def _run_engine(python, arguments):
    """Run ``python -m blender_latentwalk.engine ARGUMENTS``; raise LatentWalkError with its message."""
    check_python(python)
    try:
        result = subprocess.run(engine_command(python, *arguments), capture_output=True, text=True,
                                env=engine_environment())
    except OSError as error:
        raise LatentWalkError(f"Engine Python '{python}' could not be started ({error.strerror}).") from None
    if result.returncode != 0:
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
        message = lines[-1] if lines else f"exit status {result.returncode}"
        if message.startswith("error: "):
            raise LatentWalkError(message[len("error: "):])
        sys.stderr.write(result.stderr)
        raise LatentWalkError(
            f"the engine in '{python}' failed: {message}. {GET_THE_RENDER_STACK}"
        )
    return result


def _analyze_in_subprocess(request, python):
    with tempfile.TemporaryDirectory(prefix="latentwalk-") as folder:
        request_path = os.path.join(folder, "request.json")
        features_path = os.path.join(folder, "features.npz")
        with open(request_path, "w", encoding="utf-8") as stream:
            json.dump(request, stream)
        _run_engine(python, ["analyze", "--request", request_path, "--out", features_path])
        if not os.path.isfile(features_path):
            raise LatentWalkError(
                f"Engine Python '{python}' finished without writing features: it is not a Python with the "
                f"engine installed. {GET_THE_RENDER_STACK}"
            )
        return Features.load_npz(features_path)


def frame_status(python, plan_path, request, folder, index_range):
    """The engine's `FrameStatus` of ``folder`` for plan indices ``index_range`` (first, last).

    Computed by the engine in the worker's Python (``python``; "" for this process), so the
    frame keys and model identities are the ones the render itself computes.
    request : {"generator": name, "img2img": {"model", "width", "height", "tiny_vae"}} as sent to the worker.
    """
    from ..engine.render.trust import FrameStatus

    img2img = request["img2img"]
    if not python:  # this process: the same check, without the CLI (whose analysis imports need scipy)
        try:
            from ..engine.generators.selection import for_model
            from ..engine.render import run
            from ..engine.render import trust
            from ..engine.walk.plan import RenderPlan

            settings = run.Img2ImgSettings(**img2img)
            return trust.frame_status(RenderPlan.load(plan_path), for_model(request["generator"]), settings, folder,
                                      range(index_range[0], index_range[1] + 1))
        except ImportError as error:
            raise LatentWalkError(f"Blender's Python cannot check the frames ({error}): set {SET_ENGINE_PYTHON} to "
                                  "the Python that renders (the project's .venv/bin/python).") from None
    arguments = ["status", plan_path, "--generator", request["generator"], "--sd", img2img["model"],
                 "--size", f"{img2img['width']}x{img2img['height']}", "--tiny-vae", img2img["tiny_vae"],
                 "--out", folder, "--plan-indices", f"{index_range[0]}-{index_range[1]}", "--json"]
    output = _run_engine(python, arguments).stdout.strip().splitlines()
    try:
        return FrameStatus.from_json(output[-1])
    except (IndexError, ValueError, KeyError) as error:
        raise LatentWalkError(f"Engine Python '{python}' answered the frame check with something else ({error}): "
                              "is it a Python with this version of the add-on's engine?") from None


HOLD_START_TIMEOUT_S = 180.0  # the Python's start, plus the folder lock a stuck render may hold (120 s)


class HeldFrames:
    """Frames of a folder claimed against renders, as a render claims them, by the engine CLI's ``hold-claim``
    in another process (`hold_frames`): a claim's heartbeat is a thread, and no Python thread may run in
    Blender's process. `release` (idempotent) closes the process's stdin: it releases and ends. Should
    Blender itself end, the pipe closes the same way; a killed holder's claim dies with its process."""

    def __init__(self, process, folder, first, last):
        self.process, self.folder, self.first, self.last = process, folder, first, last

    @property
    def held(self):
        return self.process is not None and self.process.poll() is None

    def release(self, timeout_s=10.0):
        process, self.process = self.process, None
        if process is None:
            return
        try:
            process.stdin.close()
        except OSError:
            pass
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()


def _json_or_none(line):
    try:
        return json.loads(line)
    except ValueError:
        return None


def hold_frames(python, folder, first, last):
    """Claim Blender frames first..last of ``folder`` for as long as the returned `HeldFrames` is held, so no
    render rewrites them meanwhile (Encode Video while Blender reads them). ``python``: the render worker's
    interpreter (it has the engine's ``filelock``). Raises LatentWalkError naming the render that holds
    some of them. The held line is read on this thread (`EventPipe`), no thread started."""
    check_python(python)
    arguments = ["hold-claim", "--folder", folder, "--frames", f"{first}-{last}"]
    with tempfile.TemporaryFile() as errors:
        try:
            process = subprocess.Popen(engine_command(python, *arguments), stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, stderr=errors, env=engine_environment(python))
        except OSError as error:
            raise LatentWalkError(f"Engine Python '{python}' could not be started ({error.strerror}).") from None
        pipe = EventPipe(process, _json_or_none)
        try:
            event = pipe.get(timeout_s=HOLD_START_TIMEOUT_S)
        except queue.Empty:
            event = None
        if isinstance(event, dict) and "held" in event:
            return HeldFrames(process, folder, first, last)
        HeldFrames(process, folder, first, last).release(timeout_s=1.0)
        errors.seek(0)
        lines = [line for line in errors.read().decode("utf-8", "replace").splitlines() if line.strip()]
    message = lines[-1] if lines else ("no answer in time" if event is None else f"it answered {event}")
    if message.startswith("error: "):
        raise LatentWalkError(message[len("error: "):])
    raise LatentWalkError(f"the engine in '{python}' could not hold the frames of '{folder}' against renders "
                          f"({message}). {GET_THE_RENDER_STACK}")


def list_models(python, in_use):
    """[`ModelState`] of ``in_use`` ((name, role) pairs) and of the catalogue, as the engine's Python
    (``python``) sees them: its caches, its HF_HOME. Never uses the network."""
    from ..engine.setup.models import ModelState

    flags = {"biggan": "--biggan", "pipeline": "--sd", "vae": "--tiny-vae"}
    arguments = ["models", "--json"]
    for name, role in in_use:
        if name.strip():
            arguments += [flags[role], name.strip()]
    output = _run_engine(python, arguments).stdout.strip().splitlines()
    try:
        return [ModelState.from_dict(item) for item in json.loads(output[-1])]
    except (IndexError, ValueError, KeyError, TypeError) as error:
        raise LatentWalkError(f"Engine Python '{python}' answered the model list with something else ({error}): "
                              "is it a Python with this version of the add-on's engine?") from None
