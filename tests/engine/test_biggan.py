"""BigGAN through the real loader, on tiny models saved in the real format."""

import hashlib
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from blender_latentwalk.engine import LatentWalkError
from blender_latentwalk.engine.generators import biggan
from blender_latentwalk.engine.walk import latents
from blender_latentwalk.engine.walk.plan import DEFAULT_SETTINGS, RenderPlan

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
    z, classes = torch.from_numpy(latents.noise_vectors(plan)[:6]), torch.from_numpy(latents.class_vectors(plan)[:6])
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
    first = run_cli("render", str(plan_path), *common, "--out", str(chunks), "--plan-indices", "0-10", "--batch-size", "3")
    mixed = run_cli("render", str(plan_path), *common, "--out", str(chunks), "--plan-indices", "11-23",
                    "--batch-size", "7")  # another batch size in a folder with current frames: the contract refuses
    assert mixed.returncode == 2 and "render contract" in mixed.stderr and "batch size 3" in mixed.stderr
    second = run_cli("render", str(plan_path), *common, "--out", str(chunks), "--plan-indices", "11-23")  # the folder's
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    names = sorted(n for n in os.listdir(whole) if n.endswith(".png"))
    assert names == sorted(n for n in os.listdir(chunks) if n.endswith(".png")) and len(names) == 24
    assert names[0] == "frame_000010.png" and names[-1] == "frame_000033.png"
    for name in names:
        assert (whole / name).read_bytes() == (chunks / name).read_bytes(), name


def test_render_cli_errors_are_one_line(tiny_models, tmp_path):
    small_plan().save(tmp_path / "plan.npz")
    result = run_cli("render", str(tmp_path / "plan.npz"), "--biggan", str(tiny_models), "--sd", "none",
                     "--out", str(tmp_path / "o"), "--plan-indices", "20-40")
    assert result.returncode == 2 and "outside the plan's 0-23" in result.stderr
    result = run_cli("render", str(tmp_path / "plan.npz"), "--biggan", str(tmp_path / "nothing"), "--sd", "none",
                     "--out", str(tmp_path / "o"))
    assert result.returncode == 2 and "neither a folder" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("k", range(51))
def test_every_grid_truncation_uses_its_own_batch_norm_statistics(k):
    from pytorch_pretrained_biggan.model import BigGANBatchNorm

    norm = BigGANBatchNorm(2, n_stats=51, conditional=False)
    with torch.no_grad():
        norm.running_means.copy_(torch.arange(51.0)[:, None].repeat(1, 2))  # row j holds mean j
        norm.running_vars.fill_(1.0 - norm.eps)
        norm.weight.fill_(1.0)
        norm.bias.zero_()
    # The truncations the walk gives (k steps of 0.02; the walk starts at 0.02, the grid at 0).
    truncation = float(np.round(k) * latents.TRUNCATION_STEP)
    x = torch.zeros(1, 2, 1, 1)
    out = biggan._fused_batch_norm(norm, x, truncation)
    # (0 - mean k) / sqrt(var + eps) = -k exactly when row k, and only row k, is used.
    assert out.flatten().tolist() == [-float(k), -float(k)], (truncation, out.flatten().tolist())
    assert biggan.statistics_index(truncation, 51) == (k, 0.0)


def test_off_grid_truncation_interpolates_as_the_package_does():
    start, coef = biggan.statistics_index(0.5 + 0.005, 51)  # a quarter of the way from row 25 to 26
    assert start == 25 and coef == pytest.approx(0.25)


def test_weights_with_missing_or_unexpected_keys_are_refused_naming_them(tiny_models, tmp_path):
    state = torch.load(tiny_models / "pytorch_model.bin", weights_only=True)
    removed = "generator.conv_to_rgb.bias"
    del state[removed]
    state["generator.extra_layer.weight"] = torch.zeros(3)
    broken = tmp_path / "broken"
    broken.mkdir()
    torch.save(state, broken / "pytorch_model.bin")
    (broken / "config.json").write_bytes((tiny_models / "config.json").read_bytes())
    with pytest.raises(LatentWalkError) as error:
        biggan.load(str(broken), device="cpu")
    message = str(error.value)
    assert f"missing {removed}" in message and "unexpected generator.extra_layer.weight" in message
    assert str(broken / "pytorch_model.bin") in message and "\n" not in message


def test_weights_that_are_not_plain_tensors_are_not_unpickled(tiny_models, tmp_path):
    import argparse

    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "config.json").write_bytes((tiny_models / "config.json").read_bytes())
    torch.save({"weights": argparse.Namespace(a=1)}, folder / "pytorch_model.bin")  # an arbitrary object
    with pytest.raises(LatentWalkError, match="could not be loaded \\(UnpicklingError"):
        biggan.load(str(folder), device="cpu")


def test_a_pretrained_name_loads_without_links_or_temporary_folders(tiny_models, tmp_path, monkeypatch):
    import tempfile

    from pytorch_pretrained_biggan import file_utils
    from pytorch_pretrained_biggan import model as biggan_model

    for url, name in ((biggan_model.PRETRAINED_MODEL_ARCHIVE_MAP["biggan-deep-256"], "pytorch_model.bin"),
                      (biggan_model.PRETRAINED_CONFIG_ARCHIVE_MAP["biggan-deep-256"], "config.json")):
        (tmp_path / hashlib.sha256(url.encode()).hexdigest()).write_bytes((tiny_models / name).read_bytes())
    monkeypatch.setattr(file_utils, "PYTORCH_PRETRAINED_BIGGAN_CACHE", str(tmp_path))

    def no_links(*args, **kwargs):  # Windows without Developer Mode
        raise OSError(1314, "A required privilege is not held by the client")

    monkeypatch.setattr(os, "symlink", no_links)
    temp_root = tmp_path / "temp"
    temp_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp_root))
    for _ in range(2):
        model, _, _ = biggan.load("biggan-deep-256", device="cpu")
        assert model.config.output_dim == 32
    assert os.listdir(temp_root) == []  # nothing left behind per load
