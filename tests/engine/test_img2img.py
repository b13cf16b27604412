"""img2img through diffusers' real loader, on a tiny pipeline written with save_pretrained."""

import time

import numpy as np
import pytest
import torch
from PIL import Image

from blender_latentwalk.engine import LatentWalkError
from blender_latentwalk.engine.diffusion import img2img
from blender_latentwalk.engine.imaging import resize

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    folder = img2img.make_tiny_pipeline(str(tmp_path_factory.mktemp("sd") / "tiny-sd-UNTRAINED"))
    return img2img.load(folder, CPU, torch.float32)


def source(seed=0, size=(32, 32)):
    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def fit(picture, width, height):
    """The render's scale and crop (on the device) of a PIL image: an (height, width, 3) uint8 array."""
    images = resize.apply(img2img.images_from_pictures([picture], CPU), resize.fit_resizes(picture.size, (width, height)))
    return img2img.pictures_from_images(images)[0]


def test_tiny_pipeline_loads_through_auto_pipeline(pipeline):
    assert type(pipeline).__name__ == "StableDiffusionImg2ImgPipeline"


def run(pipeline, frames, mix, seed=7, guidance=0.0, negative=""):
    embeddings = img2img.PromptEmbeddings(pipeline, negative, CPU)
    conditions = [embeddings.blend(mix, guidance > 1)] * len(frames)
    images = img2img.run(pipeline, img2img.images_from_pictures(frames, CPU), conditions, 0.6, guidance, 2,
                         [seed] * len(frames), CPU)
    return img2img.pictures_from_images(images)


def test_same_noise_every_frame_so_a_still_source_stays_still(pipeline):
    frame = fit(source(), 64, 48)
    batch = run(pipeline, [frame] * 3, {"a volcano": 1.0})
    alone = run(pipeline, [frame], {"a volcano": 1.0})
    assert batch[0].shape == (48, 64, 3)
    # The same noise for every frame: a still source stays still, to within a rounding step (kernels
    # round differently for other batch shapes; the render's aligned batches keep its bytes fixed).
    assert max(np.abs(image.astype(int) - alone[0].astype(int)).max() for image in batch) <= 1
    other_prompt = run(pipeline, [frame], {"a lake": 1.0})
    assert not np.array_equal(other_prompt[0], alone[0])
    other_seed = run(pipeline, [frame], {"a volcano": 1.0}, seed=8)
    assert not np.array_equal(other_seed[0], alone[0])


def test_blended_prompts_lie_between_the_two(pipeline):
    frame = fit(source(), 64, 48)
    volcano, lake = run(pipeline, [frame], {"a volcano": 1.0})[0], run(pipeline, [frame], {"a lake": 1.0})[0]
    half = run(pipeline, [frame], {"a volcano": 0.5, "a lake": 0.5})[0]
    mostly_volcano = run(pipeline, [frame], {"a volcano": 0.9, "a lake": 0.1})[0]

    def distance(a, b):
        return np.abs(a.astype(int) - b.astype(int)).mean()

    assert distance(half, volcano) > 0 and distance(half, lake) > 0
    assert distance(mostly_volcano, volcano) < distance(half, volcano) < distance(lake, volcano)


def test_strength_acts_in_whole_steps_as_diffusers_runs_them(pipeline):
    frame = fit(source(), 64, 48)
    embeddings = img2img.PromptEmbeddings(pipeline, "", CPU)
    condition = [embeddings.blend({"a volcano": 1.0}, False)]

    def at(strength, steps=4):
        images = img2img.run(pipeline, img2img.images_from_pictures([frame], CPU), condition, strength, 0.0, steps,
                             [3], CPU)
        return img2img.pictures_from_images(images)[0]

    # diffusers runs int(4 x strength) steps: 0.5 and 0.74 are the same 2 steps, 0.75 is 3.
    assert np.array_equal(at(0.5), at(0.74)) and not np.array_equal(at(0.5), at(0.75))
    assert img2img.effective_steps(4, 0.74) == 2 and img2img.effective_steps(4, 0.75) == 3
    assert img2img.effective_steps(10, np.float32(0.7)) == 7  # float32 0.69999999 is still 7 of 10
    for steps in (1, 2, 3, 4, 10):
        for effective in range(1, steps + 1):
            strength = img2img.pipeline_strength(steps, effective)
            assert 0 < strength <= 1 and min(int(steps * strength), steps) == effective


def test_guidance_uses_the_negative_prompt(pipeline):
    frame = fit(source(), 64, 48)
    plain = run(pipeline, [frame], {"a volcano": 1.0}, guidance=4.0)[0]
    negative = run(pipeline, [frame], {"a volcano": 1.0}, guidance=4.0, negative="blurry")[0]
    assert not np.array_equal(plain, negative)


def test_fit_fills_any_aspect_without_bars():
    wide = fit(source(size=(40, 40)), 160, 90)
    tall = fit(source(size=(40, 40)), 90, 160)
    assert wide.shape == (90, 160, 3) and tall.shape == (160, 90, 3)


def test_none_skips_diffusion_and_missing_models_fail_fast(tmp_path, monkeypatch):
    assert img2img.load("none", CPU, torch.float32) is None
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    start = time.perf_counter()
    with pytest.raises(LatentWalkError, match="could not be loaded from the Hugging Face cache"):
        img2img.load("stabilityai/sd-turbo", CPU, torch.float32)
    assert time.perf_counter() - start < 5.0
    with pytest.raises(LatentWalkError, match="could not be loaded from the folder"):
        img2img.load(str(tmp_path), CPU, torch.float32)


def test_sdxl_layout_pipelines_load_blend_prompts_and_use_the_negative_prompt(tmp_path):
    folder = img2img.make_tiny_pipeline(str(tmp_path / "tiny-sdxl-UNTRAINED"), xl=True)
    pipeline = img2img.load(folder, CPU, torch.float32)
    assert type(pipeline).__name__ == "StableDiffusionXLImg2ImgPipeline"
    frame = fit(source(), 64, 48)
    volcano, lake = run(pipeline, [frame], {"a volcano": 1.0})[0], run(pipeline, [frame], {"a lake": 1.0})[0]
    half = run(pipeline, [frame], {"a volcano": 0.5, "a lake": 0.5})[0]
    assert volcano.shape == (48, 64, 3)
    assert not np.array_equal(volcano, lake) and not np.array_equal(half, volcano) and not np.array_equal(half, lake)
    guided = run(pipeline, [frame], {"a volcano": 1.0}, guidance=4.0)[0]
    negative = run(pipeline, [frame], {"a volcano": 1.0}, guidance=4.0, negative="blurry")[0]
    assert not np.array_equal(guided, negative)


def test_tiny_vae_replaces_the_pipelines_autoencoder(tmp_path):
    from diffusers import AutoencoderTiny

    torch.manual_seed(0)
    AutoencoderTiny().save_pretrained(str(tmp_path / "taesd-UNTRAINED"))  # taesd's architecture
    sd = img2img.make_tiny_pipeline(str(tmp_path / "sd"))
    pipeline = img2img.load(sd, CPU, torch.float32, tiny_vae=str(tmp_path / "taesd-UNTRAINED"))
    assert isinstance(pipeline.vae, AutoencoderTiny)
    frame = fit(source(), 64, 48)
    assert run(pipeline, [frame], {"a volcano": 1.0})[0].shape == (48, 64, 3)
    with pytest.raises(LatentWalkError, match="Tiny VAE folder '.*no-such-vae' does not exist"):
        img2img.load(sd, CPU, torch.float32, tiny_vae=str(tmp_path / "no-such-vae"))
