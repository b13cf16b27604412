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

Frames are computed in aligned batches (plan index // batch size), so any chunking,
order or resume gives the same bytes. Several renders may write one folder at once:
each claims its frames (`claims`), and the manifest is read, merged and written
under the folder's lock (`update_manifest`).
"""

import errno
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field

from .. import atomic
from ..generators import biggan
from . import claims
from . import frame_ranges
from . import png_writer as frames
from ..diffusion import img2img
from ..imaging import resize
from ..walk import latents as walk
from ..errors import LatentWalkError

RENDER_VERSION = 4  # 4: frames scaled and cropped on the device (within rounding of version 3's Pillow)
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
    replaced: list = field(default_factory=list)  # frames whose PNG was not current and was overwritten
    reduced_batch: dict = field(default_factory=dict)  # {frame: batch size} of frames made at a smaller batch
    warnings: list = field(default_factory=list)  # what the user was told during the render


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


class ManifestError(LatentWalkError):
    """The folder's manifest.json is damaged, another program's, or from a newer version."""


def _manifest_problem(path, what):
    return ManifestError(
        f"'{path}' {what}, so the frames in '{os.path.dirname(path)}' cannot be trusted: move that file "
        "away (its frames then count as stale and are rendered again) or choose another Output folder.")


def load_manifest(folder):
    """{Blender frame: {"key", "bytes", "mtime_ns", ...}} from the folder's manifest.

    {} when there is none, or when an older version wrote it (its frames then count as
    stale). Raises `ManifestError` for a file that is not a manifest this version can read
    (damaged, another program's, a newer version's): nothing is mixed in from it.
    """
    path = os.path.join(folder, MANIFEST_NAME)
    try:
        with open(path, "rb") as stream:
            text = stream.read()
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise _manifest_problem(path, f"cannot be read ({error.strerror})") from None
    try:
        data = json.loads(text.decode("utf-8"))
    except ValueError:
        raise _manifest_problem(path, "is damaged (not JSON)") from None
    if not (isinstance(data, dict) and isinstance(data.get("version"), int) and isinstance(data.get("frames"), dict)):
        raise _manifest_problem(path, "is not a Latent Walk manifest (another program's file?)")
    if data["version"] < MANIFEST_VERSION:
        return {}
    if data["version"] > MANIFEST_VERSION:
        raise _manifest_problem(path, f"was written by a newer version of Latent Walk (manifest version "
                                      f"{data['version']}, this one reads {MANIFEST_VERSION})")
    try:
        manifest = {int(frame): dict(entry) for frame, entry in data["frames"].items()}
    except (ValueError, TypeError):
        raise _manifest_problem(path, "is damaged (a frame entry is not a frame number and a record)") from None
    if not all(isinstance(entry.get("key"), str) for entry in manifest.values()):
        raise _manifest_problem(path, "is damaged (a frame entry has no key)")
    return manifest


def update_manifest(folder, changes, temp_prefix=None):
    """Apply ``changes`` ({Blender frame: entry, or None to forget it}) to the folder's manifest.

    Read, merge and write happen under the folder's lock, so renders writing other
    frames of the folder at the same time never lose each other's entries.
    Returns the manifest as written.
    """
    lock = claims.locked(folder)
    try:
        manifest = load_manifest(folder)
        before = dict(manifest)
        for frame, entry in changes.items():
            if entry is None:
                manifest.pop(int(frame), None)
            else:
                manifest[int(frame)] = entry
        if manifest == before and os.path.exists(os.path.join(folder, MANIFEST_NAME)):
            return manifest  # nothing to forget or add: no write (the render asks once a batch)
        text = json.dumps({"version": MANIFEST_VERSION, "frames": {str(f): e for f, e in sorted(manifest.items())}})
        atomic.write_text(os.path.join(folder, MANIFEST_NAME), text, temp_prefix=temp_prefix)
    finally:
        lock.release()
    return manifest


def _sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest_entry(key, batch_size, written):
    """What the manifest records of a frame file just written under ``key``, computed in a
    batch of ``batch_size`` frames (smaller than asked after running out of memory): its size,
    modification time and content hash, from ``written`` (`frames.WrittenFile`)."""
    return {"key": key, "bytes": written.bytes, "mtime_ns": written.mtime_ns, "sha256": written.sha256,
            "batch_size": int(batch_size)}


def _file_matches(path, entry):
    """True when ``path`` is the file the entry recorded: same size and modification time, or, when
    only the time differs (copied back from a farm node, a sync, a network share), same content."""
    try:
        status = os.stat(path)
    except OSError:
        return False
    if status.st_size != entry.get("bytes"):
        return False
    if status.st_mtime_ns == entry.get("mtime_ns"):
        return True
    return "sha256" in entry and _sha256_of(path) == entry["sha256"]


@dataclass(frozen=True)
class FrameStatus:
    """Which frames of a range are, on disk, a finished render of the plan as it is now.

    current : Blender frame numbers whose PNG is the one the manifest records under the frame's key now
    stale : frames with a PNG that is not (other settings, another plan, replaced or changed since)
    missing : frames with no PNG
    problem : one line when manifest.json is damaged or foreign (`ManifestError`), else ""
    """

    current: tuple
    stale: tuple
    missing: tuple
    problem: str = ""  # why the manifest could not be used (then every PNG counts as stale)

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
        return text + (f" ({', '.join(parts)})" if parts else "") + (f": {self.problem}" if self.problem else "")

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
                           "missing": self.missing, "problem": self.problem})

    @classmethod
    def from_json(cls, text):
        data = json.loads(text)
        if data.get("version") != STATUS_VERSION:
            raise ValueError(f"frame status version {data.get('version')}, expected {STATUS_VERSION}")
        return cls(tuple(data["current"]), tuple(data["stale"]), tuple(data["missing"]), data.get("problem", ""))


def frame_status(plan, biggan_model, settings, folder, frame_indices=None, keys=None):
    """Compare the folder's PNGs and manifest with the frame keys of ``plan`` now.

    frame_indices : plan indices to check (default: all); keys : `frame_keys` when already computed.
    Returns a `FrameStatus` in Blender frame numbers (plan.frame_start + index).
    """
    indices = range(plan.n_frames) if frame_indices is None else [int(i) for i in frame_indices]
    keys = keys if keys is not None else frame_keys(plan, biggan_model, settings)
    try:
        manifest, problem = load_manifest(folder), ""
    except ManifestError as error:
        manifest, problem = {}, str(error)
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
    return FrameStatus(tuple(current), tuple(stale), tuple(missing), problem)


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


def is_out_of_memory(error):
    """Whether ``error`` is a device (or host) running out of memory during a batch."""
    import torch

    kinds = tuple(kind for kind in (getattr(torch, "OutOfMemoryError", None),
                                    getattr(torch.cuda, "OutOfMemoryError", None)) if kind is not None)
    return isinstance(error, kinds + (MemoryError,)) or (
        isinstance(error, RuntimeError) and "out of memory" in str(error).lower())


def _free_device_memory(torch_device):
    import gc

    import torch

    gc.collect()
    if torch_device.type == "cuda":
        torch.cuda.empty_cache()
    elif torch_device.type == "mps" and hasattr(torch, "mps"):
        torch.mps.empty_cache()


def _write_error(error, folder):
    """A one-line `LatentWalkError` for an OSError while writing into ``folder``."""
    if error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        fix = "free some space there"
    elif error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = "make it writable again"
    else:
        fix = "check the folder"
    return LatentWalkError(f"cannot write frames to '{folder}' ({error.strerror or error}): {fix}, then render "
                           "again: every finished frame is kept and the render goes on from there.")


class _BatchRenderer:
    """Computes the frames of one aligned batch on the device (the models are loaded)."""

    def __init__(self, plan, settings, inputs, model, torch_device, dtype, pipeline, embeddings):
        self.plan, self.settings, self.inputs = plan, settings, inputs
        self.model, self.torch_device, self.dtype = model, torch_device, dtype
        self.pipeline, self.embeddings = pipeline, embeddings

    def compute(self, batch, wanted):
        """Levels (len(wanted), 3, height, width) on the device of ``wanted`` (sorted), computed as
        members of ``batch``: float32 holding the frames' 8-bit values.

        batch : plan indices of the whole aligned batch; wanted : the subset to return.
        BigGAN and img2img calls are formed from the whole batch, exactly as when every
        frame of it is rendered; a call with no wanted frame is skipped (its result
        would be thrown away), and every other call runs with all its members. Nothing
        leaves the device, and this code never waits for it (diffusers itself still does, a few times
        a call: see docs/performance.md).
        """
        import torch

        plan, wanted = self.plan, sorted(wanted)
        z, classes, truncation = self.inputs
        calls = []
        if self.pipeline is not None:
            calls = [(values, call) for values, call in _diffusion_groups(plan, batch)
                     if values[1] > 0 and set(wanted).intersection(call)]
        needed = set(wanted).union(*[call for _, call in calls])
        groups = {}
        for index in batch:
            groups.setdefault(float(truncation[index]), []).append(index)
        sources = [index for members in groups.values() if needed.intersection(members) for index in members]
        size = (self.settings.width, self.settings.height)
        levels = {}
        with torch.inference_mode():
            for members, generated in biggan.generate_levels(self.model, self.torch_device, self.dtype, z, classes,
                                                             truncation, sources, len(batch)):
                # Every member, needed or not: the same matrix shapes (and roundings) whichever frames
                # of the batch are asked for, so a resume gives the bytes of one whole render.
                fitted = resize.apply(generated, resize.fit_resizes(generated.shape[:-3:-1], size))
                levels.update((index, fitted[position]) for position, index in enumerate(members) if index in needed)
            for (steps, effective, guidance), call in calls:
                outputs = img2img.run(
                    self.pipeline, torch.stack([levels[i] for i in call]),
                    [self.embeddings.blend(plan.frame_prompts(i), guidance > 1) for i in call],
                    img2img.pipeline_strength(steps, effective), guidance, steps,
                    [int(round(plan.noise_seed[i])) for i in call], self.torch_device,
                )
                levels.update(zip(call, outputs))
            return torch.stack([levels[i] for i in wanted])


def batch_renderer(plan, biggan_model, settings, device="auto", models=None, inputs=None, identities=None):
    """The models loaded (through ``models``, a `Models`) and ready to compute the plan's aligned batches:
    what the render loop drives, and what the benchmark times without writing any file."""
    inputs = inputs if inputs is not None else walk_inputs(plan)
    identities = identities if identities is not None else model_identities(biggan_model, settings)
    models = models if models is not None else Models()
    model, torch_device, dtype = models.biggan(biggan_model, device, identities["biggan"])
    pipeline, embeddings = None, None
    if _uses_diffusion(settings):
        pipeline = models.pipeline(settings.model, settings.tiny_vae, torch_device, dtype,
                                   (identities["model"], identities["tiny_vae"]))
        embeddings = img2img.PromptEmbeddings(pipeline, plan.settings["negative_prompt"], torch_device)
    return _BatchRenderer(plan, settings, inputs, model, torch_device, dtype, pipeline, embeddings)


class HostCopy:
    """A batch's frames on their way to the CPU as 8-bit pixels. From a GPU the copy is queued behind
    the device's work into pinned memory, so the render loop goes on to queue the next batch; `pixels`
    (on a writer thread) waits for it."""

    def __init__(self, levels):
        """levels : (n, 3, height, width) on the device, from `_BatchRenderer.compute`."""
        import torch

        pixels = resize.to_pixels(levels)
        self.n_bytes = pixels.numel()
        self._ready = None
        if pixels.device.type == "cuda":
            self._host = torch.empty(pixels.shape, dtype=torch.uint8, pin_memory=True)
            self._host.copy_(pixels, non_blocking=True)
            self._ready = torch.cuda.Event()
            self._ready.record()
        else:
            self._host = pixels.cpu()

    def pixels(self):
        """np.ndarray (n, height, width, 3) uint8."""
        if self._ready is not None:
            self._ready.synchronize()
        return self._host.numpy()


def writer_threads():
    """PNG threads of a render: zlib's compression is the slow part and runs without the GIL, so a few
    threads keep up with a GPU; more than the CPU has would only take from the device's own thread."""
    return max(1, min(4, (os.cpu_count() or 2) - 1))


def render(plan, biggan_model, settings, out_folder, frame_indices=None, batch_size=None, device="auto",
           progress=None, should_stop=None, models=None, warn=None, png_threads=None):
    """Render plan frames into ``out_folder`` as frame_NNNNNN.png (Blender frame numbers).

    Frames already current (`frame_status`) are kept untouched; missing and stale ones
    are rendered. A frame is always computed inside its aligned batch (plan indices
    ``k * batch_size ... k * batch_size + batch_size - 1``, cut at the plan's end), its
    neighbours computed and thrown away when they are not asked for, so any chunking,
    order or resume gives the bytes of one uninterrupted render at the same batch size.
    The device computes the next batch while `frames.FrameWriter` encodes and writes the last;
    a frame enters the manifest only once its file is complete.

    progress : callable(done, total), once the models are loaded (done 0) and after each batch;
        done counts the frames written and recorded.
    should_stop : callable() -> bool, checked before each batch (a stop leaves finished
        frames and a consistent manifest).
    models : a `Models` to load through and keep (default: a fresh one).
    warn : callable(message), told when the render goes on differently than asked (out of
        memory: a smaller batch). The messages are also in `RenderResult.warnings`.
    png_threads : threads encoding and writing PNGs (default `writer_threads()`; 0: in the render
        loop, one after another). The bytes are the same either way.
    Raises `LatentWalkError` (`claims.FolderBusy` when another live render writes some of
    the same frames, `ManifestError` for a manifest it cannot trust, a full or read-only
    folder, out of memory at batch size 1). Returns a `RenderResult`.
    """
    if batch_size is not None and int(batch_size) < 1:
        raise LatentWalkError(f"batch size {batch_size} must be 1 or more.")
    frames.ensure_writable_folder(out_folder)
    indices = sorted(set(range(plan.n_frames) if frame_indices is None else (int(i) for i in frame_indices)))
    outside = [i for i in indices if not 0 <= i < plan.n_frames]
    if outside:
        raise LatentWalkError(f"frame indices {outside[0]}... are outside the plan's 0-{plan.n_frames - 1}.")
    load_manifest(out_folder)  # a manifest that cannot be trusted stops the render before any work
    claim = claims.claim(out_folder, [plan.frame_start + i for i in indices])
    try:
        return _render_claimed(plan, biggan_model, settings, out_folder, indices, batch_size, device, progress,
                               should_stop, models, warn, claim,
                               writer_threads() if png_threads is None else int(png_threads))
    finally:
        claim.release()


def _render_claimed(plan, biggan_model, settings, out_folder, indices, batch_size, device, progress, should_stop,
                    models, warn, claim, png_threads):
    inputs = walk_inputs(plan)
    identities = model_identities(biggan_model, settings)  # a folder model's files are read once a render
    keys = frame_keys(plan, biggan_model, settings, inputs, identities)
    status = frame_status(plan, biggan_model, settings, out_folder, indices, keys)
    if status.problem:  # the manifest changed since the check above
        raise ManifestError(status.problem)
    reused = set(status.current)
    todo = [index for index in indices if plan.frame_start + index not in reused]
    result = RenderResult(rendered=[], reused=sorted(reused), replaced=sorted(status.stale))
    if not todo:
        return result

    renderer = batch_renderer(plan, biggan_model, settings, device, models, inputs, identities)
    asked = int(batch_size) if batch_size is not None else frame_ranges.default_batch_size(
        [renderer.torch_device.type])
    if progress is not None:
        progress(0, len(todo))  # models are loaded: the frames start now
    writer = frames.FrameWriter(png_threads, claim.temp_prefix)
    try:
        with writer:
            _compute_and_write(plan, out_folder, todo, asked, renderer, writer, keys, claim, result, progress,
                               should_stop, warn)
    except OSError as error:
        raise _write_error(error, out_folder) from None
    result.rendered.sort()  # the writer's threads may finish batches out of order
    if progress is not None and not result.stopped:
        progress(len(result.rendered), len(todo))
    return result


def _compute_and_write(plan, folder, todo, asked, renderer, writer, keys, claim, result, progress, should_stop,
                       warn):
    """The render loop: each aligned batch is computed on the device and handed to ``writer``; the
    writer records it in the manifest once its files are complete."""
    torch_device = renderer.torch_device
    current_size, position = asked, 0
    while position < len(todo):
        if should_stop is not None and should_stop():
            result.stopped = True
            return
        claim.check()
        # Batches are fixed groups of plan indices (index // batch size): kernels may round
        # differently for other batch shapes, and frames must come out byte-identical.
        group = todo[position] // current_size
        batch = list(range(group * current_size, min((group + 1) * current_size, plan.n_frames)))
        wanted = [i for i in todo[position:position + current_size] if i // current_size == group]
        try:
            copy = HostCopy(renderer.compute(batch, wanted))
        except Exception as error:  # noqa: BLE001  (only running out of memory is handled here)
            if not is_out_of_memory(error):
                raise
            _free_device_memory(torch_device)
            if current_size == 1:
                raise LatentWalkError(
                    f"out of memory on {torch_device} rendering frame {plan.frame_start + wanted[0]} even one frame "
                    f"at a time ({type(error).__name__}); use a smaller output size, a Tiny VAE, or close what "
                    "else uses the device. Finished frames are kept.") from None
            failed_size, current_size = current_size, current_size // 2
            message = (f"out of memory on {torch_device} at batch size {failed_size}: going on at batch size "
                       f"{current_size} for the rest of this render. Frames made at a smaller batch can differ in "
                       f"the last bits from a render at batch size {asked}; the manifest records each frame's batch size.")
            result.warnings.append(message)
            if warn is not None:
                warn(message)
            continue
        numbers = [plan.frame_start + i for i in wanted]
        writer.submit([frames.frame_path(folder, number) for number in numbers], copy.pixels,
                      _manifest_forgetter(folder, numbers, claim),
                      _manifest_recorder(folder, dict(zip(numbers, (keys[i] for i in wanted))), current_size,
                                         claim, result), copy.n_bytes)
        if current_size != asked:
            result.reduced_batch.update(dict.fromkeys(numbers, current_size))
        position += len(wanted)
        if progress is not None:
            progress(len(result.rendered), len(todo))


def _manifest_forgetter(folder, numbers, claim):
    """The writer's callback before a batch's files change: take them out of the manifest, so a kill while
    writing never leaves new pixels under an old key (or old pixels under a new one). Only the batch's
    own frames: the others stay current for the plan they were rendered from (an edit undone after a
    cancelled render then needs only the frames the render reached)."""
    def forget():
        claim.check()  # taken over by another render: write nothing more into its frames
        update_manifest(folder, dict.fromkeys(numbers), claim.temp_prefix)

    return forget


def _manifest_recorder(folder, keys_by_number, batch_size, claim, result):
    """The writer's callback once a batch's files are complete ({path: `frames.WrittenFile`}): record them."""
    def record(written):
        claim.check()
        entries = {}
        for number, key in keys_by_number.items():
            path = frames.frame_path(folder, number)
            if path in written:
                entries[number] = manifest_entry(key, batch_size, written[path])
        update_manifest(folder, entries, claim.temp_prefix)
        result.rendered.extend(sorted(entries))

    return record
