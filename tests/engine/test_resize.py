"""Scaling, cropping and img2img on the device match what Pillow gave on the CPU, to within rounding.

The render used to scale each BigGAN frame with `PIL.ImageOps.fit` (bicubic), hand PIL images to
diffusers (which resizes them with Lanczos to a multiple of 8) and resize the result back with Lanczos
when writing the PNG. Now all of it stays on the device (`engine/imaging/resize.py`). Tolerance: Pillow
computes in fixed point, the device in float32, both round to 8 bits between the two passes and at the
end, so a value may differ by 1 of 255 (a rounding step) in at most 1.5% of the values, on random
noise, the hardest input for a resampler (measured: at most 1, in up to 0.95% of the values).
"""

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from blender_latentwalk.engine.diffusion import img2img
from blender_latentwalk.engine.imaging import resize

CPU = torch.device("cpu")
MAX_LEVEL_DIFFERENCE, MAX_SHARE_DIFFERING = 1, 0.015


def noise(width, height, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def on_device(pixels, resizes):
    images = img2img.images_from_pictures([pixels], CPU)
    return img2img.pictures_from_images(resize.apply(images, resizes))[0]


def assert_within_rounding(ours, pillows):
    assert ours.shape == pillows.shape
    difference = np.abs(ours.astype(int) - pillows.astype(int))
    assert difference.max() <= MAX_LEVEL_DIFFERENCE, difference.max()
    assert (difference > 0).mean() <= MAX_SHARE_DIFFERING, (difference > 0).mean()
    return difference


@pytest.mark.parametrize("source, output", [
    ((256, 256), (512, 512)),  # biggan-deep-256 to the turbo size: upscaling
    ((256, 256), (1920, 1080)),  # 16:9, the crop box is whole pixels
    ((256, 256), (500, 333)),  # a crop box of fractional pixels
    ((256, 256), (100, 75)),  # shrinking: Pillow widens the kernel
    ((128, 128), (77, 41)),
    ((40, 40), (90, 160)),  # portrait
    ((32, 32), (48, 32)),
])
def test_fit_on_the_device_matches_pillows_imageops_fit(source, output):
    pixels = noise(*source)
    pillows = np.asarray(ImageOps.fit(Image.fromarray(pixels), output, method=Image.BICUBIC))
    assert_within_rounding(on_device(pixels, resize.fit_resizes(source, output)), pillows)


@pytest.mark.parametrize("source, output", [((500, 333), (496, 328)), ((496, 328), (500, 333)), ((60, 45), (56, 40))])
def test_lanczos_on_the_device_matches_pillows_resize(source, output):
    pixels = noise(*source, seed=1)
    pillows = np.asarray(Image.fromarray(pixels).resize(output, Image.LANCZOS))
    assert_within_rounding(on_device(pixels, resize.lanczos_resize(source, output)), pillows)


@pytest.mark.parametrize("source, output", [((512, 512), (400, 100)), ((100, 1000), (90, 100))])
def test_a_height_shrunk_much_more_than_the_width_is_resampled_vertically_first_as_pillow_13_does(source, output):
    """Pillow 13 then rounds to 8 bits between the passes in the other order; the other order would be off
    by up to 15 levels (of 255) on noise."""
    assert resize.vertical_first(source, output, (0.0, 0.0, float(source[0]), float(source[1])), "lanczos")
    pixels = noise(*source, seed=3)
    pillows = np.asarray(Image.fromarray(pixels).resize(output, Image.LANCZOS))
    assert_within_rounding(on_device(pixels, resize.lanczos_resize(source, output)), pillows)


def test_same_size_is_untouched():
    pixels = noise(64, 48)
    assert np.array_equal(on_device(pixels, resize.fit_resizes((64, 48), (64, 48))), pixels)
    assert resize.lanczos_resize((64, 48), (64, 48)) == ()


def pillow_img2img(pipeline, picture, condition, size):
    """What the render did before: a PIL image into diffusers, its numpy output to 8 bits, and Pillow's
    Lanczos back to the output size when diffusers worked at a multiple of 8."""
    with torch.inference_mode():
        result = pipeline(image=[picture], strength=0.6, guidance_scale=0.0, num_inference_steps=2,
                          generator=[torch.Generator("cpu").manual_seed(5)], output_type="np", **condition)
    pixels = (np.clip(result.images[0], 0.0, 1.0) * 255.0).round().astype(np.uint8)
    return np.asarray(Image.fromarray(pixels).resize(size, Image.LANCZOS)) if pixels.shape[1::-1] != size else pixels


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    return img2img.load(img2img.make_tiny_pipeline(str(tmp_path_factory.mktemp("sd") / "sd")), CPU, torch.float32)


@pytest.mark.parametrize("size", [(64, 48), (60, 45)])  # a multiple of 8, and one diffusers must resize
def test_img2img_on_device_frames_matches_the_pillow_path(pipeline, size):
    condition = img2img.PromptEmbeddings(pipeline, "", CPU).blend({"a volcano": 1.0}, False)
    source = noise(32, 32, seed=2)
    fitted = ImageOps.fit(Image.fromarray(source), size, method=Image.BICUBIC)
    pillows = pillow_img2img(pipeline, fitted, condition, size)

    images = resize.apply(img2img.images_from_pictures([source], CPU), resize.fit_resizes((32, 32), size))
    ours = img2img.pictures_from_images(img2img.run(pipeline, images, [condition], 0.6, 0.0, 2, [5], CPU))[0]
    difference = assert_within_rounding(ours, pillows)
    print(f"{size}: largest difference {difference.max()}, {100 * (difference > 0).mean():.2f}% of values differ")


def test_a_render_without_diffusion_matches_bigGAN_through_pillow(tmp_path):
    """The whole render's frames (model "none") against BigGAN's frames fitted by Pillow, as before."""
    from render_helpers import plan_72

    from blender_latentwalk.engine.generators import biggan
    from blender_latentwalk.engine.render import run
    from blender_latentwalk.engine.walk import latents

    folder = biggan.make_tiny_model(str(tmp_path / "biggan"))
    plan, size = plan_72(12), (48, 27)
    run.render(plan, folder, run.Img2ImgSettings(model="none", width=size[0], height=size[1]),
                  str(tmp_path / "frames"), batch_size=4, device="cpu")
    model, device, dtype = biggan.load(folder, "cpu")
    z, classes, truncation = latents.generator_inputs(plan)
    for index, pixels in biggan.generate(model, device, dtype, z, classes, truncation, range(plan.n_frames), 4):
        pillows = np.asarray(ImageOps.fit(Image.fromarray(pixels), size, method=Image.BICUBIC))
        with Image.open(tmp_path / "frames" / f"frame_{plan.frame_start + index:06d}.png") as written:
            assert_within_rounding(np.asarray(written), pillows)
