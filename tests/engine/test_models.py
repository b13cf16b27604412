"""Models: the catalogue's view of this machine, and downloads from a real HTTP server on 127.0.0.1.

The server (hub_server.py) speaks enough of the Hugging Face hub's API for huggingface_hub's own
snapshot_download, and serves BigGAN's archive as plain files; the worker and the CLI run as
processes with HF_ENDPOINT / LATENTWALK_BIGGAN_ENDPOINT pointing at it, exactly as a user's would
point at the hub. What is downloaded is then loaded and rendered through the real loading code.
"""

import glob
import json
import os
import subprocess
import sys

import pytest

from blender_latentwalk.engine.generators import biggan
from blender_latentwalk.engine.diffusion import img2img
from blender_latentwalk.engine.setup import models
from blender_latentwalk.engine.errors import LatentWalkError
from blender_latentwalk.engine.worker import messages
from hub_server import ModelServer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MIB = 1 << 20


def tiny_vae(folder):
    """An untrained AutoencoderTiny a little over 10 MiB (huggingface_hub reads in 10 MiB chunks)."""
    import torch
    from diffusers import AutoencoderTiny

    torch.manual_seed(0)
    vae = AutoencoderTiny(encoder_block_out_channels=(96, 96, 96, 96), decoder_block_out_channels=(96, 96, 96, 96))
    vae.save_pretrained(folder)
    (folder / "README.md").write_text("UNTRAINED tiny VAE stand-in\n")
    (folder / "taesd_decoder.pth").write_bytes(b"\0" * 1000)  # another format: never fetched
    return folder


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(server, {name: folder served}) with a pipeline, a Tiny VAE and BigGAN's archive."""
    pytest.importorskip("torch")
    pytest.importorskip("huggingface_hub")
    folder = tmp_path_factory.mktemp("served")
    pipeline = img2img.make_tiny_pipeline(str(folder / "sd"))
    # What real repositories hold besides: a single-file checkpoint and fp16 variants, never fetched.
    (folder / "sd" / "sd_single_file.safetensors").write_bytes(b"\0" * 5000)
    (folder / "sd" / "unet" / "diffusion_pytorch_model.fp16.safetensors").write_bytes(b"\0" * 5000)
    vae = tiny_vae(folder / "vae")
    tiny_biggan = biggan.make_tiny_model(str(folder / "biggan"))
    server = ModelServer()
    server.add_repo("tiny/sd", pipeline)
    server.add_repo("tiny/vae", str(vae))
    for kind, file_name in (("config.json", biggan.CONFIG_NAME), ("pytorch_model.bin", biggan.WEIGHTS_NAME)):
        server.files[f"/biggan/biggan-deep-128-{kind}"] = open(os.path.join(tiny_biggan, file_name), "rb").read()
    yield server, {"tiny/sd": pipeline, "tiny/vae": str(vae), "biggan": tiny_biggan}
    server.close()


def environment(server, home):
    """A user's environment whose caches are in ``home`` and whose hub is the loopback server."""
    env = dict(os.environ, PYTHONPATH=ROOT, HF_ENDPOINT=server.url, HF_HOME=str(home / "hf"),
               HF_HUB_DISABLE_TELEMETRY="1", PYTORCH_PRETRAINED_BIGGAN_CACHE=str(home / "biggan"),
               **{models.ENV_BIGGAN_ENDPOINT: server.url}, HF_HUB_OFFLINE="0")
    for name in ("HF_HUB_CACHE", "TRANSFORMERS_OFFLINE"):
        env.pop(name, None)
    return env


ENDS = (messages.RenderDone, messages.DownloadDone, messages.RequestFailed)  # the last event of a request


class Worker:
    """The render worker as a process, spoken to over its JSON-lines protocol (engine/worker/messages.py) as the
    add-on does."""

    def __init__(self, env, cwd):
        self.process = subprocess.Popen([sys.executable, "-m", "blender_latentwalk.engine", "worker"],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True, env=env, cwd=cwd)
        assert isinstance(self.next(), messages.Ready)

    def send(self, request):
        self.process.stdin.write(messages.encode(request) + "\n")
        self.process.stdin.flush()

    def next(self):
        line = self.process.stdout.readline()
        assert line, self.process.stderr.read()[-3000:]
        return messages.decode_event(line)

    def until_end(self, on_progress=None):
        events = []
        while not events or not isinstance(events[-1], ENDS):
            events.append(self.next())
            if on_progress is not None and isinstance(events[-1], messages.Progress):
                on_progress(events[-1])
        return events

    def close(self):
        self.send(messages.QuitRequest())
        assert self.process.wait(60) == 0


def in_engine(env, code):
    """Run ``code`` in a fresh engine Python with ``env`` (huggingface_hub reads its settings at import)."""
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_hub_download_progress_cancel_resume_and_render(served, tmp_path):
    server, folders = served
    env = environment(server, tmp_path)
    worker = Worker(env, tmp_path)
    try:
        # A pipeline: progress in bytes up to the size of exactly the files the loader reads.
        worker.send(messages.DownloadRequest(id=1, model="tiny/sd", role="pipeline"))
        events = worker.until_end()
        assert isinstance(events[-1], messages.DownloadDone) and not events[-1].stopped, events[-1]
        progress = [(e.done, e.total) for e in events if isinstance(e, messages.Progress)]
        expected = sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(folders["tiny/sd"])
                       for name in names if name not in ("README.txt", "sd_single_file.safetensors")
                       and ".fp16." not in name)
        assert progress[-1] == (expected, expected) and len(progress) >= 2
        assert [d for d, _ in progress] == sorted(d for d, _ in progress)
        fetched = {path for method, path, _ in server.requests if method == "GET" and "/resolve/" in path}
        assert not any(p.endswith(("sd_single_file.safetensors", ".fp16.safetensors", "README.txt")) for p in fetched)
        state = models.ModelState.from_dict(events[-1].model)
        assert state.present and state.size_bytes == expected
        assert state.path.startswith(str(tmp_path / "hf" / "hub")) and os.path.isfile(
            os.path.join(state.path, "unet", "diffusion_pytorch_model.safetensors"))

        # The Tiny VAE (10+ MiB), cancelled once its config.json is in and while its weights arrive:
        # the cache holds a part of it, which does not count as the model.
        weights = "diffusion_pytorch_model.safetensors"
        size = os.path.getsize(os.path.join(folders["tiny/vae"], weights))
        assert size > 10 * MIB
        server.delay_s = 0.002
        worker.send(messages.DownloadRequest(id=2, model="tiny/vae", role="vae"))
        config_cached = str(tmp_path / "hf" / "hub" / "models--tiny--vae" / "snapshots" / "*" / "config.json")
        cancel = {"sent": False}

        def cancel_once_the_config_is_in(event):  # the files come in parallel: wait for the small one
            if not cancel["sent"] and event.done and glob.glob(config_cached):
                cancel["sent"] = True
                worker.send(messages.CancelRequest(id=2))

        events = worker.until_end(on_progress=cancel_once_the_config_is_in)
        assert cancel["sent"], "the weights arrived before the config: slow the server down"
        server.delay_s = 0.0
        assert isinstance(events[-1], messages.DownloadDone) and events[-1].stopped, events[-1]
        assert not events[-1].model["present"]
        assert events[-1].model["missing"].startswith("incomplete: no weights")
        listed = json.loads(in_engine(env, "from blender_latentwalk.engine import cli; cli.main(['models', "
                                           "'--tiny-vae', 'tiny/vae', '--json'])"))
        assert listed[0]["name"] == "tiny/vae" and not listed[0]["present"]

        # Cut off after 11 MiB: huggingface_hub asks for the rest from the 10 MiB it kept.
        commit = server.repos["tiny/vae"][0]
        path = f"/tiny/vae/resolve/{commit}/{weights}"
        server.cut_after[path] = 11 * MIB
        before = len(server.ranges(path))
        worker.send(messages.DownloadRequest(id=3, model="tiny/vae", role="vae"))
        events = worker.until_end()
        assert isinstance(events[-1], messages.DownloadDone) and events[-1].model["present"], events[-1]
        assert server.ranges(path)[before:] == [None, f"bytes={10 * MIB}-"]
        assert [e.done for e in events if isinstance(e, messages.Progress)][-1] == events[-1].model["size_bytes"]

        # What was downloaded renders, through the loaders users take (hub ids, offline).
        plan = tmp_path / "plan.npz"
        _plan(plan)
        worker.send(messages.RenderRequest(
            id=4, plan_path=str(plan), generator=folders["biggan"], out_folder=str(tmp_path / "frames"), device="cpu",
            plan_index_ranges=[[0, 1]], batch_size=2,
            img2img={"model": "tiny/sd", "width": 32, "height": 32, "tiny_vae": "tiny/vae"}))
        events = worker.until_end()
        assert isinstance(events[-1], messages.RenderDone) and events[-1].rendered == [1, 2], events[-1]
    finally:
        worker.close()


def _plan(path):
    import numpy as np

    from blender_latentwalk.engine.walk.plan import DEFAULT_SETTINGS, RenderPlan

    n = 2
    RenderPlan(frame_start=1, fps=24, fps_base=1.0, seed=0, band_names=["a"], bands=np.ones((1, n)),
               band_weights=np.ones((1, n)), onset=np.zeros(n), chroma=np.ones((n, 12)), truncation=np.full(n, 0.5),
               pulse=np.ones(n), speed=np.ones(n), jitter=np.zeros(n), strength=np.full(n, 0.5),
               steps=np.full(n, 2.0), settings=dict(DEFAULT_SETTINGS, prompts=["a volcano"])).save(path)


def test_biggan_download_resumes_where_it_stopped_and_loads(served, tmp_path):
    server, folders = served
    env = environment(server, tmp_path)
    weights_path = "/biggan/biggan-deep-128-pytorch_model.bin"
    size = len(server.files[weights_path])
    worker = Worker(env, tmp_path)
    try:
        # Cancelled mid-file: the partial file stays for the next attempt and counts for nothing.
        server.delay_s = 0.003
        worker.send(messages.DownloadRequest(id=1, model="biggan-deep-128", role="biggan"))
        config_size = len(server.files["/biggan/biggan-deep-128-config.json"])
        events = worker.until_end(
            on_progress=lambda e: e.done > config_size and worker.send(messages.CancelRequest(id=1)))
        server.delay_s = 0.0
        assert isinstance(events[-1], messages.DownloadDone) and events[-1].stopped, events[-1]
        assert not events[-1].model["present"]
        partial = [n for n in os.listdir(tmp_path / "biggan") if n.endswith(models.PARTIAL_SUFFIX)]
        assert len(partial) == 1
        kept = os.path.getsize(tmp_path / "biggan" / partial[0])
        assert 0 < kept < size

        # The next attempt asks for the rest; its connection is cut 100 kB in and resumed again.
        server.cut_after[weights_path] = 100_000
        before = len(server.ranges(weights_path))
        worker.send(messages.DownloadRequest(id=2, model="biggan-deep-128", role="biggan"))
        events = worker.until_end()
        assert isinstance(events[-1], messages.DownloadDone) and events[-1].model["present"], events[-1]
        assert server.ranges(weights_path)[before:] == [f"bytes={kept}-", f"bytes={kept + 100_000}-"]
        progress = [(e.done, e.total) for e in events if isinstance(e, messages.Progress)]
        total = size + config_size
        assert progress[-1] == (total, total)
        cached = sorted(os.listdir(tmp_path / "biggan"))
        assert not [n for n in cached if n.endswith(models.PARTIAL_SUFFIX)] and len(cached) == 4  # 2 files + metadata

        # Loaded by name through engine/generators/biggan.py, and the same bytes as served.
        plan = tmp_path / "plan.npz"
        _plan(plan)
        worker.send(messages.RenderRequest(
            id=3, plan_path=str(plan), generator="biggan-deep-128", out_folder=str(tmp_path / "frames"), device="cpu",
            plan_index_ranges=[[0, 1]], batch_size=2, img2img={"model": "none", "width": 32, "height": 32}))
        events = worker.until_end()
        assert isinstance(events[-1], messages.RenderDone) and events[-1].rendered == [1, 2], events[-1]
    finally:
        worker.close()
    out = in_engine(env, "from blender_latentwalk.engine.generators import biggan; print(biggan.resolve('biggan-deep-128')[1])")
    assert open(out.strip(), "rb").read() == server.files[weights_path]


def test_offline_mode_refuses_and_changes_nothing(served, tmp_path):
    server, _ = served
    env = dict(environment(server, tmp_path), HF_HUB_OFFLINE="1")
    before = len(server.requests)
    for name in ("tiny/sd", "biggan-deep-128"):
        result = subprocess.run([sys.executable, "-m", "blender_latentwalk.engine", "models", "download", name],
                                env=env, capture_output=True, text=True, cwd=ROOT)
        assert result.returncode == 2
        assert "HF_HUB_OFFLINE" in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert len(server.requests) == before
    assert not os.path.exists(tmp_path / "hf") and not os.path.exists(tmp_path / "biggan")


def test_cli_lists_and_downloads_with_progress(served, tmp_path):
    server, _ = served
    env = environment(server, tmp_path)
    command = [sys.executable, "-m", "blender_latentwalk.engine", "models"]
    listed = subprocess.run(command + ["--sd", "tiny/sd"], env=env, capture_output=True, text=True, cwd=ROOT)
    assert listed.returncode == 0 and "tiny/sd: sd: not here (not in the Hugging Face cache)" in listed.stdout
    assert "stabilityai/sd-turbo: SD Turbo: not here" in listed.stdout
    done = subprocess.run(command + ["download", "tiny/sd"], env=env, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "(100%)" in done.stdout and "on this machine" in done.stdout.splitlines()[-1]
    listed = subprocess.run(command + ["--sd", "tiny/sd"], env=env, capture_output=True, text=True, cwd=ROOT)
    assert "tiny/sd: sd: on this machine" in listed.stdout and str(tmp_path / "hf" / "hub") in listed.stdout


def test_cli_download_stops_on_ctrl_c_and_continues_next_time(served, tmp_path):
    import signal

    server, _ = served
    env = environment(server, tmp_path)
    weights_path = "/biggan/biggan-deep-128-pytorch_model.bin"
    command = [sys.executable, "-m", "blender_latentwalk.engine", "models", "download", "biggan-deep-128"]
    server.delay_s = 0.003
    try:
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   cwd=ROOT)
        for line in process.stdout:
            if "biggan-deep-128:" in line and "(0%)" not in line:
                process.send_signal(signal.SIGINT)  # Ctrl+C, mid-file
                break
        output, errors = process.communicate(timeout=120)
    finally:
        server.delay_s = 0.0
    assert process.returncode == 2 and "download stopped; run it again to continue" in errors, errors
    assert "Traceback" not in errors
    partial = [n for n in os.listdir(tmp_path / "biggan") if n.endswith(models.PARTIAL_SUFFIX)]
    kept = os.path.getsize(tmp_path / "biggan" / partial[0])
    before = len(server.ranges(weights_path))
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0 and "on this machine" in done.stdout.splitlines()[-1], done.stderr
    assert server.ranges(weights_path)[before:] == [f"bytes={kept}-"]


def test_files_to_fetch_takes_what_the_loader_reads():
    listing = ["model_index.json", "sd_turbo.safetensors", "README.md", "scheduler/scheduler_config.json",
               "text_encoder/config.json", "text_encoder/model.safetensors", "text_encoder/model.fp16.safetensors",
               "tokenizer/vocab.json", "tokenizer/merges.txt", "unet/config.json",
               "unet/diffusion_pytorch_model.safetensors", "unet/diffusion_pytorch_model.fp16.safetensors",
               "unet/diffusion_pytorch_model.bin", "vae/config.json", "vae/diffusion_pytorch_model.bin",
               "vae/diffusion_pytorch_model.msgpack", "safety_checker/model.safetensors"]
    index = {"_class_name": "StableDiffusionPipeline", "scheduler": ["diffusers", "EulerDiscreteScheduler"],
             "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
             "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
             "safety_checker": [None, None]}
    assert models.files_to_fetch(listing, index) == [
        "model_index.json", "scheduler/scheduler_config.json", "text_encoder/config.json",
        "text_encoder/model.safetensors", "tokenizer/merges.txt", "tokenizer/vocab.json", "unet/config.json",
        "unet/diffusion_pytorch_model.safetensors", "vae/config.json", "vae/diffusion_pytorch_model.bin"]
    assert models.files_to_fetch(["config.json", "diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin",
                                  "taesd_decoder.pth", "README.md", "images/a.png"]) == [
        "config.json", "diffusion_pytorch_model.safetensors"]


def test_a_folder_missing_a_part_is_not_a_model(models, tmp_path):
    biggan_folder, sd_folder = models
    from blender_latentwalk.engine.setup import models as catalogue

    assert catalogue.state(sd_folder, "pipeline").present
    assert catalogue.state(biggan_folder, "biggan").present
    os.unlink(os.path.join(sd_folder, "unet", "diffusion_pytorch_model.safetensors"))
    state = catalogue.state(sd_folder, "pipeline")
    assert not state.present and "no weights" in state.missing and "unet" in state.missing
    assert not state.downloadable


def test_what_cannot_be_fetched_is_refused_before_any_network(tmp_path):
    for name, role in (("org/biggan", "biggan"), ("biggan-deep-1024", "biggan"), (str(tmp_path), "pipeline"),
                       ("none", "pipeline"), ("not a hub id", "vae")):
        state = models.state(name, role)
        assert not state.downloadable and (name == "none" or not state.present)
        with pytest.raises(LatentWalkError) as error:
            models.download(name, role)
        assert name in str(error.value)


def test_a_python_without_the_render_stack_lists_and_is_told_how_to_get_it(tmp_path):
    """Blender's own Python before the set-up: the Models list works, a download says what to press."""
    bare = tmp_path / "bare"
    subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip", str(bare)],
                   check=True)
    python = str(bare / "bin" / "python")
    import numpy  # Blender's Python has numpy and little else: lend the bare one this numpy

    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    numpy_folder = os.path.dirname(numpy.__file__)
    for name in ("numpy", "numpy.libs"):
        source = os.path.join(os.path.dirname(numpy_folder), name)
        if os.path.isdir(source):
            os.symlink(source, os.path.join(site, name))
    environment = {**os.environ, "PYTHONPATH": ROOT, "HF_HOME": str(tmp_path / "hf"),
                   "PYTORCH_PRETRAINED_BIGGAN_CACHE": str(tmp_path / "biggan")}
    listing = subprocess.run([python, "-m", "blender_latentwalk.engine", "models"], capture_output=True, text=True,
                             env=environment, cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert "biggan-deep-256: BigGAN 256: not here" in listing.stdout
    fetch = subprocess.run([python, "-m", "blender_latentwalk.engine", "models", "download", "biggan-deep-256"],
                           capture_output=True, text=True, env=environment, cwd=tmp_path)
    assert fetch.returncode != 0 and "Traceback" not in fetch.stderr, fetch.stderr
    assert "Set Up Render Environment" in fetch.stderr and python in fetch.stderr


REFUSING = "http://127.0.0.1:9"  # a loopback port nothing listens on: the connection is refused at once


def test_a_download_that_cannot_connect_says_the_network_first(tmp_path):
    """Issue 19: a failed Download said "the render failed: ConnectError ..."; now what failed comes first."""
    pytest.importorskip("huggingface_hub")
    env = dict(os.environ, PYTHONPATH=ROOT, HF_ENDPOINT=REFUSING, HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="0",
               HF_HUB_DISABLE_TELEMETRY="1", PYTORCH_PRETRAINED_BIGGAN_CACHE=str(tmp_path / "biggan"),
               **{models.ENV_BIGGAN_ENDPOINT: REFUSING})
    env.pop("HF_HUB_CACHE", None)
    worker = Worker(env, str(tmp_path))
    try:
        for request_id, (name, role) in enumerate((("tiny/sd", "pipeline"), ("biggan-deep-128", "biggan")), 1):
            worker.send(messages.DownloadRequest(id=request_id, model=name, role=role))
            failed = worker.until_end()[-1]
            assert isinstance(failed, messages.RequestFailed), failed
            assert failed.message == ("Download failed: the network: 127.0.0.1:9 cannot be reached (connection "
                                      "refused). Check the connection (or proxy), then download again."), failed
    finally:
        worker.close()
    assert not os.path.exists(tmp_path / "biggan") or not os.listdir(tmp_path / "biggan")


def test_a_full_disk_and_an_unforeseen_error_say_what_failed():
    full = OSError(28, "No space left on device")
    assert str(models.download_failure("tiny/sd", full, "hub", os.path.expanduser("~/x"))).startswith(
        "Download failed: the disk is full: free space in ~/x, then download again")
    odd = RuntimeError("the server sent a riddle")
    assert str(models.download_failure("tiny/sd", odd, "hub", "/x")) == (
        "Download failed: sd: RuntimeError: the server sent a riddle. Download again to retry; details in the "
        "worker's log.")


def test_a_missing_model_is_named_first_and_a_folder_by_its_last_part(tmp_path):
    cache = tmp_path / "biggan"
    state = models.ModelState("biggan-deep-256", "biggan", "BigGAN 256", False, 0, str(cache), "not in the cache")
    assert models.missing_message(state, "press Download") == (
        "Model missing: BigGAN 'biggan-deep-256' is not on this machine: press Download")
    folder = tmp_path / "very" / "long" / "path" / "my-biggan"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    found = models.first_missing([("", "pipeline"), ("none", "pipeline"), (str(folder), "biggan")])
    assert found is not None and found.name == str(folder)
    assert models.missing_message(found, "choose another") == (
        "Model missing: BigGAN folder 'my-biggan' has no pytorch_model.bin: choose another")
    assert models.first_missing([("none", "pipeline")]) is None
    gone = models.state(str(tmp_path / "no-such-sd"), "pipeline")
    assert models.missing_message(gone, "pick another") == (
        "Model missing: SD model folder 'no-such-sd' does not exist: pick another")
    odd = models.state("biggan-deep-1024", "biggan")
    assert models.missing_message(odd, "see the list") == (
        "Model missing: BigGAN 'biggan-deep-1024' is neither a folder nor a model to download: see the list")


def test_the_hub_cache_is_read_without_huggingface_hub(tmp_path, monkeypatch):
    """Blender's own Python has no huggingface_hub: the cache's layout is read as it writes it."""
    snapshot = tmp_path / "hub" / "models--org--tiny" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "model_index.json").write_text("{}")
    (tmp_path / "hub" / "models--org--tiny" / "refs").mkdir()
    (tmp_path / "hub" / "models--org--tiny" / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(models, "hub_cache_folder", lambda: str(tmp_path / "hub"))
    assert models._hub_snapshot_by_layout("org/tiny", models.PIPELINE) == str(snapshot)
    assert models._hub_snapshot_by_layout("org/other", models.PIPELINE) is None
    assert models._hub_snapshot_by_layout("org/tiny", models.VAE) is None  # a VAE's config.json is not there


def test_stand_ins_are_named_as_such_and_fit_the_sidebar(tmp_path):
    folder = tmp_path / "biggan-tiny-UNTRAINED"
    folder.mkdir()
    assert models.is_stand_in(str(folder)) and not models.is_stand_in("biggan-deep-256")
    assert models.label_of(str(folder), models.BIGGAN) == "BigGAN stand-in"
    assert models.label_of(str(folder), models.PIPELINE) == "SD stand-in"


@pytest.mark.parametrize("text, reason", [
    ("[Errno 111] Connection refused", "connection refused"),
    ("httpx.ConnectError: [Errno -3] Temporary failure in name resolution", "its name does not resolve"),
    ("ConnectTimeoutError: Connection to x timed out", "timed out"),
    ("[Errno 101] Network is unreachable", "no route to it"),
    ("No matching distribution found for torch", ""),
])
def test_network_trouble_is_told_in_a_few_words(text, reason):
    from blender_latentwalk.engine.errors import network_reason

    assert network_reason(text) == reason


def test_an_exception_chain_says_the_network_by_its_classes():
    from blender_latentwalk.engine.errors import describe_exception, network_reason

    class ConnectError(Exception):  # httpx's: no OSError, its words only in the class name and the cause
        pass

    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except OSError as cause:
            raise ConnectError("") from cause
    except ConnectError as error:
        assert network_reason(describe_exception(error)) == "connection refused"
    assert network_reason(describe_exception(ConnectError("x"))) == "no connection"


def test_long_reports_lose_their_parentheses_first_then_words():
    from blender_latentwalk.engine.errors import REPORT_LIMIT_CHARS, fit_report

    bake = ("Latent Walk: the bake is out of date (the scene runs at 29.97 fps, the curves were baked at 24 fps): "
            "press Bake Curves to re-bake (curves you edited are kept and retimed).")
    assert fit_report(bake) == ("Latent Walk: the bake is out of date (the scene runs at 29.97 fps, the curves were "
                                "baked at 24 fps): press Bake Curves to re-bake.")
    long = "Model missing: " + "word " * 60
    assert len(fit_report(long)) <= REPORT_LIMIT_CHARS and fit_report(long).endswith("word...")
    assert fit_report("short (kept)") == "short (kept)"
    # A long model name loses its middle before the advice at the end loses anything.
    missing = ("Model missing: SD model 'stabilityai/stable-diffusion-xl-base-1.0' is not on this machine: press "
               "Download in Models, or Use Stand-in Models to try with noise")
    assert fit_report(missing) == ("Model missing: SD model 'stability...-base-1.0' is not on this machine: press "
                                   "Download in Models, or Use Stand-in Models to try with noise")
