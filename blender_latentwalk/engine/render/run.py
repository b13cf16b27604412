"""The render loop: a plan in, PNG files out, resumable, and shared safely with other renders.

`render` checks the request, claims its frames of the output folder (`claims.claim`), keeps the
frames that are current (`trust.frame_status`), loads the models (`compute.batch_renderer`) and runs
the loop: the device computes the next aligned batch while `png_writer.FrameWriter` encodes and
writes the last, and the manifest forgets a batch's frames before its files change and records them
once they are complete (`trust.forget_frames`, `trust.record_frames`).

Frames are computed in aligned batches (plan index // batch size), so any chunking, order or resume
gives the same bytes under one render contract (device kind, precision, batch size, CPU threads:
`trust.RenderContract`), which the folder records and a later render keeps (`_settle_contract`). Out of
memory, the loop goes on at half the batch size.

The manifest's bookkeeping does not grow with the song: a batch appends its lines to the journal, and the
journal is folded into the snapshot only as the render starts (`_settle_contract`) and ends (`_fold_journal`).
"""

import errno
import os
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
    contract: object = None  # the `trust.RenderContract` the frames were made under (None: none were to make)


@dataclass
class RenderRun:
    """What one render carries through its loop and into the writer's callbacks."""

    plan: object  # the RenderPlan
    folder: str  # the output folder
    claim: claims.Claim  # this render's claim on its frames of the folder
    keys: dict  # {plan index: frame key} (`trust.frame_keys`)
    renderer: compute.BatchRenderer  # the models, loaded
    writer: png_writer.FrameWriter
    batch_size: int  # the contract's; after running out of memory the loop goes on at a smaller one
    result: RenderResult  # filled in as the writer records batches
    progress: object = None  # callable(done, total) or None
    should_stop: object = None  # callable() -> bool or None
    warn: object = None  # callable(message) or None


def render(plan, generator_model, settings, out_folder, plan_indices=None, batch_size=None, device="auto",
           progress=None, should_stop=None, models=None, warn=None, png_threads=None, threads=None):
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

    The render contract (`trust.RenderContract`: device kind, precision, batch size, CPU threads): into
    a folder that holds frames current for this plan (or where another render runs), the render keeps
    the folder's; ``batch_size`` and ``threads`` left None take the folder's values, and asking for
    others, or another device kind or precision, raises `LatentWalkError` naming both contracts.
    Into a folder with no current frames, the render's own becomes the folder's.

    batch_size : frames per aligned batch (None: the folder's, else 4 on the CPU and 16 on a GPU).
    threads : PyTorch's CPU threads for this render, set and put back after it (None: the folder's,
        else as they are in this process). They can change a CPU render's last bits.

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
    folder, another render contract, out of memory at batch size 1). Returns a `RenderResult`.
    """
    indices = _requested_indices(plan, out_folder, plan_indices, batch_size, threads)
    png_threads = png_writer.writer_threads() if png_threads is None else int(png_threads)
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
        result.contract = _settle_contract(out_folder, claim, plan, keys, renderer, batch_size, threads)
        if progress is not None:
            progress(0, len(todo))  # models are loaded: the frames start now
        writer = png_writer.FrameWriter(png_threads, claim.temp_prefix)
        run = RenderRun(plan, out_folder, claim, keys, renderer, writer, result.contract.batch_size, result, progress,
                        should_stop, warn)
        finished = False
        try:
            with compute.cpu_threads(result.contract.threads if result.contract.threads is not None else threads):
                _write_all(run, todo)
            finished = True
        finally:
            _fold_journal(run, tell=finished)
        return result
    finally:
        claim.release()


def _requested_indices(plan, out_folder, plan_indices, batch_size, threads=None):
    """The sorted plan indices to render (the output folder made if need be). Raises `LatentWalkError`
    for a batch size or a thread count under 1, a folder that cannot be written, or an index outside the plan."""
    if batch_size is not None and int(batch_size) < 1:
        raise LatentWalkError(f"batch size {batch_size} must be 1 or more.")
    if threads is not None and int(threads) < 1:
        raise LatentWalkError(f"CPU threads {threads} must be 1 or more.")
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


def _settle_contract(folder, claim, plan, keys, renderer, batch_size, threads):
    """The `trust.RenderContract` this render runs under (`trust` invariant 7), settled under the folder's
    lock, where the manifest is compacted too when the contract changes or the journal is due (`trust.journal_due`).

    A contract is in force when the folder records one and holds a frame current for this plan, or another
    live render: this render then takes its batch size and threads where it asks for none, and is refused
    (`LatentWalkError`) when it asks for others or runs on another device kind or precision. Otherwise this
    render's becomes the folder's: the batch size asked (default: `frame_ranges.default_batch_size`) and the
    CPU threads asked (default: this process's now). A GPU's contract names no threads. Frames recorded under
    another contract (or before contracts) are never current (`trust.entry_is_current`).
    """
    import torch

    on_cpu = renderer.torch_device.type == "cpu"
    mine = dict(device=compute.device_kind(renderer.torch_device), precision=compute.precision_name(renderer.dtype),
                batch_size=None if batch_size is None else int(batch_size),
                threads=None if threads is None or not on_cpu else int(threads), torch=torch.__version__)
    lock = claims.locked(folder)
    try:
        manifest = trust.read_manifest(folder)
        recorded = trust.RenderContract.from_json(manifest.contract) if manifest.contract is not None else None
        current = trust.current_frames(plan, keys, folder, manifest)
        if recorded is not None and (next(current, None) is not None or _another_live_render(folder, claim)):
            contract = _agreed(folder, recorded, mine)
        else:
            if mine["batch_size"] is None:
                mine["batch_size"] = frame_ranges.default_batch_size([renderer.torch_device.type])
            if on_cpu and mine["threads"] is None:
                mine["threads"] = torch.get_num_threads()
            contract = trust.RenderContract(**mine)
        if manifest.contract != contract.to_json() or trust.journal_due(folder):  # else nothing to rewrite
            trust.compact_locked(folder, claim.temp_prefix, contract, manifest)
    finally:
        lock.release()
    return contract


def _another_live_render(folder, claim):
    """Whether a live claim other than ``claim`` is on the folder (call with it locked)."""
    return any(other.token != claim.token for other in claims.live_claims(folder))


def _agreed(folder, recorded, mine):
    """``recorded`` (the folder's contract in force), with which ``mine`` (what this render runs on and asks
    for, None where it asks nothing) agrees; else a `LatentWalkError` naming both and what to do."""
    differ = [name for name in trust.RenderContract.COMPARED
              if mine[name] is not None and mine[name] != getattr(recorded, name)]
    if not differ:
        return recorded
    on_cpu = mine["device"].startswith("cpu")
    asked = trust.RenderContract(mine["device"], mine["precision"], mine["batch_size"] or recorded.batch_size,
                                 mine["threads"] or (recorded.threads if on_cpu else None))
    fixes = {"device": f"on {recorded.device}", "precision": f"at {recorded.precision}",
             "batch_size": f"at batch size {recorded.batch_size} (or leave the batch size unset)",
             "threads": f"with {trust.cpu_threads_text(recorded.threads)} (or leave the threads unset)"}
    words = {"device": "device", "precision": "precision", "batch_size": "batch size", "threads": "CPU threads"}
    raise LatentWalkError(
        f"the frames in '{folder}' are rendered under the render contract {recorded.describe()}, and this render's "
        f"is {asked.describe()} (another {', '.join(words[name] for name in differ)}): their last bits could differ. "
        f"Render {' and '.join(fixes[name] for name in differ)}, or choose another Output folder, or move its frames "
        "away to render them all again under the new contract.")


def _fold_journal(run, tell):
    """Fold the journal into the snapshot as the render ends (not when its claim was taken over: it changes
    the manifest no more). A failure leaves the journal, which keeps every record: a warning (when ``tell``),
    never an error."""
    try:
        run.claim.check()
        trust.fold_journal_if_due(run.folder, run.claim.temp_prefix)
    except (OSError, LatentWalkError) as error:
        if tell and os.path.exists(run.claim.path):
            message = (f"the manifest's journal in '{run.folder}' could not be folded into {trust.MANIFEST_NAME} "
                       f"({error}); it keeps every frame's record, and the next render folds it in.")
            run.result.warnings.append(message)
            if run.warn is not None:
                run.warn(message)


def _write_all(run, todo):
    """Compute and write the frames ``todo`` (sorted plan indices) at ``run.batch_size`` (the contract's);
    returns ``run.result``."""
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
    batches = {run.plan.frame_start + i: trust.batch_signature(run.keys, i, batch_size, run.plan.n_frames)
               for i in wanted}

    def forget():
        trust.forget_frames(run.claim, numbers)

    def record(written):
        run.result.rendered.extend(trust.record_frames(run.claim, keys_by_number, batch_size, written, batches,
                                                       run.result.contract))

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
