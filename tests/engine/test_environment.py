"""The render environment set-up (engine/setup/environment.py): the PyTorch build chosen for each machine, and a
real environment made with pip that the worker then renders with."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from blender_latentwalk.engine.setup import environment
from blender_latentwalk.engine.setup.environment import choose_torch_variant, parse_cuda_version, variant_named
from blender_latentwalk.engine.worker import messages

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CPU_INDEX = "https://download.pytorch.org/whl/cpu"

NVIDIA_SMI_HEADER = """
+-----------------------------------------------------------------------------------------+
| NVIDIA-SMI 570.86.10              Driver Version: 570.86.10      CUDA Version: 12.8     |
|-----------------------------------------+------------------------+----------------------+
"""


@pytest.mark.parametrize("system, machine, tools, cuda, expected, index", [
    ("Darwin", "arm64", set(), None, "mps", None),  # Apple silicon: PyPI's wheel has MPS
    ("Darwin", "arm64", {"nvidia-smi"}, (12, 8), "mps", None),
    ("Linux", "x86_64", {"nvidia-smi"}, (12, 8), "cu128", "https://download.pytorch.org/whl/cu128"),
    ("Linux", "x86_64", {"nvidia-smi"}, (12, 9), "cu128", "https://download.pytorch.org/whl/cu128"),
    ("Linux", "x86_64", {"nvidia-smi"}, (12, 2), "cu126", "https://download.pytorch.org/whl/cu126"),
    ("Linux", "x86_64", {"nvidia-smi"}, (13, 1), "cu130", "https://download.pytorch.org/whl/cu130"),
    ("Linux", "x86_64", {"nvidia-smi"}, None, "cu126", "https://download.pytorch.org/whl/cu126"),
    ("Linux", "aarch64", {"nvidia-smi"}, (12, 8), "cu128", "https://download.pytorch.org/whl/cu128"),
    ("Windows", "AMD64", {"nvidia-smi"}, (12, 6), "cu126", "https://download.pytorch.org/whl/cu126"),
    ("Linux", "x86_64", {"nvidia-smi", "rocm"}, (12, 8), "cu128", "https://download.pytorch.org/whl/cu128"),
    ("Linux", "x86_64", {"rocm"}, None, "rocm6.4", "https://download.pytorch.org/whl/rocm6.4"),
    ("Windows", "AMD64", {"rocm"}, None, "cpu", CPU_INDEX),  # no ROCm PyTorch for Windows
    ("Linux", "x86_64", set(), None, "cpu", CPU_INDEX),
    ("Linux", "aarch64", set(), None, "cpu", CPU_INDEX),
    ("Windows", "AMD64", set(), None, "cpu", CPU_INDEX),
])
def test_each_machine_gets_the_pytorch_build_for_its_gpu(system, machine, tools, cuda, expected, index):
    variant = choose_torch_variant(system, machine, tools, cuda)
    assert (variant.name, variant.index_url) == (expected, index)


@pytest.mark.parametrize("system, machine, tools, cuda, words", [
    ("Darwin", "x86_64", set(), None, "Intel Macs"),
    ("Linux", "x86_64", {"nvidia-smi"}, (11, 8), "update the driver"),
])
def test_machines_without_a_pinned_pytorch_build_are_told_what_to_do(system, machine, tools, cuda, words):
    with pytest.raises(ValueError, match=words):
        choose_torch_variant(system, machine, tools, cuda)


def test_the_driver_cuda_version_is_read_from_nvidia_smi():
    assert parse_cuda_version(NVIDIA_SMI_HEADER) == (12, 8)
    assert parse_cuda_version("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver") is None


def test_the_index_override_wins_and_default_means_pips_own_index():
    cpu = variant_named("cpu")
    assert environment.torch_index_url(cpu) == CPU_INDEX
    assert environment.torch_index_url(cpu, "default") is None
    assert environment.torch_index_url(cpu, "https://mirror.example/whl") == "https://mirror.example/whl"
    with pytest.raises(ValueError, match="unknown PyTorch build 'cuda'"):
        variant_named("cuda")


def test_the_render_stack_pins_are_one_list_that_main_requirements_include():
    main = open(os.path.join(ROOT, "requirements", "main.txt"), encoding="utf-8").read()
    assert "-r ../blender_latentwalk/engine/setup/data/render-requirements.txt" in main
    assert "\ntorch==" not in main and environment.pinned_torch() == "torch==2.13.0"
    import torch

    assert torch.__version__.split("+")[0] == "2.13.0"  # this .venv installed the same list


def setup_command(folder, *extra):
    return [sys.executable, "-m", "blender_latentwalk.engine", "setup-env", str(folder), "--variant", "cpu", *extra]


def events_of(stdout):
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


@pytest.fixture(scope="session")
def render_environment(tmp_path_factory):
    """One environment made for real (pip installs the render stack: about a minute here), shared by the tests.
    torch comes from pip's default index: this machine reaches only PyPI (and its wheel folder)."""
    folder = tmp_path_factory.mktemp("user-data") / "render-env"
    started = time.monotonic()
    result = subprocess.run(setup_command(folder, "--torch-index-url", "default"), capture_output=True, text=True,
                            cwd=ROOT, timeout=1800)
    seconds = time.monotonic() - started
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    events = events_of(result.stdout)
    print(f"\nrender environment: {seconds:.0f} s, {events[-1]['size_bytes'] / 1e9:.2f} GB in {folder}")
    return folder, events


def test_setup_reports_each_step_and_ends_with_a_python_that_has_the_render_stack(render_environment):
    folder, events = render_environment
    assert all(event["version"] == environment.PROTOCOL_VERSION for event in events)
    start, done = events[0], events[-1]
    assert start["event"] == "start" and start["variant"] == "cpu" and start["torch_index_url"] is None
    steps = [event for event in events if event["event"] == "step"]
    assert [s["name"] for s in steps] == ["venv", "torch", "packages", "verify"] == [s["name"] for s in start["steps"]]
    assert [s["index"] for s in steps] == [0, 1, 2, 3] and {s["count"] for s in steps} == {4}
    assert any(e["event"] == "detail" and "torch" in e["text"] for e in events)  # what pip does, for the status bar
    assert done["event"] == "done" and done["python"] == environment.environment_python(str(folder))
    assert done["versions"]["torch"].startswith("2.13.0") and done["versions"]["diffusers"] == "0.42.1"
    assert done["size_bytes"] > 500e6  # torch alone is more
    assert not os.path.exists(environment.partial_folder(str(folder)))


def test_the_environment_python_runs_the_worker_from_any_folder_and_renders(render_environment, models, tmp_path):
    """The add-on's render path: its worker in the new Python (the engine found through the .pth file, no
    PYTHONPATH) renders the tiny models' frames, byte-identical to this Python's."""
    from render_helpers import plan_72

    folder, events = render_environment
    python = events[-1]["python"]
    plan_path = tmp_path / "plan.npz"
    plan_72(n_frames=6).save(plan_path)
    environment_vars = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    worker = subprocess.Popen([python, "-m", "blender_latentwalk.engine", "worker"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                              env=environment_vars)
    request = messages.RenderRequest(id=1, plan_path=str(plan_path), generator=models[0],
                                     out_folder=str(tmp_path / "frames"), batch_size=2, device="cpu",
                                     img2img={"model": models[1], "width": 48, "height": 32, "tiny_vae": ""})
    worker.stdin.write(messages.encode(request) + "\n")
    worker.stdin.flush()
    seen = []
    while not seen or not isinstance(seen[-1], (messages.RenderDone, messages.RequestFailed, messages.Fatal)):
        line = worker.stdout.readline()
        assert line, worker.stderr.read()[-3000:]
        seen.append(messages.decode_event(line))
    worker.stdin.write(messages.encode(messages.QuitRequest()) + "\n")
    worker.stdin.close()
    assert worker.wait(60) == 0
    assert isinstance(seen[0], messages.Ready) and isinstance(seen[-1], messages.RenderDone), seen
    assert len(seen[-1].rendered) == 6
    reference = subprocess.run([sys.executable, "-m", "blender_latentwalk.engine", "render", str(plan_path),
                                "--biggan", models[0], "--sd", models[1], "--out", str(tmp_path / "reference"),
                                "--size", "48x32", "--batch-size", "2", "--device", "cpu"],
                               capture_output=True, text=True, cwd=ROOT)
    assert reference.returncode == 0, reference.stderr[-2000:]
    names = sorted(n for n in os.listdir(tmp_path / "frames") if n.endswith(".png"))
    assert len(names) == 6
    for name in names:
        assert (tmp_path / "frames" / name).read_bytes() == (tmp_path / "reference" / name).read_bytes(), name


def listing(folder):
    return sorted((os.path.relpath(os.path.join(root, name), folder), os.lstat(os.path.join(root, name)).st_mtime_ns)
                  for root, dirs, files in os.walk(folder) for name in dirs + files)


def test_a_failed_install_says_what_failed_with_the_command_and_leaves_the_environment_there(
        render_environment, tmp_path):
    """PyTorch's index has no such build (an empty index here): the error names the step and pip's reason, gives
    the command, and the working environment already in the folder stays as it was."""
    folder, _ = render_environment
    empty_index = tmp_path / "empty-index"
    empty_index.mkdir()
    before = listing(folder)
    isolated = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    isolated["PIP_CONFIG_FILE"] = os.devnull  # no wheel folder or extra index from this machine's pip config
    result = subprocess.run(setup_command(folder, "--torch-index-url", empty_index.as_uri()), capture_output=True,
                            text=True, cwd=ROOT, env=isolated, timeout=600)
    assert result.returncode == environment.EXIT_ERROR
    error = events_of(result.stdout)[-1]
    assert error["event"] == "error" and error["step"] == "Installing PyTorch (CPU only)"
    assert error["kind"] == "index" and error["step_name"] == "torch"  # reached, but without the build
    assert error["message"] == "the index: empty-index has no torch==2.13.0 (for this machine)"
    assert error["torch_index"] is True
    assert "No matching distribution found for torch==2.13.0" in error["reason"]
    assert error["command"].startswith(environment.environment_python(environment.partial_folder(str(folder))))
    assert "pip install" in error["command"] and empty_index.as_uri() in error["command"]
    assert listing(folder) == before and not os.path.exists(environment.partial_folder(str(folder)))


def test_closing_stdin_cancels_mid_install_and_removes_the_unfinished_environment(render_environment):
    folder, _ = render_environment
    before = listing(folder)
    process = subprocess.Popen(setup_command(folder, "--torch-index-url", "default", "--stop-on-stdin-close"),
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               cwd=ROOT)
    events = []
    while not events or events[-1].get("name") != "torch":  # pip is installing torch now
        line = process.stdout.readline()
        assert line, events
        events.append(json.loads(line))
    time.sleep(np.random.default_rng().uniform(0.5, 3.0))  # somewhere inside pip's work
    process.stdin.close()
    rest = events_of(process.stdout.read())
    assert process.wait(60) == environment.EXIT_CANCELLED
    assert rest[-1]["event"] == "cancelled"
    assert not os.path.exists(environment.partial_folder(str(folder)))
    assert listing(folder) == before  # the environment made before is untouched


# pip 23's words when an index cannot be reached: retries, then no distribution for the first package it
# needed from there (here a dependency of a torch found in a wheel folder, as issue 19 met it).
REFUSED = [
    "Looking in indexes: http://127.0.0.1:9/",
    "Looking in links: /opt/wheels",
    "Processing /opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl",
    "WARNING: Retrying (Retry(total=0, connect=None, read=None, redirect=None, status=None)) after connection broken "
    "by 'NewConnectionError('<pip._vendor.urllib3.connection.HTTPConnection object at 0x7f3c>: Failed to establish a "
    "new connection: [Errno 111] Connection refused')': /filelock/",
    "ERROR: Could not find a version that satisfies the requirement filelock (from torch) (from versions: none)",
    "ERROR: No matching distribution found for filelock",
]
UNRESOLVED = [
    "Looking in indexes: https://download.pytorch.org/whl/cpu",
    "WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) after connection broken "
    "by 'NewConnectionError('<pip._vendor.urllib3.connection.HTTPSConnection object at 0x7f>: Failed to establish a "
    "new connection: [Errno -3] Temporary failure in name resolution')': /whl/cpu/torch/",
    "ERROR: Could not find a version that satisfies the requirement torch==2.13.0 (from versions: none)",
    "ERROR: No matching distribution found for torch==2.13.0",
]


@pytest.mark.parametrize("lines, step, index, kind, message", [
    (REFUSED, "torch", "http://127.0.0.1:9/", "network",
     "the network: PyTorch's index 127.0.0.1:9 cannot be reached (connection refused)"),
    (UNRESOLVED, "torch", CPU_INDEX, "network",
     "the network: PyTorch's index download.pytorch.org cannot be reached (its name does not resolve)"),
    (UNRESOLVED[1:], "torch", None, "network",  # --torch-index-url default: PyPI, as pip is configured
     "the network: the package index pypi.org cannot be reached (its name does not resolve)"),
    (["Looking in indexes: https://mirror.example/simple", "WARNING: Retrying (Retry(total=0)) after connection broken "
      "by 'ConnectTimeoutError(<HTTPSConnection>, 'Connection to mirror.example timed out. (connect timeout=15)')': "
      "/simple/diffusers/", "ERROR: No matching distribution found for diffusers==0.42.1"], "packages", None, "network",
     "the network: the package index mirror.example cannot be reached (timed out)"),
    (["Collecting torch==2.13.0", "ERROR: Could not install packages due to an OSError: [Errno 28] No space left on "
      "device"], "torch", CPU_INDEX, "disk",
     "the disk is full: the environment needs 1.7 GB (CPU build) to 5 GB (CUDA)"),
    (["Looking in indexes: https://download.pytorch.org/whl/cu999",
      "ERROR: Could not find a version that satisfies the requirement torch==2.13.0 (from versions: 2.5.0)",
      "ERROR: No matching distribution found for torch==2.13.0"], "torch", "https://download.pytorch.org/whl/cu999",
     "index", "the index: download.pytorch.org has no torch==2.13.0 (for this machine)"),
    (["error: subprocess-exited-with-error", "ERROR: Failed building wheel for soxr"], "packages", None, "tool", ""),
])
def test_a_failed_pip_says_what_failed_first(lines, step, index, kind, message):
    found_kind, _, found_message = environment.classify_failure(lines, step, index, probe=lambda url: "")
    assert (found_kind, found_message) == (kind, message)


def test_pip_without_retries_is_silent_about_the_network_so_the_index_is_asked():
    silent = ["Looking in indexes: http://127.0.0.1:9/", REFUSED[-2], REFUSED[-1]]  # pip --retries 0
    asked = []
    kind, host, message = environment.classify_failure(
        silent, "torch", "http://127.0.0.1:9/", probe=lambda url: asked.append(url) or "connection refused")
    assert (kind, host, asked) == ("network", "127.0.0.1:9", ["http://127.0.0.1:9/"])
    assert message == "the network: PyTorch's index 127.0.0.1:9 cannot be reached (connection refused)"
    assert environment.probe_index("http://127.0.0.1:9/") == "connection refused"  # a loopback port that refuses


def test_an_unreachable_pytorch_index_fails_fast_saying_the_network_first(tmp_path):
    """Done-means of issue 19: PyTorch's index on a loopback port that refuses (pip without retries)."""
    isolated = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    isolated.update(PIP_CONFIG_FILE=os.devnull, PIP_RETRIES="0", PIP_TIMEOUT="5")
    started = time.monotonic()
    result = subprocess.run(setup_command(tmp_path / "render-env", "--torch-index-url", "http://127.0.0.1:9/"),
                            capture_output=True, text=True, cwd=ROOT, env=isolated, timeout=300)
    assert result.returncode == environment.EXIT_ERROR, result.stderr[-3000:]
    error = events_of(result.stdout)[-1]
    assert error["event"] == "error" and error["kind"] == "network" and error["host"] == "127.0.0.1:9"
    assert error["torch_index"] is True  # PyTorch's index (here its override), not pip's own: PyTorch Index
    assert error["message"] == "the network: PyTorch's index 127.0.0.1:9 cannot be reached (connection refused)"
    assert "No matching distribution found for torch==2.13.0" in error["reason"]  # pip's own words, kept
    assert "No matching distribution found" in result.stderr and error["message"] in result.stderr  # the log
    assert not os.path.exists(tmp_path / "render-env") and not os.path.exists(tmp_path / "render-env.partial")
    assert time.monotonic() - started < 120
