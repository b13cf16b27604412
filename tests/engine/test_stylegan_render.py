"""Rendering with StyleGAN model files (engine/generators/stylegan.py through the generator interface):
the tiny stand-ins `make-tiny-models` writes, deterministic, resumed and chunked byte for byte, and each
StyleGAN curve (psi, palette, noise, input transform) moving exactly the frames it should."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from blender_latentwalk.engine.generators import biggan, stylegan, stylegan2_network, stylegan_files  # noqa: E402
from blender_latentwalk.engine.generators.selection import for_model  # noqa: E402
from blender_latentwalk.engine.render import run, trust  # noqa: E402
from blender_latentwalk.engine.walk import latents  # noqa: E402
from blender_latentwalk.engine.walk.plan import DEFAULT_SETTINGS, RenderPlan  # noqa: E402

from render_helpers import ROOT, pngs  # noqa: E402

SIZE = (40, 24)  # not square: the frames are scaled and cropped as BigGAN's are
N_FRAMES = 12


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """{kind: path} of the stand-ins, written by the engine's own make-tiny-models code."""
    return stylegan.make_tiny_models(str(tmp_path_factory.mktemp("stylegan")))


def plan(n_frames=N_FRAMES, space="w", mode="displacement", **arrays):
    rng = np.random.default_rng(7)
    values = dict(bands=rng.random((2, n_frames)), band_weights=np.ones((2, n_frames)), onset=rng.random(n_frames),
                  chroma=rng.random((n_frames, 12)), truncation=np.where(np.arange(n_frames) % 3 == 0, 0.5, 0.8),
                  pulse=np.ones(n_frames), speed=np.ones(n_frames), jitter=np.full(n_frames, 0.05))
    values.update(arrays)
    return RenderPlan(frame_start=1, fps=24, fps_base=1.0, seed=5, band_names=["low", "high"],
                      settings=dict(DEFAULT_SETTINGS, mode=mode, latent_space=space, palette_seeds=[3, 14, 15, 92]),
                      **values)


def settings():
    return run.Img2ImgSettings(model="none", width=SIZE[0], height=SIZE[1])


def render(plan_, model, folder, **options):
    return run.render(plan_, model, settings(), str(folder), device="cpu", batch_size=4, **options)


def test_the_stand_ins_are_nvidia_pickles_and_a_rosinality_checkpoint_read_as_data(tiny):
    for kind in ("stylegan2", "stylegan3-t", "stylegan3-r"):
        records = stylegan_files.load_records(tiny[kind])
        assert set(records) == {"G", "G_ema", "D"}
        assert records["G_ema"].source_chars == len(stylegan_files.STAND_IN_SOURCE)
        with open(tiny[kind], "rb") as stream:
            assert b"torch_utils.persistence\n_reconstruct_persistent_obj" in stream.read()
    assert "g_ema" in torch.load(tiny["rosinality"], weights_only=False)
    assert "torch_utils" not in sys.modules and "dnnlib" not in sys.modules
    kinds = {kind: stylegan.load_network(path)[1] for kind, path in tiny.items()}
    assert kinds == {"stylegan2": "StyleGAN2", "stylegan3-t": "StyleGAN3", "stylegan3-r": "StyleGAN3",
                     "rosinality": "StyleGAN2"}


@pytest.mark.parametrize("kind", ["stylegan2", "stylegan3-t", "stylegan3-r", "rosinality"])
def test_a_render_is_deterministic_and_resumes_and_chunks_byte_identically(tiny, tmp_path, kind):
    whole = tmp_path / "whole"
    result = render(plan(), tiny[kind], whole)
    assert len(result.rendered) == N_FRAMES
    frames = pngs(whole)
    from PIL import Image

    assert Image.open(os.path.join(whole, "frame_000001.png")).size == SIZE
    assert len(set(frames.values())) == N_FRAMES  # the walk moves: no two frames alike
    again = tmp_path / "again"
    render(plan(), tiny[kind], again)
    assert pngs(again) == frames
    chunked = tmp_path / "chunked"
    for chunk in ([5, 6], [0, 1, 2], [9, 10, 11, 3, 4, 7, 8]):  # out of order, splitting aligned batches
        render(plan(), tiny[kind], chunked, plan_indices=chunk)
    assert pngs(chunked) == frames
    for name in ("frame_000003.png", "frame_000010.png"):
        os.remove(whole / name)
    resumed = render(plan(), tiny[kind], whole)
    assert sorted(resumed.rendered) == [3, 10] and pngs(whole) == frames


def test_z_and_w_walks_travel_and_the_palette_all_change_the_pictures(tiny, tmp_path):
    model = tiny["stylegan2"]
    looks = {}
    for name, plan_ in (("w", plan()), ("z", plan(space="z")), ("travel", plan(mode="travel"))):
        render(plan_, model, tmp_path / name)
        looks[name] = pngs(tmp_path / name)
    other_palette = plan()
    other_palette.settings["palette_seeds"] = [1, 2, 3, 4]
    render(other_palette, model, tmp_path / "palette")
    looks["palette"] = pngs(tmp_path / "palette")
    for a in looks:
        for b in looks:
            if a < b:
                assert all(looks[a][n] != looks[b][n] for n in looks[a]), (a, b)


def test_each_curve_moves_only_its_frames_keys_and_pixels(tiny, tmp_path):
    """A frame's key covers its own StyleGAN values: an edit on frames 5-6 changes those two keys, re-renders
    their aligned batch (frames 5-8 at batch size 4: its neighbours' values shape the batch's calls) and
    changes only their pixels."""
    cases = {"stylegan2": ("noise_strength", 0.0), "stylegan3-t": ("rotation_deg", 30.0)}
    for kind, (name, value) in cases.items():
        base = plan()
        keys = trust.frame_keys(base, tiny[kind], settings())
        edited_values = getattr(base, name).copy()
        edited_values[4:6] = value
        edited = plan(**{name: edited_values})
        edited_keys = trust.frame_keys(edited, tiny[kind], settings())
        assert [i for i in keys if keys[i] != edited_keys[i]] == [4, 5], kind
        folder = tmp_path / kind
        render(base, tiny[kind], folder)
        before = pngs(folder)
        result = render(edited, tiny[kind], folder)
        assert sorted(result.rendered) == [5, 6, 7, 8], kind
        after = pngs(folder)
        assert [n for n in before if before[n] != after[n]] == ["frame_000005.png", "frame_000006.png"], kind


def test_psi_zero_is_the_average_image_whatever_the_music(tiny, tmp_path):
    render(plan(truncation=np.zeros(N_FRAMES)), tiny["stylegan3-t"], tmp_path / "average")
    assert len(set(pngs(tmp_path / "average").values())) == 1


def test_biggan_keys_are_as_before_the_generator_interface(tmp_path):
    """BigGAN's frame keys are computed as they were before StyleGAN came: its finished frames stay current."""
    import hashlib
    import json
    from dataclasses import asdict

    model = biggan.make_tiny_model(str(tmp_path / "biggan"))
    plan_ = plan()
    plan_.settings.update(class_mode="chroma")
    z, classes, truncation = latents.generator_inputs(plan_)
    common = json.dumps({"version": trust.RENDER_VERSION, "biggan": trust.model_identity(model),
                         "img2img": dict(asdict(settings()), model="none", tiny_vae="")}, sort_keys=True).encode()
    expected = {}
    for index in range(plan_.n_frames):
        digest = hashlib.sha256(common)
        digest.update(z[index].tobytes())
        digest.update(classes[index].tobytes())
        digest.update(repr(float(truncation[index])).encode())
        expected[index] = digest.hexdigest()
    assert trust.frame_keys(plan_, model, settings()) == expected
    assert for_model(model).family == "biggan" and for_model(str(tmp_path / "g.pkl")).family == "stylegan"


def test_a_model_file_that_is_missing_or_refused_is_named(tiny, tmp_path):
    from blender_latentwalk.engine.errors import LatentWalkError

    with pytest.raises(LatentWalkError, match="does not exist"):
        render(plan(), str(tmp_path / "gone.pkl"), tmp_path / "out")
    from blender_latentwalk.engine.setup import models

    missing = models.state(str(tmp_path / "gone.pkl"), models.BIGGAN)  # what the add-on checks before a render
    assert not missing.present
    assert models.missing_message(missing, "advice").startswith(
        "Model missing: StyleGAN file 'gone.pkl' does not exist: pick it again with the file button")
    assert models.state(tiny["stylegan2"], models.BIGGAN).present
    damaged = tmp_path / "damaged.pkl"
    shutil.copy(tiny["stylegan2"], damaged)
    with open(damaged, "r+b") as stream:
        stream.truncate(2000)
    with pytest.raises(LatentWalkError, match="damaged.pkl"):
        render(plan(), str(damaged), tmp_path / "out2")


def test_the_engine_cli_renders_a_stylegan_file(tiny, tmp_path):
    plan_path = tmp_path / "plan.npz"
    plan().save(str(plan_path))
    command = [sys.executable, "-m", "blender_latentwalk.engine", "render", str(plan_path), "--generator",
               tiny["stylegan3-r"], "--sd", "none", "--out", str(tmp_path / "frames"), "--size", "40x24",
               "--device", "cpu"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert len(pngs(tmp_path / "frames")) == N_FRAMES


def test_a_model_file_replaced_in_place_renders_again(tiny, tmp_path):
    model = str(tmp_path / "model.pkl")
    shutil.copy(tiny["stylegan2"], model)
    render(plan(), model, tmp_path / "frames")
    stylegan_files.write_pickle(model, stylegan2_network.random_generator(9, **stylegan.TINY_STYLEGAN2),
                                stylegan.TINY_RESOLUTION)
    assert len(render(plan(), model, tmp_path / "frames").rendered) == N_FRAMES


def test_the_stand_ins_load_and_render_with_nvidia_modules_unimportable(tiny):
    """No torch_utils or dnnlib anywhere importable: a finder refuses them, and every stand-in still loads
    and makes a frame (NVIDIA's loader would need both)."""
    code = r"""
import importlib.abc, json, sys
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch_utils", "dnnlib"):
            raise ImportError(f"{name} must not be imported")
sys.meta_path.insert(0, Refuse())
import torch
from blender_latentwalk.engine.generators import stylegan
for path in json.loads(sys.argv[1]).values():
    network, kind = stylegan.load_network(path)
    z = torch.from_numpy(stylegan.walk_inputs.seed_latents([0], network.z_dim).astype("float32"))
    assert torch.isfinite(network(z, None)).all()
    print(kind)
assert not any(name.split(".")[0] in ("torch_utils", "dnnlib") for name in sys.modules)
"""
    import json

    done = subprocess.run([sys.executable, "-c", code, json.dumps(tiny)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["StyleGAN2", "StyleGAN3", "StyleGAN3", "StyleGAN2"]


def test_a_plan_starting_later_keeps_each_frames_key_and_picture(tiny, tmp_path):
    """The same values on the same Blender frames, in a plan that starts 4 frames later (the scene's start
    moved): the same keys, and pictures within one 8-bit level (the batches are cut elsewhere), jitter included.
    Without palette smoothing, which (as BigGAN's class smoothing and travel) still starts where the plan does:
    issue 23 anchors that to the song's first frame."""
    import io

    from PIL import Image

    whole = plan(n_frames=16, space="z")
    later = plan(n_frames=16, space="z")
    for name in RenderPlan.ARRAYS:
        values = getattr(later, name)
        if name in ("bands", "band_weights"):
            setattr(later, name, values[:, 4:])
        else:
            setattr(later, name, values[4:])
    later.frame_start = 5
    for each in (whole, later):
        each.settings["class_smoothing_ms"] = 0.0
    model = tiny["stylegan3-t"]
    keys, later_keys = trust.frame_keys(whole, model, settings()), trust.frame_keys(later, model, settings())
    assert all(later_keys[i] == keys[i + 4] for i in later_keys)
    render(whole, model, tmp_path / "whole")
    render(later, model, tmp_path / "later")
    first, second = pngs(tmp_path / "whole"), pngs(tmp_path / "later")
    for name, data in second.items():
        a, b = (np.asarray(Image.open(io.BytesIO(d)), np.int16) for d in (first[name], data))
        assert np.abs(a - b).max() <= 1, name


def test_settings_a_model_has_no_use_for_change_no_key(tiny):
    """StyleGAN3 has no per-layer noise, StyleGAN2 no input transform: changing them re-renders nothing."""
    for kind, name in (("stylegan3-r", "noise_strength"), ("stylegan2", "rotation_deg"), ("rosinality", "translate_x")):
        edited = plan(**{name: np.full(N_FRAMES, 0.25)})
        assert trust.frame_keys(plan(), tiny[kind], settings()) == trust.frame_keys(edited, tiny[kind], settings()), kind


def test_seeds_text_in_the_order_given_and_refused_before_any_work():
    import time

    from blender_latentwalk.engine.walk.stylegan_inputs import parse_seeds

    assert parse_seeds("3,14,15,92") == [3, 14, 15, 92] and parse_seeds("2-4, 0") == [2, 3, 4, 0]
    started = time.monotonic()
    for text, reason in (("0-999999999", "more than 256 seeds"), ("4294967296", "above the largest seed"),
                         ("", "is not a seed"), ("5-2", "ends before it starts"), ("1,,2", "is not a seed")):
        with pytest.raises(ValueError, match=reason):
            parse_seeds(text)
    assert time.monotonic() - started < 0.5  # a typo does not freeze Blender
