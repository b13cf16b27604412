"""The render loop: a plan in, PNG files out, resumable, and shared safely with other renders.

`render` checks the request, claims its frames of the output folder (`claims.claim`), keeps the
frames that are current (`trust.frame_status`), loads the models (`compute.batch_renderer`) and runs
the loop: the device computes the next aligned batch while `png_writer.FrameWriter` encodes and
writes the last, and the manifest forgets a batch's frames before its files change and records them
once they are complete (`trust.forget_frames`, `trust.record_frames`).

Frames are computed in aligned batches (plan index // batch size), so any chunking, order or resume
gives the same bytes. Out of memory, the loop goes on at half the batch size.
"""

import errno
from dataclasses import dataclass, field

from ..diffusion import img2img
from ..errors import LatentWalkError
from ..generators.selection import for_model
from . import claims
from . import compute
from . import frame_ranges
from . import png_writer
from . import trust


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


@dataclass
class RenderRun:
    """What one render carries through its loop and into the writer's callbacks."""

    plan: object  # the RenderPlan
    folder: str  # the output folder
    claim: claims.Claim  # this render's claim on its frames of the folder
    keys: dict  # {plan index: frame key} (`trust.frame_keys`)
    renderer: compute.BatchRenderer  # the models, loaded
    writer: png_writer.FrameWriter
    batch_size: int  # as asked; after running out of memory the loop goes on at a smaller one
    result: RenderResult  # filled in as the writer records batches
    progress: object = None  # callable(done, total) or None
    should_stop: object = None  # callable() -> bool or None
    warn: object = None  # callable(message) or None


def render(plan, generator_model, settings, out_folder, plan_indices=None, batch_size=None, device="auto",
           progress=None, should_stop=None, models=None, warn=None, png_threads=None):
    """Render plan frames into ``out_folder`` as frame_NNNNNN.png (Blender frame numbers).

    generator_model : the generator's model: a BigGAN name or folder, or a StyleGAN .pkl / .pt file
    (`generators.interface.for_model`).

    Frames already current (`trust.frame_status`) are kept untouched; missing and stale ones
    are rendered. A frame is always computed inside its aligned batch (plan indices
    ``k * batch_size ... k * batch_size + batch_size - 1``, cut at the plan's end), its
    neighbours computed and thrown away when they are not asked for, so any chunking,
    order or resume gives the bytes of one uninterrupted render at the same batch size.
    The device computes the next batch while `png_writer.FrameWriter` encodes and writes the last;
    a frame enters the manifest only once its file is complete.

    progress : callable(done, total), once the models are loaded (done 0) and after each batch;
        done counts the frames written and recorded.
    should_stop : callable() -> bool, checked before each batch (a stop leaves finished
        frames and a consistent manifest).
    models : a `compute.Models` to load through and keep (default: a fresh one).
    warn : callable(message), told when the render goes on differently than asked (out of
        memory: a smaller batch). The messages are also in `RenderResult.warnings`.
    png_threads : threads encoding and writing PNGs (default `png_writer.writer_threads()`; 0: in the
        render loop, one after another). The bytes are the same either way.
    Raises `LatentWalkError` (`claims.FolderBusy` when another live render writes some of
    the same frames, `trust.ManifestError` for a manifest it cannot trust, a full or read-only
    folder, out of memory at batch size 1). Returns a `RenderResult`.
    """
    indices = _requested_indices(plan, out_folder, plan_indices, batch_size)
    trust.load_manifest(out_folder)  # a manifest that cannot be trusted stops the render before any work
    threads = png_writer.writer_threads() if png_threads is None else int(png_threads)
    claim = claims.claim(out_folder, [plan.frame_start + i for i in indices])
    try:
        generator = for_model(generator_model)
        inputs = generator.inputs(plan)
        identities = trust.model_identities(generator_model, settings)  # a folder model's files are read once a render
        keys = trust.frame_keys(plan, generator, settings, inputs, identities)
        todo, result = _frames_to_render(plan, generator, settings, out_folder, indices, keys)
        if not todo:
            return result
        renderer = compute.batch_renderer(plan, generator, settings, device, models, inputs, identities)
        asked = int(batch_size) if batch_size is not None else frame_ranges.default_batch_size(
            [renderer.torch_device.type])
        if progress is not None:
            progress(0, len(todo))  # models are loaded: the frames start now
        writer = png_writer.FrameWriter(threads, claim.temp_prefix)
        run = RenderRun(plan, out_folder, claim, keys, renderer, writer, asked, result, progress, should_stop, warn)
        return _write_all(run, todo)
    finally:
        claim.release()


def _requested_indices(plan, out_folder, plan_indices, batch_size):
    """The sorted plan indices to render (the output folder made if need be). Raises `LatentWalkError`
    for a batch size under 1, a folder that cannot be written, or an index outside the plan."""
    if batch_size is not None and int(batch_size) < 1:
        raise LatentWalkError(f"batch size {batch_size} must be 1 or more.")
    png_writer.ensure_writable_folder(out_folder)
    indices = sorted(set(range(plan.n_frames) if plan_indices is None else (int(i) for i in plan_indices)))
    outside = [i for i in indices if not 0 <= i < plan.n_frames]
    if outside:
        raise LatentWalkError(f"frame indices {outside[0]}... are outside the plan's 0-{plan.n_frames - 1}.")
    return indices


def _frames_to_render(plan, generator, settings, folder, indices, keys):
    """(the plan indices of ``indices`` that are not current, a `RenderResult` naming the reused and
    the replaced frames)."""
    status = trust.frame_status(plan, generator, settings, folder, indices, keys)
    if status.problem:  # the manifest changed since the check before the claim
        raise trust.ManifestError(status.problem)
    reused = set(status.current)
    todo = [index for index in indices if plan.frame_start + index not in reused]
    return todo, RenderResult(rendered=[], reused=sorted(reused), replaced=sorted(status.stale))


def _write_all(run, todo):
    """Compute and write the frames ``todo`` (sorted plan indices); returns ``run.result``."""
    try:
        with run.writer:
            _compute_and_write(run, todo)
    except OSError as error:
        raise _write_error(error, run.folder) from None
    run.result.rendered.sort()  # the writer's threads may finish batches out of order
    if run.progress is not None and not run.result.stopped:
        run.progress(len(run.result.rendered), len(todo))
    return run.result


def _compute_and_write(run, todo):
    """The render loop: each aligned batch is computed on the device and handed to the writer; the
    writer records it in the manifest once its files are complete."""
    batch_size, position = run.batch_size, 0
    while position < len(todo):
        if run.should_stop is not None and run.should_stop():
            run.result.stopped = True
            return
        run.claim.check()
        # Batches are fixed groups of plan indices (index // batch size): kernels may round
        # differently for other batch shapes, and frames must come out byte-identical.
        group = todo[position] // batch_size
        batch = list(range(group * batch_size, min((group + 1) * batch_size, run.plan.n_frames)))
        wanted = [i for i in todo[position:position + batch_size] if i // batch_size == group]
        try:
            copy = compute.HostCopy(run.renderer.compute(batch, wanted))
        except Exception as error:  # noqa: BLE001  (only running out of memory is handled here)
            if not compute.is_out_of_memory(error):
                raise
            batch_size = _smaller_batch_size(run, error, batch_size, run.plan.frame_start + wanted[0])
            continue
        _submit(run, wanted, copy, batch_size)
        position += len(wanted)
        if run.progress is not None:
            run.progress(len(run.result.rendered), len(todo))


def _smaller_batch_size(run, error, batch_size, first_frame):
    """The batch size to go on at after ``error`` (out of memory) at ``batch_size``: half of it, the
    user told why. At batch size 1 there is nothing smaller: raises `LatentWalkError` naming ``first_frame``."""
    torch_device = run.renderer.torch_device
    compute.free_device_memory(torch_device)
    if batch_size == 1:
        raise LatentWalkError(
            f"out of memory on {torch_device} rendering frame {first_frame} even one frame "
            f"at a time ({type(error).__name__}); use a smaller output size, a Tiny VAE, or close what "
            "else uses the device. Finished frames are kept.") from None
    smaller = batch_size // 2
    message = (f"out of memory on {torch_device} at batch size {batch_size}: going on at batch size "
               f"{smaller} for the rest of this render. Frames made at a smaller batch can differ in "
               f"the last bits from a render at batch size {run.batch_size}; the manifest records each frame's "
               "batch size.")
    run.result.warnings.append(message)
    if run.warn is not None:
        run.warn(message)
    return smaller


def _submit(run, wanted, copy, batch_size):
    """Hand the frames ``wanted`` (plan indices), computed at ``batch_size`` and on their way to the CPU
    in ``copy`` (a `compute.HostCopy`), to the writer, with the manifest updates before and after."""
    numbers = [run.plan.frame_start + i for i in wanted]
    keys_by_number = dict(zip(numbers, (run.keys[i] for i in wanted)))

    def forget():
        trust.forget_frames(run.claim, numbers)

    def record(written):
        run.result.rendered.extend(trust.record_frames(run.claim, keys_by_number, batch_size, written))

    run.writer.submit([png_writer.frame_path(run.folder, number) for number in numbers], copy.pixels, forget, record,
                      copy.n_bytes)
    if batch_size != run.batch_size:
        run.result.reduced_batch.update(dict.fromkeys(numbers, batch_size))


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
