"""The full frame render: plan -> BigGAN -> img2img -> PNG, resumable.

Every frame has a key: a hash of everything that decides its pixels (its own
noise vector, class vector and truncation, the models, the img2img settings and
the output size). ``manifest.json`` in the output folder records, per frame, the
key it was written with and the identity of the file written (size and
modification time), so a PNG replaced behind the manifest's back (a preview into
the same folder, a copy from another render) is not taken for the frame.
`frame_status` is the one place that decides whether a frame is current: the
render uses it to skip finished frames, and Encode Video and the panel use it to
refuse or count stale ones.
"""

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass

from . import biggan, frames, img2img, walk

RENDER_VERSION = 2
MANIFEST_VERSION = 3  # 3: each frame records its key and its file's size and modification time
MANIFEST_NAME = "manifest.json"
STATUS_VERSION = 1  # FrameStatus as JSON (the engine CLI's `status` answers the add-on with it)


@dataclass(frozen=True)
class Img2ImgSettings:
    """What stays fixed over a render; the per-frame values (prompt mix, strength,
    guidance, steps, noise seed) come from the RenderPlan."""

    model: str = img2img.DEFAULT_MODEL  # hub id, folder, or "none"
    width: int = 512
    height: int = 512
    tiny_vae: str = ""


@dataclass
class RenderResult:
    rendered: list  # Blender frame numbers computed now
    reused: list  # frames whose file and key already matched
    stopped: bool = False


class Models:
    """Loaded models, kept between renders: the worker holds one for its lifetime, so
    a second render starts at once; ending the worker releases the memory. Only the
    latest model of each kind is kept."""

    def __init__(self):
        self._biggan = (None, None)
        self._pipeline = (None, None)

    def biggan(self, name, device, identity):
        """(model, torch device, dtype) of BigGAN ``name`` on ``device`` ("auto", "cpu", ...).

        identity : `model_identity(name)`; weights replaced in the folder load again.
        """
        key = (identity, device)
        if self._biggan[0] != key:
            self._biggan = (None, None)  # free the old one before loading the next
            self._biggan = (key, biggan.load(name, device))
        return self._biggan[1]

    def pipeline(self, name, tiny_vae, torch_device, dtype, identities):
        """The img2img pipeline; identities : (`model_identity` of name, of tiny_vae)."""
        key = (*identities, str(torch_device), str(dtype))
        if self._pipeline[0] != key:
            self._pipeline = (None, None)
            self._pipeline = (key, img2img.load(name, torch_device, dtype, tiny_vae or None))
        return self._pipeline[1]


def model_identity(name_or_path):
    """What a frame key records of a model: for a folder, its files' names, sizes and
    modification times (so replacing the weights in place re-renders); for a hub id,
    the cached snapshot's commit; else the name (BigGAN's named releases never change)."""
    if not name_or_path or name_or_path.lower() == img2img.NONE:
        return name_or_path
    if os.path.isdir(name_or_path):
        entries = []
        for root, folders, names in os.walk(name_or_path, followlinks=True):
            folders[:] = sorted(f for f in folders if not f.startswith("."))  # .git, .cache: not the model
            for name in sorted(n for n in names if not n.startswith(".")):
                try:
                    status = os.stat(os.path.join(root, name))
                except OSError:  # a broken link: not something the loader reads either
                    continue
                entries.append([os.path.relpath(os.path.join(root, name), name_or_path), status.st_size,
                                status.st_mtime_ns])
        return f"{os.path.abspath(name_or_path)}#{hashlib.sha256(json.dumps(entries).encode()).hexdigest()[:16]}"
    commit = img2img.cached_commit(name_or_path)
    return f"{name_or_path}@{commit}" if commit else name_or_path


def model_identities(biggan_model, settings):
    """{"biggan", "model", "tiny_vae": `model_identity`} of a render's models, read once."""
    return {"biggan": model_identity(biggan_model), "model": model_identity(settings.model),
            "tiny_vae": model_identity(settings.tiny_vae)}


def walk_inputs(plan):
    """BigGAN inputs of every frame: (z (n, 128), classes (n, 1000), truncation (n,))."""
    return walk.noise_vectors(plan), walk.class_vectors(plan), walk.truncations(plan)


def _uses_diffusion(settings):
    return bool(settings.model) and settings.model.lower() != img2img.NONE


def frame_keys(plan, biggan_model, settings, inputs=None, identities=None):
    """{plan index: hex key} for every frame of the plan.

    A frame's key covers its own walk inputs and, when diffusion runs, its own
    prompt mix and img2img values: editing the prompt of one section re-renders
    only the frames that use it.
    """
    z, classes, truncation = inputs if inputs is not None else walk_inputs(plan)
    identities = identities if identities is not None else model_identities(biggan_model, settings)
    diffusion = _uses_diffusion(settings)
    img2img_settings = dict(asdict(settings), model=identities["model"], tiny_vae=identities["tiny_vae"])
    common = {"version": RENDER_VERSION, "biggan": identities["biggan"], "img2img": img2img_settings}
    if diffusion:
        common["negative_prompt"] = plan.settings["negative_prompt"]
    common = json.dumps(common, sort_keys=True).encode()
    keys = {}
    for index in range(plan.n_frames):
        digest = hashlib.sha256(common)
        digest.update(z[index].tobytes())
        digest.update(classes[index].tobytes())
        digest.update(repr(float(truncation[index])).encode())
        if diffusion:
            values = {name: float(getattr(plan, name)[index]) for name in ("strength", "guidance", "steps", "noise_seed")}
            values["prompts"] = sorted(plan.frame_prompts(index).items())
            digest.update(json.dumps(values, sort_keys=True).encode())
        keys[index] = digest.hexdigest()
    return keys


def load_manifest(folder):
    """{Blender frame: {"key", "bytes", "mtime_ns"}} from the folder's manifest ({} when there is none,
    or it is from another version: its frames then count as stale)."""
    try:
        with open(os.path.join(folder, MANIFEST_NAME), encoding="utf-8") as stream:
            data = json.load(stream)
        if data.get("version") != MANIFEST_VERSION:
            return {}
        return {int(frame): dict(entry) for frame, entry in data["frames"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def save_manifest(folder, manifest):
    handle, temp_path = tempfile.mkstemp(suffix=".json.tmp", dir=folder)
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        json.dump({"version": MANIFEST_VERSION, "frames": {str(f): e for f, e in sorted(manifest.items())}}, stream)
    os.replace(temp_path, os.path.join(folder, MANIFEST_NAME))


def manifest_entry(path, key):
    """What the manifest records of a frame file just written under ``key``."""
    status = os.stat(path)
    return {"key": key, "bytes": status.st_size, "mtime_ns": status.st_mtime_ns}


def _file_matches(path, entry):
    try:
        status = os.stat(path)
    except OSError:
        return False
    return status.st_size == entry.get("bytes") and status.st_mtime_ns == entry.get("mtime_ns")


@dataclass(frozen=True)
class FrameStatus:
    """Which frames of a range are, on disk, a finished render of the plan as it is now.

    current : Blender frame numbers whose PNG is the one the manifest records under the frame's key now
    stale : frames with a PNG that is not (other settings, another plan, replaced or changed since)
    missing : frames with no PNG
    """

    current: tuple
    stale: tuple
    missing: tuple

    @property
    def total(self):
        return len(self.current) + len(self.stale) + len(self.missing)

    @property
    def complete(self):
        return not self.stale and not self.missing

    @property
    def first_not_current(self):
        """The lowest frame that is stale or missing (None when complete)."""
        return min(self.stale + self.missing, default=None)

    def summary(self):
        """One line, e.g. "238 of 240 frames current (1 stale, 1 missing)"."""
        text = f"{len(self.current)} of {self.total} frames current"
        parts = [f"{len(self.stale)} stale"] * bool(self.stale) + [f"{len(self.missing)} missing"] * bool(self.missing)
        return text + (f" ({', '.join(parts)})" if parts else "")

    def refusal(self, folder):
        """Why these frames cannot become a video, and what to do (None when complete)."""
        if self.complete:
            return None
        first = self.first_not_current
        why = "missing" if first in self.missing else "not rendered from the scene as it is now"
        return (f"{self.summary()} in '{folder}': frame {first} is {why}. Press Render Frames (or run the "
                "render again): it renders only the frames that are not current.")

    def to_json(self):
        return json.dumps({"version": STATUS_VERSION, "current": self.current, "stale": self.stale,
                           "missing": self.missing})

    @classmethod
    def from_json(cls, text):
        data = json.loads(text)
        if data.get("version") != STATUS_VERSION:
            raise ValueError(f"frame status version {data.get('version')}, expected {STATUS_VERSION}")
        return cls(tuple(data["current"]), tuple(data["stale"]), tuple(data["missing"]))


def frame_status(plan, biggan_model, settings, folder, frame_indices=None, keys=None):
    """Compare the folder's PNGs and manifest with the frame keys of ``plan`` now.

    frame_indices : plan indices to check (default: all); keys : `frame_keys` when already computed.
    Returns a `FrameStatus` in Blender frame numbers (plan.frame_start + index).
    """
    indices = range(plan.n_frames) if frame_indices is None else [int(i) for i in frame_indices]
    keys = keys if keys is not None else frame_keys(plan, biggan_model, settings)
    manifest = load_manifest(folder)
    current, stale, missing = [], [], []
    for index in indices:
        number = plan.frame_start + index
        path = frames.frame_path(folder, number)
        entry = manifest.get(number)
        if not os.path.exists(path):
            missing.append(number)
        elif entry is not None and entry.get("key") == keys[index] and _file_matches(path, entry):
            current.append(number)
        else:
            stale.append(number)
    return FrameStatus(tuple(current), tuple(stale), tuple(missing))


def _diffusion_groups(plan, members):
    """Split a batch into pipeline calls: frames that share steps, effective steps and guidance.

    Returns a list of ((steps, effective_steps, guidance), [plan indices]), in frame order.
    """
    calls = {}
    for index in members:
        steps = int(round(plan.steps[index]))
        guidance = float(plan.guidance[index])
        key = (steps, img2img.effective_steps(steps, float(plan.strength[index])), guidance if guidance > 1 else 0.0)
        calls.setdefault(key, []).append(index)
    return list(calls.items())


def render(plan, biggan_model, settings, out_folder, frame_indices=None, batch_size=None, device="auto",
           progress=None, should_stop=None, models=None):
    """Render plan frames into ``out_folder`` as frame_NNNNNN.png (Blender frame numbers).

    progress : callable(done, total), once the models are loaded (done 0) and after each
    batch; should_stop : callable() -> bool,
    checked before each batch (a stop leaves finished frames and a consistent manifest).
    models : a `Models` to load through and keep (default: a fresh one).
    Frames are byte-identical to an uninterrupted render with the same ``batch_size``.
    Returns a `RenderResult`.
    """
    frames.ensure_writable_folder(out_folder)
    indices = list(range(plan.n_frames)) if frame_indices is None else [int(i) for i in frame_indices]
    inputs = walk_inputs(plan)
    identities = model_identities(biggan_model, settings)  # a folder model's files are read once a render
    keys = frame_keys(plan, biggan_model, settings, inputs, identities)
    status = frame_status(plan, biggan_model, settings, out_folder, indices, keys)
    reused = set(status.current)
    todo = [index for index in indices if plan.frame_start + index not in reused]
    manifest = load_manifest(out_folder)
    result = RenderResult(rendered=[], reused=sorted(reused))
    if not todo:
        return result

    models = models if models is not None else Models()
    model, torch_device, dtype = models.biggan(biggan_model, device, identities["biggan"])
    pipeline, embeddings = None, None
    if _uses_diffusion(settings):
        pipeline = models.pipeline(settings.model, settings.tiny_vae, torch_device, dtype,
                                   (identities["model"], identities["tiny_vae"]))
        embeddings = img2img.PromptEmbeddings(pipeline, plan.settings["negative_prompt"], torch_device)
    if batch_size is None:
        batch_size = 4 if torch_device.type == "cpu" else 16
    if progress is not None:
        progress(0, len(todo))  # models are loaded: the frames start now
    z, classes, truncation = inputs
    # Batches are fixed groups of frame indices (index // batch_size), so a resumed
    # render batches frames exactly as an uninterrupted one did: kernels may round
    # differently for other batch shapes, and frames must come out byte-identical.
    groups = {}
    for index in todo:
        groups.setdefault(index // batch_size, []).append(index)
    from PIL import Image

    size = (settings.width, settings.height)
    for members in groups.values():
        if should_stop is not None and should_stop():
            result.stopped = True
            return result
        generated = dict(biggan.generate(model, torch_device, dtype, z, classes, truncation, members, batch_size))
        images = {i: img2img.fit(Image.fromarray(generated[i]), *size) for i in members}
        if pipeline is not None:
            for (steps, effective, guidance), call in _diffusion_groups(plan, members):
                if effective == 0:  # strength too low for one step: the source as it is
                    continue
                outputs = img2img.run(
                    pipeline, [images[i] for i in call],
                    [embeddings.blend(plan.frame_prompts(i), guidance > 1) for i in call],
                    img2img.pipeline_strength(steps, effective), guidance, steps,
                    [int(round(plan.noise_seed[i])) for i in call], torch_device,
                )
                images.update(zip(call, outputs))
        # Forget the batch's old keys before its files change: a kill while writing must
        # not leave new pixels under an old key (or old pixels under a new one).
        for index in members:
            manifest.pop(plan.frame_start + index, None)
        save_manifest(out_folder, manifest)
        for index in members:
            number = plan.frame_start + index
            # diffusers works in multiples of 8 pixels: back to the exact output size.
            path = frames.frame_path(out_folder, number)
            frames.write_png(path, images[index], size=size)
            manifest[number] = manifest_entry(path, keys[index])
            result.rendered.append(number)
        save_manifest(out_folder, manifest)
        if progress is not None:
            progress(len(result.rendered), len(todo))
    return result
