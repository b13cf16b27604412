"""Benchmark: a render's bookkeeping per frame as the song grows, the manifest's journal against rewriting it whole.

    .venv/bin/python scripts/bench_bookkeeping.py [--frames 2000,36000,100000] [--batch-size 4]
        [--old-full-up-to 2000] [--old-samples 4] [--folder DIR]

Bookkeeping is what a render does for the trust of its output folder, with the model and the PNG encoding left
out: the claim, the frame keys, the frame status at the start and the contract settled (the manifest compacted),
then per aligned batch the claim check, the frames forgotten before their files change and recorded once they
are complete, and the compaction at the end. In place of the PNGs it writes tiny stand-in files (so that a
record takes its size and time from a real file), timed apart and not counted.

The plan is synthetic (a RenderPlan of N frames) and its generator a stand-in whose per-frame key bytes are as
many as BigGAN's (a 128-float noise vector, a 1000-float class vector and a truncation): frame keys cost what
they cost a BigGAN render, with no walk computed.

Two designs side by side, in fresh folders:
- journal: this version's (engine/render/trust.py): a batch appends its lines to manifest.json's journal;
  the render folds the journal into the snapshot as it starts and ends;
- rewrite: the design before it, kept here as it was (`old_update_manifest`): each forget and each record
  reads, merges and rewrites manifest.json whole. A whole render is timed up to --old-full-up-to frames;
  above that, one batch at --old-samples fill levels of the manifest (the middles of equal parts of the
  render), whose mean is the render's mean per batch, the cost being linear in the fill level.

"one update" is the mean of one manifest update (a forget or a record) over the render's last batches (rewrite,
sampled: at its fullest sample). Not a test: the machines are shared and noisy.
"""

import argparse
import json
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from blender_latentwalk.engine import atomic  # noqa: E402
from blender_latentwalk.engine import LatentWalkError  # noqa: E402
from blender_latentwalk.engine.render import claims  # noqa: E402
from blender_latentwalk.engine.render import png_writer  # noqa: E402
from blender_latentwalk.engine.render import run  # noqa: E402
from blender_latentwalk.engine.render import trust  # noqa: E402
from blender_latentwalk.engine.walk.plan import DEFAULT_SETTINGS, RenderPlan  # noqa: E402

LAST_BATCHES = 50  # "one update": the mean over this many last batches


class StandInGenerator:
    """A `generators.interface.Generator` for keys only: as many key bytes a frame as BigGAN's."""

    family = "bench"
    model = "bench-stand-in"

    def inputs(self, plan):
        rng = np.random.default_rng(0)
        return (rng.standard_normal((plan.n_frames, 128), dtype=np.float32),
                rng.random((64, 1000), dtype=np.float32), np.asarray(plan.truncation, np.float32))

    def key_settings(self, plan):
        return {}

    def frame_bytes(self, inputs, index):
        z, classes, truncation = inputs
        return z[index].tobytes() + classes[index % len(classes)].tobytes() + repr(float(truncation[index])).encode()

    def load(self, device="auto"):
        raise LatentWalkError("the bookkeeping bench computes frame keys only: it loads and runs no model")

    def generate(self, loaded, inputs, plan, batch, needed):
        raise LatentWalkError("the bookkeeping bench computes frame keys only: it loads and runs no model")


class StandInRenderer:
    """What `run._settle_contract` asks of a `compute.BatchRenderer`: the device and the precision."""

    torch_device, dtype = torch.device("cpu"), torch.float32


def synthetic_plan(n_frames):
    zeros, ones = np.zeros(n_frames, np.float32), np.ones(n_frames, np.float32)
    return RenderPlan(frame_start=1, fps=30, fps_base=1.0, seed=0, band_names=["a"], bands=np.zeros((1, n_frames)),
                      band_weights=np.ones((1, n_frames)), onset=zeros, chroma=np.zeros((n_frames, 12)),
                      truncation=np.full(n_frames, 0.5), pulse=ones, speed=ones, jitter=zeros,
                      settings=dict(DEFAULT_SETTINGS))


def old_update_manifest(folder, changes, temp_prefix=None):
    """The design before the journal, as engine/render/trust.py had it: under the folder's lock, read
    manifest.json whole, merge the changes, write it whole again (atomically)."""
    path = os.path.join(folder, trust.MANIFEST_NAME)
    lock = claims.locked(folder)
    try:
        try:
            with open(path, "rb") as stream:
                data = json.loads(stream.read().decode("utf-8"))
            manifest = {int(frame): dict(entry) for frame, entry in data["frames"].items()}
        except FileNotFoundError:
            manifest = {}
        before = dict(manifest)
        for frame, entry in changes.items():
            if entry is None:
                manifest.pop(int(frame), None)
            else:
                manifest[int(frame)] = entry
        if manifest == before and os.path.exists(path):
            return
        text = json.dumps({"version": 3, "frames": {str(f): e for f, e in sorted(manifest.items())}})
        atomic.write_text(path, text, temp_prefix=temp_prefix)
    finally:
        lock.release()


def write_stand_in_files(folder, numbers):
    """{path: WrittenFile} of tiny files written where the batch's PNGs go, as `png_writer.write_png` reports them."""
    written = {}
    for number in numbers:
        path = png_writer.frame_path(folder, number)
        data = b"stand-in frame %d" % number
        with open(path, "wb") as stream:
            stream.write(data)
            status = os.fstat(stream.fileno())
        written[path] = png_writer.WrittenFile("0" * 64, status.st_size, status.st_mtime_ns)
    return written


class Clock:
    """Seconds spent per part, by `part` blocks."""

    def __init__(self):
        self.seconds = {}

    def add(self, part, seconds):
        self.seconds[part] = self.seconds.get(part, 0.0) + seconds


def start(folder, plan, generator, settings, batch_size, journal, clock):
    """The render's start: claim, keys, frame status and (journal) the contract settled, the manifest compacted."""
    began = time.perf_counter()
    claim = claims.claim(folder, range(plan.frame_start, plan.frame_start + plan.n_frames))
    keys = trust.frame_keys(plan, generator, settings)
    todo, _ = run._frames_to_render(plan, generator, settings, folder, range(plan.n_frames), keys)
    contract = run._settle_contract(folder, claim, plan, keys, StandInRenderer(), batch_size, 1) if journal else None
    clock.add("start", time.perf_counter() - began)
    return claim, keys, todo, contract


def one_batch(claim, plan, keys, batch, batch_size, journal, clock, contract=None):
    """Claim check, forget, stand-in files, record; returns the seconds of the two updates."""
    numbers = [plan.frame_start + i for i in batch]
    began = time.perf_counter()
    claim.check()
    if journal:
        trust.forget_frames(claim, numbers)
    else:
        old_update_manifest(claim.folder, dict.fromkeys(numbers), claim.temp_prefix)
    forgotten = time.perf_counter()
    written = write_stand_in_files(claim.folder, numbers)
    files_done = time.perf_counter()
    if journal:
        batches = {n: trust.batch_signature(keys, n - plan.frame_start, batch_size, plan.n_frames) for n in numbers}
        trust.record_frames(claim, {n: keys[n - plan.frame_start] for n in numbers}, batch_size, written, batches,
                            contract)
    else:
        claim.check()
        entries = {n: trust.manifest_entry(keys[n - plan.frame_start], batch_size, written[png_writer.frame_path(
            claim.folder, n)]) for n in numbers}
        old_update_manifest(claim.folder, entries, claim.temp_prefix)
    ended = time.perf_counter()
    clock.add("batches", (forgotten - began) + (ended - files_done))
    clock.add("files", files_done - forgotten)
    return (forgotten - began) + (ended - files_done)


def whole_render(folder, n_frames, batch_size, journal):
    """A whole render's bookkeeping; returns (Clock, the mean seconds of one update over the last batches)."""
    plan, generator = synthetic_plan(n_frames), StandInGenerator()
    settings = run.Img2ImgSettings(model="none", width=8, height=8)
    clock = Clock()
    claim, keys, todo, contract = start(folder, plan, generator, settings, batch_size, journal, clock)
    last = []
    try:
        for first in range(0, len(todo), batch_size):
            last.append(one_batch(claim, plan, keys, todo[first:first + batch_size], batch_size, journal, clock,
                                  contract))
            del last[:-LAST_BATCHES]
        began = time.perf_counter()
        if journal:
            trust.compact_manifest(folder, claim.temp_prefix)
        clock.add("end", time.perf_counter() - began)
    finally:
        claim.release()
    assert len(trust.load_manifest(folder)) == n_frames
    return clock, sum(last) / len(last) / 2


def sampled_old_render(folder, n_frames, batch_size, samples):
    """The rewrite design's bookkeeping estimated from one batch at ``samples`` fill levels (see the docstring)."""
    plan, generator = synthetic_plan(n_frames), StandInGenerator()
    settings = run.Img2ImgSettings(model="none", width=8, height=8)
    clock = Clock()
    claim, keys, _, _ = start(folder, plan, generator, settings, batch_size, False, clock)
    per_batch, last = [], 0.0
    try:
        for sample in range(samples):
            fill = int((sample + 0.5) / samples * n_frames) // batch_size * batch_size
            entry = {"key": "0" * 64, "bytes": 14, "mtime_ns": 0, "sha256": "0" * 64, "batch_size": batch_size}
            text = json.dumps({"version": 3, "frames": {str(plan.frame_start + i): entry for i in range(fill)}})
            atomic.write_text(os.path.join(folder, trust.MANIFEST_NAME), text)  # the manifest as full as then
            batch = list(range(fill, min(fill + batch_size, n_frames)))
            last = one_batch(claim, plan, keys, batch, batch_size, False, Clock())
            per_batch.append(last)
    finally:
        claim.release()
    clock.add("batches", sum(per_batch) / len(per_batch) * (n_frames / batch_size))
    clock.add("end", 0.0)
    return clock, last / 2


def machine():
    cpu = platform.processor() or platform.machine()
    return (f"machine: CPU {cpu} ({os.cpu_count()} cores), {platform.system()} {platform.release()}, Python "
            f"{platform.python_version()}, torch {torch.__version__}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", default="2000,36000,100000", help="song lengths in frames, comma-separated")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--old-full-up-to", type=int, default=2000,
                        help="the rewrite design: a whole render up to this many frames, sampled above")
    parser.add_argument("--old-samples", type=int, default=4)
    parser.add_argument("--folder", help="where the frame folders go (default: a temporary folder, removed after)")
    args = parser.parse_args(argv)
    sizes = [int(part) for part in args.frames.split(",")]
    print(machine())
    print("command: " + shlex.join([os.path.relpath(sys.executable, ROOT) if sys.executable.startswith(ROOT)
                                    else sys.executable, os.path.relpath(os.path.abspath(__file__), ROOT),
                                    *(argv if argv is not None else sys.argv[1:])]))
    print(f"bookkeeping per frame at batch size {args.batch_size}: claim, frame keys, frame status and (journal) "
          "the contract settled at the start; claim check, forget and record per batch; compaction at the end. "
          "Placeholder files (not counted) stand for the PNGs.", flush=True)
    base = args.folder or tempfile.mkdtemp(prefix="bench-bookkeeping-")
    rows = []
    for design in (True, False):  # imports and first calls, not timed
        os.makedirs(os.path.join(base, f"warm-up-{design}"))
        whole_render(os.path.join(base, f"warm-up-{design}"), 16, args.batch_size, design)
    print(HEADER)
    print("-" * len(HEADER))
    try:
        for n_frames in sizes:
            for design in ("journal", "rewrite"):
                folder = os.path.join(base, f"{design}-{n_frames}")
                os.makedirs(folder)
                if design == "journal":
                    clock, update = whole_render(folder, n_frames, args.batch_size, True)
                    how = "whole"
                elif n_frames <= args.old_full_up_to:
                    clock, update = whole_render(folder, n_frames, args.batch_size, False)
                    how = "whole"
                else:
                    clock, update = sampled_old_render(folder, n_frames, args.batch_size, args.old_samples)
                    how = f"sampled x{args.old_samples}"
                shutil.rmtree(folder)
                rows.append((n_frames, design, how, clock.seconds, update))
                print_row(*rows[-1])
    finally:
        if args.folder is None:
            shutil.rmtree(base, ignore_errors=True)
    journal = {n: sum(seconds.values()) - seconds.get("files", 0.0) for n, design, _, seconds, _ in rows
               if design == "journal"}
    per_frame = {n: total / n * 1e3 for n, total in journal.items()}
    print(f"journal: {', '.join(f'{value:.3f}' for value in per_frame.values())} ms a frame at "
          f"{', '.join(map(str, per_frame))} frames (goal: under 1 ms a frame, flat)")


HEADER = (f"{'frames':>7s}  {'design':8s} {'measured':12s} {'start s':>8s} {'batches ms/f':>13s} {'end s':>7s} "
          f"{'total ms/f':>11s} {'one update ms':>14s} {'files ms/f':>11s}")


def print_row(n_frames, design, how, seconds, update):
    total = sum(seconds.values()) - seconds.get("files", 0.0)
    files = f"{seconds['files'] / n_frames * 1e3:11.3f}" if "files" in seconds and how == "whole" else f"{'-':>11s}"
    print(f"{n_frames:7d}  {design:8s} {how:12s} {seconds['start']:8.3f} {seconds['batches'] / n_frames * 1e3:13.3f} "
          f"{seconds['end']:7.3f} {total / n_frames * 1e3:11.3f} {update * 1e3:14.3f} {files}", flush=True)


if __name__ == "__main__":
    main()
