"""BigGAN through the real loader, on tiny models saved in the real format."""

import hashlib
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from blender_latentwalk.engine import LatentWalkError, biggan, walk
from blender_latentwalk.engine.plan import DEFAULT_SETTINGS, RenderPlan

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "blender_latentwalk.engine", *args],
                          capture_output=True, text=True, cwd=ROOT)


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    result = run_cli("make-tiny-models", str(folder))
    assert result.returncode == 0, result.stderr
    assert "UNTRAINED" in result.stdout
    return folder / "biggan-tiny-UNTRAINED"


def small_plan(n_frames=24, seed=5):
    rng = np.random.default_rng(seed)
    truncation = np.where(np.arange(n_frames) % 3 == 0, 0.4, 0.7)
    return RenderPlan(
        frame_start=10, fps=24, fps_base=1.0, seed=seed, band_names=["low", "high"],
        bands=rng.random((2, n_frames)), band_weights=np.ones((2, n_frames)), onset=rng.random(n_frames),
        chroma=rng.random((n_frames, 12)), truncation=truncation, pulse=np.ones(n_frames),
        speed=np.ones(n_frames), jitter=np.full(n_frames, 0.05), settings=dict(DEFAULT_SETTINGS, mode="travel"),
    )


def test_tiny_model_loads_through_the_real_loader(tiny_models):
    assert sorted(os.listdir(tiny_models)) == ["README.txt", "config.json", "pytorch_model.bin"]
    model, device, dtype = biggan.load(str(tiny_models), device="cpu")
    assert device.type == "cpu" and dtype == torch.float32
    with torch.inference_mode():
        image = model(torch.zeros(1, 128), torch.eye(1000)[:1], 0.5)
    assert image.shape == (1, 3, 32, 32)


def test_pretrained_name_resolves_from_the_package_cache_without_network(tiny_models, tmp_path, monkeypatch):
    from pytorch_pretrained_biggan import file_utils
    from pytorch_pretrained_biggan import model as biggan_model

    # Lay the tiny model out as pytorch-pretrained-biggan caches a download.
    for url, name in ((biggan_model.PRETRAINED_MODEL_ARCHIVE_MAP["biggan-deep-128"], "pytorch_model.bin"),
                      (biggan_model.PRETRAINED_CONFIG_ARCHIVE_MAP["biggan-deep-128"], "config.json")):
        cached = tmp_path / (hashlib.sha256(url.encode()).hexdigest() + "." + hashlib.sha256(b'"etag"').hexdigest())
        cached.write_bytes((tiny_models / name).read_bytes())
    monkeypatch.setattr(file_utils, "PYTORCH_PRETRAINED_BIGGAN_CACHE", str(tmp_path))
    monkeypatch.setattr("requests.head", lambda *a, **k: pytest.fail("tried the network"))
    model, _, _ = biggan.load("biggan-deep-128", device="cpu")
    assert model.config.output_dim == 32  # it is the tiny model we cached


def test_missing_model_fails_fast_with_where_to_put_it(tmp_path, monkeypatch):
    from pytorch_pretrained_biggan import file_utils

    monkeypatch.setattr(file_utils, "PYTORCH_PRETRAINED_BIGGAN_CACHE", str(tmp_path / "empty-cache"))
    start = time.perf_counter()
    with pytest.raises(LatentWalkError) as error:
        biggan.load("biggan-deep-256", device="cpu")
    assert time.perf_counter() - start < 5.0
    assert str(tmp_path / "empty-cache") in str(error.value) and "config.json" in str(error.value)
    with pytest.raises(LatentWalkError, match="lacks config.json and pytorch_model.bin"):
        biggan.load(str(tmp_path), device="cpu")
    with pytest.raises(LatentWalkError, match="neither a folder nor one of"):
        biggan.load("biggan-deep-1024", device="cpu")


def test_inference_preparation_keeps_the_output(tiny_models):
    from pytorch_pretrained_biggan import BigGAN

    original = BigGAN.from_pretrained(str(tiny_models)).eval()
    prepared, _, _ = biggan.load(str(tiny_models), device="cpu")
    assert prepared.generator.conv_to_rgb.out_channels == 3
    plan = small_plan()
    z, classes = torch.from_numpy(walk.noise_vectors(plan)[:6]), torch.from_numpy(walk.class_vectors(plan)[:6])
    with torch.inference_mode():
        expected, got = original(z, classes, 0.4), prepared(z, classes, 0.4)
    assert expected.std() > 0.05  # a real image, not saturated
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


def test_batches_share_one_truncation():
    truncation = np.array([0.4, 0.7, 0.4, 0.4, 0.7])
    groups = list(biggan.batches(truncation, range(5), batch_size=2))
    assert groups == [(0.4, [0, 2]), (0.4, [3]), (0.7, [1, 4])]


def test_whole_and_two_chunks_in_two_processes_are_byte_identical(tiny_models, tmp_path):
    plan_path = tmp_path / "plan.npz"
    small_plan().save(plan_path)
    whole, chunks = tmp_path / "whole", tmp_path / "chunks"
    common = ["--biggan", str(tiny_models), "--sd", "none", "--size", "32x32", "--device", "cpu"]
    assert run_cli("render", str(plan_path), *common, "--out", str(whole)).returncode == 0
    first = run_cli("render", str(plan_path), *common, "--out", str(chunks), "--frames", "0-10", "--batch-size", "3")
    second = run_cli("render", str(plan_path), *common, "--out", str(chunks), "--frames", "11-23",
                     "--batch-size", "7")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    names = sorted(n for n in os.listdir(whole) if n.endswith(".png"))
    assert names == sorted(n for n in os.listdir(chunks) if n.endswith(".png")) and len(names) == 24
    assert names[0] == "frame_000010.png" and names[-1] == "frame_000033.png"
    for name in names:
        assert (whole / name).read_bytes() == (chunks / name).read_bytes(), name


def test_render_cli_errors_are_one_line(tiny_models, tmp_path):
    small_plan().save(tmp_path / "plan.npz")
    result = run_cli("render", str(tmp_path / "plan.npz"), "--biggan", str(tiny_models), "--sd", "none",
                     "--out", str(tmp_path / "o"), "--frames", "20-40")
    assert result.returncode == 2 and "outside the plan's 0-23" in result.stderr
    result = run_cli("render", str(tmp_path / "plan.npz"), "--biggan", str(tmp_path / "nothing"), "--sd", "none",
                     "--out", str(tmp_path / "o"))
    assert result.returncode == 2 and "neither a folder" in result.stderr and "Traceback" not in result.stderr
