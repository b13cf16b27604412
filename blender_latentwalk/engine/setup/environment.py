"""Make the render worker's Python: a virtual environment with the pinned render stack.

    python -m blender_latentwalk.engine setup-env FOLDER [--variant auto|cpu|cu126|cu128|cu130|rocm6.4|mps]
        [--torch-index-url URL|default] [--base-python PATH] [--stop-on-stdin-close]

The add-on's "Set Up Render Environment" button runs this with Blender's own Python as the
base. It only needs the standard library (Blender's Python has no numpy on every platform).

Steps: create the environment (``python -m venv``), install PyTorch built for this machine
(CUDA, ROCm, Apple MPS or CPU: `choose_torch_variant`), install the rest of the render stack
(``data/render-requirements.txt``, the one list of its pins), make the engine importable (a
``.pth`` file naming the folder that holds this package), and check that everything imports.
The environment is built in ``FOLDER.partial`` and renamed to FOLDER only when the check
passed: a failed or cancelled set-up leaves FOLDER (a working environment, or nothing) as it was.

Events, one JSON object per line on stdout, each with ``"version": PROTOCOL_VERSION``::

    {"event": "start", "folder", "variant", "variant_title", "torch_index_url" (null: pip's default
     index), "steps": [{"name", "title"}, ...]}
    {"event": "step", "index" (0-based), "count", "name", "title", "command"}   a step begins
    {"event": "detail", "text"}        a line of pip's output worth showing (what it collects, installs)
    {"event": "done", "python", "folder", "size_bytes", "seconds", "versions": {package: version}}
    {"event": "error", "step" (its title), "step_name" (its name, "" before the steps), "message", "kind",
     "host", "torch_index", "reason", "command"}
        message: what failed, first ("the network: the PyTorch index download.pytorch.org cannot be
        reached (its name does not resolve)"); kind: "network", "index" (reachable, but without the
        package), "disk" (full), "tool" (anything else); host: the index's host ("" when unknown);
        torch_index: true when that index is PyTorch's (or its --torch-index-url), not pip's own;
        reason: the tool's own line (pip's "ERROR: ..."); command: the step as one line to run in a terminal
    {"event": "cancelled"}

Every line the tools print goes to stderr (the add-on's log). With ``--stop-on-stdin-close``,
the end of standard input cancels (the add-on closes it to cancel, and it closes when Blender
is gone): the running tool is ended and ``FOLDER.partial`` removed. Exit status: 0 done,
2 error, 5 cancelled.
"""

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse

from ..errors import describe_exception, network_reason, says_disk_full

PROTOCOL_VERSION = 1
ENV_TORCH_INDEX_URL = "LATENTWALK_TORCH_INDEX_URL"
DEFAULT_INDEX = "default"  # --torch-index-url default: pip's configured index (PyPI), as for every other package
REQUIREMENTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "render-requirements.txt")
PYTORCH_INDEX = "https://download.pytorch.org/whl/"
# The add-on's package ("blender_latentwalk", or the extension's folder name) and the folder holding it.
ADDON_PACKAGE = (__package__ or "blender_latentwalk.engine.setup").rsplit(".", 2)[0]
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
# The CUDA builds of the pinned PyTorch, oldest first, with the CUDA version each needs from the driver.
CUDA_BUILDS = (("cu126", (12, 6)), ("cu128", (12, 8)), ("cu130", (13, 0)))
ROCM_BUILD = "rocm6.4"
VARIANT_TITLES = {"cpu": "CPU only", "cu126": "NVIDIA CUDA 12.6", "cu128": "NVIDIA CUDA 12.8",
                  "cu130": "NVIDIA CUDA 13.0", ROCM_BUILD: "AMD ROCm 6.4", "mps": "Apple Metal (MPS)"}
VERIFY_MODULES = ("torch", "diffusers", "transformers", "pytorch_pretrained_biggan", "librosa", "PIL", "soundfile",
                  "soxr", "safetensors", "filelock")
EXIT_ERROR, EXIT_CANCELLED = 2, 5


class SetupError(Exception):
    """A step that failed: its title, a one-line message (what failed first), the command that runs it
    by hand, and what kind of failure it is (see the "error" event)."""

    def __init__(self, step, message, command="", kind="tool", host="", reason="", step_name="", torch_index=False):
        super().__init__(message)
        self.step, self.message, self.command = step, message, command
        self.kind, self.host, self.reason, self.step_name = kind, host, reason or message, step_name
        self.torch_index = torch_index

    def event(self):
        return dict(event="error", step=self.step, step_name=self.step_name, message=self.message, kind=self.kind,
                    host=self.host, torch_index=self.torch_index, reason=self.reason, command=self.command)


class TorchVariant:
    """A PyTorch build: its name (the PyTorch index's tag, or "mps") and the index it comes from."""

    def __init__(self, name, index_url):
        self.name, self.index_url = name, index_url  # index_url None: pip's default index (PyPI)
        self.title = VARIANT_TITLES[name]

    def __eq__(self, other):
        return isinstance(other, TorchVariant) and (self.name, self.index_url) == (other.name, other.index_url)

    def __repr__(self):
        return f"TorchVariant({self.name!r}, {self.index_url!r})"


def variant_named(name):
    """The variant for a name the user chose (see VARIANT_TITLES); MPS builds are PyPI's wheels."""
    if name not in VARIANT_TITLES:
        raise ValueError(f"unknown PyTorch build '{name}': choose one of auto, {', '.join(VARIANT_TITLES)}")
    return TorchVariant(name, None if name == "mps" else PYTORCH_INDEX + name)


def parse_cuda_version(nvidia_smi_output):
    """The highest CUDA version the NVIDIA driver supports, as ``nvidia-smi`` prints it ("CUDA Version: 12.8"),
    as (major, minor); None when the text has none."""
    found = re.search(r"CUDA Version\s*:\s*(\d+)\.(\d+)", nvidia_smi_output or "")
    return (int(found.group(1)), int(found.group(2))) if found else None


def choose_torch_variant(system, machine, tools, cuda_version=None):
    """The PyTorch build for a machine.

    system : ``platform.system()`` ("Linux", "Windows", "Darwin").
    machine : ``platform.machine()`` ("x86_64", "AMD64", "arm64", "aarch64").
    tools : the GPU tools found, a subset of {"nvidia-smi", "rocm"} ("rocm": rocminfo on PATH or /opt/rocm).
    cuda_version : (major, minor) the NVIDIA driver supports (`parse_cuda_version`), None when unknown.

    Apple silicon: PyPI's wheel (it has MPS). NVIDIA: the newest CUDA build the driver supports (the oldest
    when the driver is older or unknown: CUDA 12 drivers run 12.x builds by minor-version compatibility). AMD on Linux: ROCm. Otherwise the CPU build.
    Raises ValueError where the pinned PyTorch has no build (Intel Macs, NVIDIA drivers older than CUDA 12).
    """
    if system == "Darwin":
        if machine.lower() in ("arm64", "aarch64"):
            return variant_named("mps")
        raise ValueError("PyTorch has no builds for Intel Macs since 2.2: bring your own environment (set the "
                         "Engine Python to a Python with torch, diffusers and pytorch-pretrained-biggan).")
    if "nvidia-smi" in tools:
        if cuda_version is None:
            return variant_named(CUDA_BUILDS[0][0])
        if cuda_version[0] < CUDA_BUILDS[0][1][0]:
            raise ValueError(f"the NVIDIA driver supports CUDA {cuda_version[0]}.{cuda_version[1]}, and PyTorch's "
                             "builds need CUDA 12 or newer: update the driver, or choose the CPU build.")
        runnable = [name for name, needs in CUDA_BUILDS if needs <= cuda_version]
        return variant_named(runnable[-1] if runnable else CUDA_BUILDS[0][0])
    if system == "Linux" and "rocm" in tools:
        return variant_named(ROCM_BUILD)
    return variant_named("cpu")


def detect_torch_variant():
    """`choose_torch_variant` for this machine."""
    tools = set()
    cuda_version = None
    nvidia_smi = shutil.which("nvidia-smi")
    if nvidia_smi:
        tools.add("nvidia-smi")
        try:
            output = subprocess.run([nvidia_smi], capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            output = ""
        cuda_version = parse_cuda_version(output)
    if shutil.which("rocminfo") or os.path.isdir("/opt/rocm"):
        tools.add("rocm")
    return choose_torch_variant(platform.system(), platform.machine(), tools, cuda_version)


def torch_index_url(variant, override=""):
    """The index PyTorch is installed from: ``override`` when given ("default": pip's own index), else the
    variant's."""
    if override == DEFAULT_INDEX:
        return None
    return override or variant.index_url


def pinned_torch():
    """The requirement line for torch in the render stack's pins, e.g. "torch==2.13.0"."""
    with open(REQUIREMENTS, encoding="utf-8") as stream:
        for line in stream:
            requirement = line.split("#", 1)[0].strip()
            if re.match(r"torch\b", requirement):
                return requirement
    raise SetupError("Reading the pins", f"'{REQUIREMENTS}' has no torch pin: reinstall the add-on.")


def partial_folder(folder):
    """Where the environment is built before it becomes ``folder``."""
    return os.path.normpath(folder) + ".partial"


def environment_python(folder):
    """The interpreter of the virtual environment in ``folder``."""
    if os.name == "nt":
        return os.path.join(folder, "Scripts", "python.exe")
    return os.path.join(folder, "bin", "python")


def folder_size_bytes(folder):
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def command_line(arguments):
    """One line a user can paste into a terminal (cmd.exe quoting on Windows)."""
    if os.name == "nt":
        return subprocess.list2cmdline(arguments)
    import shlex

    return shlex.join(arguments)


def tool_environment():
    """The environment for venv and pip: none of the base Python's (or Blender's) module paths."""
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    environment["PYTHONNOUSERSITE"] = "1"  # nothing from ~/.local may satisfy a requirement
    environment["PYTHONIOENCODING"] = "utf-8"
    return environment


VERIFY_CODE = """
import importlib, json, sys
versions = {}
for name in sys.argv[1].split(","):
    module = importlib.import_module(name)
    versions[name] = getattr(module, "__version__", "")
import torch
versions["torch.cuda"] = torch.version.cuda or ""
versions["torch.hip"] = getattr(torch.version, "hip", None) or ""
importlib.import_module(sys.argv[2] + ".engine.render.run")  # the worker's imports, from the .pth
print("VERSIONS=" + json.dumps(versions))
"""

# pip's lines a user sees in the status bar: what it is fetching and installing.
_DETAIL = re.compile(r"^\s*(Collecting|Downloading|Installing collected packages|Successfully installed|"
                     r"Building wheel|Processing)\b")


class Setup:
    """One run of the set-up; `run` returns the exit status."""

    def __init__(self, folder, base_python, variant, index_url, send):
        self.folder = os.path.abspath(folder)
        self.partial = partial_folder(self.folder)
        self.python = environment_python(self.partial)
        self.base_python, self.variant, self.index_url, self.send = base_python, variant, index_url, send
        self.cancelled = threading.Event()
        self.child = None
        self._lock = threading.Lock()
        torch = pinned_torch()
        index = ["--index-url", index_url] if index_url else []
        pip = [self.python, "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off"]
        self.steps = [
            ("venv", "Creating the Python environment", [base_python, "-m", "venv", self.partial]),
            # torch alone from its index (its dependencies' pins follow in the next step; a constraint
            # file here would turn pip's "no such build" into a baffling ResolutionImpossible).
            ("torch", f"Installing PyTorch ({variant.title})", pip + [torch] + index),
            ("packages", "Installing diffusers, transformers, BigGAN and librosa", pip + ["-r", REQUIREMENTS]),
            ("verify", "Checking that the render stack imports",
             [self.python, "-c", VERIFY_CODE, ",".join(VERIFY_MODULES), ADDON_PACKAGE]),
        ]

    def cancel(self):
        self.cancelled.set()
        with self._lock:
            if self.child is not None and self.child.poll() is None:
                self.child.kill()

    def run(self):
        started = time.monotonic()
        self.send(event="start", folder=self.folder, variant=self.variant.name, variant_title=self.variant.title,
                  torch_index_url=self.index_url, steps=[{"name": n, "title": t} for n, t, _ in self.steps])
        try:
            _remove(self.partial)  # a leftover of a set-up that was killed
            versions = {}
            for index, (name, title, command) in enumerate(self.steps):
                self.send(event="step", index=index, count=len(self.steps), name=name, title=title,
                          command=command_line(command))
                if name == "verify":
                    self._write_engine_path(title, command)
                output = self._run_tool(title, command, name)
                if name == "verify":
                    versions = _versions_from(output)
            self._replace_folder()
        except SetupError as error:
            if self.cancelled.is_set():
                return self._cancelled()
            _remove(self.partial)
            self.send(**error.event())
            return EXIT_ERROR
        except KeyboardInterrupt:  # Ctrl-C in a terminal
            self.cancelled.set()
            return self._cancelled()
        python = environment_python(self.folder)
        self.send(event="done", python=python, folder=self.folder, size_bytes=folder_size_bytes(self.folder),
                  seconds=round(time.monotonic() - started, 1), versions=versions)
        return 0

    def _cancelled(self):
        _remove(self.partial)
        self.send(event="cancelled")
        return EXIT_CANCELLED

    def _run_tool(self, title, command, name=""):
        """Run one step's tool, its output to stderr (and pip's headlines as detail events); its output."""
        print(f"$ {command_line(command)}", file=sys.stderr, flush=True)
        lines = []
        with self._lock:  # cancel() sets the flag, then kills the child under this lock: none escapes it
            if self.cancelled.is_set():
                raise SetupError(title, "cancelled")
            try:
                self.child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                              stderr=subprocess.STDOUT, env=tool_environment(), text=True,
                                              encoding="utf-8", errors="replace", bufsize=1)
            except OSError as error:
                raise SetupError(title, f"'{command[0]}' could not be started ({error.strerror})",
                                 command_line(command), step_name=name) from None
        for line in self.child.stdout:
            sys.stderr.write(line)
            lines.append(line.rstrip())
            if _DETAIL.match(line):
                self.send(event="detail", text=line.strip().split(" (from ")[0][:160])
        status = self.child.wait()
        sys.stderr.flush()
        if self.cancelled.is_set():
            raise SetupError(title, "cancelled")
        if status != 0:
            kind, host, message = classify_failure(lines, name, self.index_url)
            print(f"set-up: {title} failed: {message or _reason(lines)}", file=sys.stderr, flush=True)  # the log
            raise SetupError(title, message or f"{_reason(lines)} (exit status {status})", command_line(command),
                             kind, host, f"{_reason(lines)} (exit status {status})", name,
                             torch_index=name == "torch" and bool(self.index_url))
        return lines

    def _write_engine_path(self, title, command):
        """A .pth file: the engine importable in the environment, from wherever the add-on lies."""
        found = subprocess.run([self.python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, env=tool_environment())
        site_packages = found.stdout.strip()
        if found.returncode != 0 or not os.path.isdir(site_packages):
            raise SetupError(title, f"the new environment's Python '{self.python}' has no site-packages folder "
                             f"({_reason(found.stderr.splitlines())})", command_line(command))
        path = os.path.join(site_packages, "latentwalk-engine.pth")
        try:
            with open(path, "w", encoding="utf-8") as stream:
                stream.write(PACKAGE_PARENT + "\n")
        except OSError as error:
            raise SetupError(title, f"cannot write '{path}' ({error.strerror})", command_line(command)) from None

    def _replace_folder(self):
        """FOLDER.partial becomes FOLDER; an environment already there is replaced only now."""
        old = os.path.normpath(self.folder) + ".old"
        _remove(old)
        try:
            if os.path.lexists(self.folder):
                os.replace(self.folder, old)
            os.replace(self.partial, self.folder)
        except OSError as error:
            raise SetupError("Finishing", f"cannot rename '{self.partial}' to '{self.folder}' ({error.strerror}): "
                             "close programs that use the old environment (a running render) and try again") from None
        _remove(old)


def _remove(folder):
    if os.path.lexists(folder):
        shutil.rmtree(folder, ignore_errors=True)


def _reason(lines):
    """The line of a tool's output that says why it failed (pip's "ERROR: ..." line, else the last one)."""
    lines = [line.strip() for line in lines if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:") or "Error:" in line]
    reason = (errors or lines or ["no output"])[-1]
    return (reason[len("ERROR:"):].strip() if reason.startswith("ERROR:") else reason)[:300]


PYPI_HOST = "pypi.org"
_NO_MATCH = re.compile(r"No matching distribution found for (\S+)|Could not find a version that satisfies the "
                       r"requirement (\S+)")


def index_host(url):
    """How a message names an index, short: its host (and port) for a web address, the folder's name for
    a file:// index (the whole address is in the step's command)."""
    parts = urllib.parse.urlsplit(url or "")
    if parts.scheme in ("http", "https") and parts.netloc:
        return parts.netloc
    if parts.scheme == "file":
        return os.path.basename(parts.path.rstrip("/")) or parts.path
    return url or ""


def _looked_in(lines):
    """The first index pip says it looks in ("Looking in indexes: URL, ..."), or ""."""
    for line in lines:
        if line.startswith("Looking in indexes:"):
            return line.split(":", 1)[1].split(",")[0].strip()
    return ""


PROBE_TIMEOUT_S = 10


def probe_index(url):
    """Why the index at ``url`` cannot be reached, in a few words ("connection refused"), or "" when it
    answers (any HTTP status) or is a folder that exists. pip keeps this to itself without retries
    (``--retries 0`` logs it only with -v), so the set-up asks once more, itself."""
    import urllib.error
    import urllib.request

    parts = urllib.parse.urlsplit(url or "")
    if parts.scheme == "file":
        return "" if os.path.isdir(urllib.request.url2pathname(parts.path)) else "no such folder"
    if parts.scheme not in ("http", "https"):
        return ""
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_S):
            return ""
    except urllib.error.HTTPError:
        return ""  # it answered
    except (OSError, ValueError) as error:  # URLError, timeouts, refused, names that do not resolve
        return network_reason(describe_exception(error)) or "no connection"


def classify_failure(lines, step_name, torch_index_url=None, probe=probe_index):
    """(kind, host, message) of a failed pip step from its output ``lines``: what failed, in the words a
    user reads first (see the "error" event), a parenthesis at its end saying why where known (a report
    short of room leaves it out); ("tool", host, "") when the output says nothing of the kind.

    The network: pip found nothing to install, which it says as "No matching distribution found for X"
    (for X the first package it could not fetch, e.g. a dependency of a torch found in a wheel cache:
    the message that misled in issue 19), and printed that a host could not be reached (its retries),
    or ``probe`` (`probe_index`) finds the index unreachable. The index: the index answers but has no
    such package."""
    text = "\n".join(lines)
    torch_index = step_name == "torch" and bool(torch_index_url)  # PyTorch's index (or a mirror), not PyPI's
    index_url = torch_index_url if torch_index else (_looked_in(lines) or f"https://{PYPI_HOST}/simple/")
    host = index_host(index_url)
    what = "PyTorch's index" if torch_index else "the package index"
    if says_disk_full(text):
        return "disk", host, "the disk is full: the environment needs 1.7 GB (CPU build) to 5 GB (CUDA)"
    missing = _NO_MATCH.search(text)
    reason = network_reason(text)
    if missing and not reason:  # pip without retries says nothing of the connection: ask the index
        reason = probe(index_url)
    if reason and (missing or network_reason(_reason(lines))):
        return "network", host, f"the network: {what} {host} cannot be reached ({reason})"
    if missing:
        package = missing.group(1) or missing.group(2)
        return "index", host, f"the index: {host} has no {package} (for this machine)"
    return "tool", host, ""


def _versions_from(lines):
    for line in lines:
        if line.startswith("VERSIONS="):
            return json.loads(line[len("VERSIONS="):])
    return {}


def _watch_stdin(setup):
    """Cancel when standard input ends (the add-on closed it, or is gone)."""
    def watch():
        try:
            while sys.stdin.readline():
                pass
        except (OSError, ValueError):
            pass
        setup.cancel()

    threading.Thread(target=watch, name="latentwalk-setup-stdin", daemon=True).start()


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m blender_latentwalk.engine setup-env",
                                     description="Create the render worker's Python environment in FOLDER.")
    parser.add_argument("folder")
    parser.add_argument("--variant", default="auto",
                        help=f"PyTorch build: auto (detect the GPU), {', '.join(VARIANT_TITLES)}")
    parser.add_argument("--torch-index-url", default=os.environ.get(ENV_TORCH_INDEX_URL, ""),
                        help="index to install torch from (default: the variant's PyTorch index; 'default': pip's "
                             f"configured index; also the {ENV_TORCH_INDEX_URL} environment variable)")
    parser.add_argument("--base-python", default=sys.executable, help="Python the environment is made from")
    parser.add_argument("--stop-on-stdin-close", action="store_true",
                        help="cancel when standard input ends (used by the add-on)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    events = sys.stdout
    lock = threading.Lock()

    def send(**event):
        with lock:
            events.write(json.dumps({"version": PROTOCOL_VERSION, **event}) + "\n")
            events.flush()

    try:
        variant = detect_torch_variant() if args.variant == "auto" else variant_named(args.variant)
        setup = Setup(args.folder, args.base_python, variant, torch_index_url(variant, args.torch_index_url), send)
    except ValueError as error:
        send(**SetupError("Choosing the PyTorch build", str(error)).event())
        return EXIT_ERROR
    except SetupError as error:
        send(**error.event())
        return EXIT_ERROR
    if args.stop_on_stdin_close:
        _watch_stdin(setup)
    return setup.run()
