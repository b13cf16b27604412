"""The full frame render: plan -> BigGAN -> img2img -> PNG, resumable.

Every frame has a key: a hash of everything that decides its pixels (its own
noise vector, class vector and truncation, the models, the img2img settings and
the output size). ``manifest.json`` in the output folder records the key each
frame was written with. A render skips frames whose file exists under the same
key, redoes frames written under other settings (never reusing a stale frame),
and saves the manifest after every batch, so a killed render resumes at the
first missing frame.
"""

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass

from . import biggan, frames, img2img, walk

RENDER_VERSION = 1
MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class Img2ImgSettings:
    model: str = img2img.DEFAULT_MODEL  # hub id, folder, or "none"
    prompt: str = ""
    negative_prompt: str = ""
    strength: float = 0.5
    guidance: float = 0.0  # sd-turbo is trained without classifier-free guidance
    steps: int = 2
    seed: int = 0
    width: int = 512
    height: int = 512
    tiny_vae: str = ""


@dataclass
class RenderResult:
    rendered: list  # Blender frame numbers computed now
    reused: list  # frames whose file and key already matched
    stopped: bool = False


def walk_inputs(plan):
    """BigGAN inputs of every frame: (z (n, 128), classes (n, 1000), truncation (n,))."""
    return walk.noise_vectors(plan), walk.class_vectors(plan), walk.truncations(plan)


def frame_keys(plan, biggan_model, settings, inputs=None):
    """{plan index: hex key} for every frame of the plan."""
    z, classes, truncation = inputs if inputs is not None else walk_inputs(plan)
    common = json.dumps({"version": RENDER_VERSION, "biggan": biggan_model, "img2img": asdict(settings)},
                        sort_keys=True).encode()
    keys = {}
    for index in range(plan.n_frames):
        digest = hashlib.sha256(common)
        digest.update(z[index].tobytes())
        digest.update(classes[index].tobytes())
        digest.update(repr(float(truncation[index])).encode())
        keys[index] = digest.hexdigest()
    return keys


def load_manifest(folder):
    try:
        with open(os.path.join(folder, MANIFEST_NAME), encoding="utf-8") as stream:
            return {int(frame): key for frame, key in json.load(stream)["frames"].items()}
    except (OSError, ValueError, KeyError):
        return {}


def save_manifest(folder, manifest):
    handle, temp_path = tempfile.mkstemp(suffix=".json.tmp", dir=folder)
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        json.dump({"version": RENDER_VERSION, "frames": {str(f): k for f, k in sorted(manifest.items())}}, stream)
    os.replace(temp_path, os.path.join(folder, MANIFEST_NAME))


def render(plan, biggan_model, settings, out_folder, frame_indices=None, batch_size=None, device="auto",
           progress=None, should_stop=None):
    """Render plan frames into ``out_folder`` as frame_NNNNNN.png (Blender frame numbers).

    progress : callable(done, total), after each batch; should_stop : callable() -> bool,
    checked between batches (a stop leaves finished frames and a consistent manifest).
    Frames are byte-identical to an uninterrupted render with the same ``batch_size``.
    Returns a `RenderResult`.
    """
    frames.ensure_writable_folder(out_folder)
    indices = list(range(plan.n_frames)) if frame_indices is None else [int(i) for i in frame_indices]
    inputs = walk_inputs(plan)
    keys = frame_keys(plan, biggan_model, settings, inputs)
    manifest = load_manifest(out_folder)
    todo, reused = [], []
    for index in indices:
        number = plan.frame_start + index
        current = os.path.exists(frames.frame_path(out_folder, number)) and manifest.get(number) == keys[index]
        (reused if current else todo).append(index)
    result = RenderResult(rendered=[], reused=[plan.frame_start + i for i in reused])
    if not todo:
        return result

    model, torch_device, dtype = biggan.load(biggan_model, device)
    pipeline = img2img.load(settings.model, torch_device, dtype, settings.tiny_vae or None)
    if batch_size is None:
        batch_size = 4 if torch_device.type == "cpu" else 16
    z, classes, truncation = inputs
    # Batches are fixed groups of frame indices (index // batch_size), so a resumed
    # render batches frames exactly as an uninterrupted one did: kernels may round
    # differently for other batch shapes, and frames must come out byte-identical.
    groups = {}
    for index in todo:
        groups.setdefault(index // batch_size, []).append(index)
    from PIL import Image

    for members in groups.values():
        generated = dict(biggan.generate(model, torch_device, dtype, z, classes, truncation, members, batch_size))
        images = [Image.fromarray(generated[index]) for index in members]
        if pipeline is not None:
            images = img2img.run(pipeline, [img2img.fit(i, settings.width, settings.height) for i in images],
                                 settings.prompt, settings.negative_prompt, settings.strength, settings.guidance,
                                 settings.steps, settings.seed, torch_device)
        else:
            images = [img2img.fit(i, settings.width, settings.height) for i in images]
        for index, image in zip(members, images):
            number = plan.frame_start + index
            frames.write_png(frames.frame_path(out_folder, number), image)
            manifest[number] = keys[index]
            result.rendered.append(number)
        save_manifest(out_folder, manifest)
        if progress is not None:
            progress(len(result.rendered), len(todo))
        if should_stop is not None and should_stop():
            result.stopped = True
            return result
    return result
