"""Benchmark: BigGAN-only song to frames on the CPU, ours against a plain batched loop, idle and under load.

    .venv/bin/python scripts/bench_cpu_load.py [--seconds 10] [--fps 30] [--rounds 3] [--size 128 | --tiny]
        [--load | --no-load] [--load-processes N] [--batch-size N] [--png-threads N] [--ours-threads N]
        [--ours-env KEY=VALUE ...] [--loop-batch 30] [--work DIR]

Both sides turn the same song into the same number of PNG frames with the same BigGAN weights
(biggan-deep-SIZE's architecture with random weights, saved as a model folder and loaded from it; its
compute is the real compute, pretrained weights cannot be downloaded here; ``--tiny``: the 32x32
stand-in, for the test). Each side runs in its own process (as the add-on's render worker does), loads
its model and warms up once; each run's time goes from the song file to its last PNG on disk, the song's
analysis included:

- ours: the engine's path: ``analysis.pipeline.analyze`` of the song, a RenderPlan of its features
  (displacement walk, chroma classes), ``render.run.render`` with ``Img2ImgSettings(model="none")`` into
  a new folder (claims, frame keys, manifest and contract, aligned batches, the PNG writer pool), with a
  ``compute.Models`` kept between runs as the worker keeps it;
- loop: deep-music-visualizer's visualize.py, minus its video encoder: the same analysis, noise vectors
  moved by loudness and its rise and class vectors from chroma as that script makes them, the model as
  loaded (spectral norm on every forward, fp32), batches of 30 under torch.no_grad, each frame to uint8
  and saved by Pillow in the loop, at our PNG compression level (comparable work). Unlike that script it
  keeps every frame (visualize.py drops the last partial batch).

Rounds are interleaved (idle: both sides, then the same under load; the sides' order swapped every
round). The table gives each side's median frames/s, ours / loop (over 1: ours ahead), the median CPU
seconds a frame (user + system, every thread of the side's process: threads that spin waiting for work
show here), and the side's process at its largest (resident MB; Linux's VmHWM, reset through
/proc/self/clear_refs before each run). The load is ``--load-processes`` busy-loop processes (default: one
per core) started by this script before each loaded pair of runs and ended after it.
``--batch-size``, ``--png-threads``, ``--ours-threads`` (render's ``threads``) and ``--ours-env`` (an
environment variable of ours' process only, e.g. OMP_WAIT_POLICY=PASSIVE) try other settings of ours;
without them ours runs as the engine does by default. Not a test: the machines are shared and noisy;
medians of interleaved rounds.
"""

import argparse
import gc
import json
import os
import random
import resource
import shlex
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from demo_song import synthesise_song  # noqa: E402

from blender_latentwalk.engine.analysis import pipeline  # noqa: E402
from blender_latentwalk.engine.generators import biggan  # noqa: E402
from blender_latentwalk.engine.render import compute, png_writer  # noqa: E402
from blender_latentwalk.engine.render import run as render  # noqa: E402
from blender_latentwalk.engine.walk.plan import DEFAULT_SETTINGS, RenderPlan  # noqa: E402

TRUNCATION = 0.5  # one value on both sides: one BigGAN call per batch on both
LOOP_TEMPO_SENSITIVITY, LOOP_PITCH_SENSITIVITY, LOOP_JITTER = 0.25, 300 - 220, 0.5  # visualize.py's defaults


def model_folder(work, size, tiny):
    """A biggan-deep-``size`` (or the tiny stand-in) folder with random weights, made once."""
    name = "biggan-tiny-random" if tiny else f"biggan-deep-{size}-random"
    folder = os.path.join(work, name)
    if not os.path.isfile(os.path.join(folder, biggan.WEIGHTS_NAME)):
        biggan.save_untrained_model(folder, biggan.tiny_architecture() if tiny else biggan.architecture(size))
    return folder


def song(work, seconds):
    path = os.path.join(work, f"song-{seconds:g}s.wav")
    if not os.path.isfile(path):
        synthesise_song(path, seconds)
    return path


def plan_of(features, fps):
    """Our RenderPlan of the song's features: a displacement walk, the classes from chroma."""
    n = features.n_frames
    return RenderPlan(frame_start=1, fps=fps, fps_base=1.0, seed=0, band_names=features.band_names,
                      bands=features.bands, band_weights=np.ones_like(features.bands), onset=features.onset,
                      chroma=features.chroma, truncation=np.full(n, TRUNCATION), pulse=np.ones(n),
                      speed=np.ones(n), jitter=np.full(n, 0.05),
                      settings=dict(DEFAULT_SETTINGS, mode="displacement"))


def loop_vectors(features, classes, seed=0):
    """(noise (n, 128), classes (n, 1000)) as deep-music-visualizer's visualize.py makes them, from our
    analysis: loudness (rms) for its mean mel power, its rise for the power gradient, our chroma for its
    chromagram; its class smoothing (which shortens the song) left out."""
    from scipy.stats import truncnorm

    rng, state = random.Random(seed), np.random.RandomState(seed)
    power = features.rms.astype(np.float64)
    rise = np.gradient(power)
    rise = (rise / max(rise.max(), 1e-12)).clip(min=0)
    power = (power - power.min()) / max(np.ptp(power), 1e-12)
    chroma = features.chroma.T  # (12, n)
    order = np.argsort(chroma.mean(axis=1))[::-1]
    vector = TRUNCATION * truncnorm.rvs(-2, 2, size=128, random_state=state)
    direction = np.where(vector < 0, 1.0, -1.0)
    last_update = np.zeros(128)
    class_vector = np.zeros(1000)
    noise, labels = [], []
    for i in range(features.n_frames):
        if i % 200 == 0:
            jitters = np.array([1.0 if rng.uniform(0, 1) < 0.5 else 1 - LOOP_JITTER for _ in range(128)])
        update = LOOP_TEMPO_SENSITIVITY * (rise[i] + power[i]) * direction * jitters
        update = (update + 3 * last_update) / 4
        last_update = update
        vector = vector + update
        direction[vector >= 2 * TRUNCATION - LOOP_TEMPO_SENSITIVITY] = -1
        direction[vector < -2 * TRUNCATION + LOOP_TEMPO_SENSITIVITY] = 1
        new = np.zeros(1000)
        for j in order:
            new[classes[j]] = (class_vector[classes[j]] + chroma[j, i] / LOOP_PITCH_SENSITIVITY) / (
                1 + 1 / LOOP_PITCH_SENSITIVITY)
        nonzero = new[new != 0]
        if len(nonzero):  # normalize_cv: the smallest class to 0, the range to 1
            low = nonzero.min()
            new[new == 0] = low
            new = (new - low) / max(np.ptp(new), 1e-12)
        class_vector = new
        noise.append(vector)
        labels.append(new)
    return np.asarray(noise, np.float32), np.asarray(labels, np.float32)


def plain_loop(song_path, fps, folder, model, batch, limit=None):
    """deep-music-visualizer's way, song to PNGs (the first ``limit`` frames only: warm-up); returns the number
    of frames written."""
    from PIL import Image

    features = pipeline.analyze(song_path, fps)
    noise, labels = loop_vectors(features, DEFAULT_SETTINGS["classes"])
    noise, labels = torch.from_numpy(noise[:limit]), torch.from_numpy(labels[:limit])
    os.makedirs(folder, exist_ok=True)
    written = 0
    for start in range(0, len(noise), batch):
        with torch.no_grad():
            output = model(noise[start:start + batch], labels[start:start + batch], TRUNCATION)
        pixels = ((output.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        for frame in pixels:
            written += 1
            Image.fromarray(frame).save(os.path.join(folder, f"frame_{written:06d}.png"),
                                        compress_level=png_writer.PNG_COMPRESS_LEVEL)
    return written


def resident_mb(field):
    """This process's ``VmRSS`` (resident now) or ``VmHWM`` (its peak since the last `reset_peak`), in MB;
    None where /proc has no such line."""
    try:
        with open("/proc/self/status") as stream:
            for line in stream:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def reset_peak():
    """Start VmHWM again from the resident memory now (Linux 4.0 and later); False where it cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as stream:
            stream.write("5")
        return True
    except OSError:
        return False


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def serve(args):
    """One side in its own process (as the add-on's render worker is): load and warm up, then for each
    ``run FOLDER`` line render the song into FOLDER and answer one JSON line."""
    folder = model_folder(args.work, args.size, args.tiny)
    song_path = song(args.work, args.seconds)
    size = 32 if args.tiny else args.size
    if args.serve == "ours":
        settings = render.Img2ImgSettings(model="none", width=size, height=size)
        models = compute.Models()

        def run_side(out, warm_up=False):
            features = pipeline.analyze(song_path, args.fps)
            result = render.render(plan_of(features, args.fps), folder, settings, out, [0] if warm_up else None,
                                   args.batch_size, "cpu",
                                   models=models, png_threads=args.png_threads, threads=args.ours_threads)
            contract = result.contract
            return len(result.rendered), {"batch_size": contract.batch_size, "threads": contract.threads}
    else:
        model = biggan.load_weights(*biggan.resolve(folder)).eval()  # as loaded: deep-music-visualizer's

        def run_side(out, warm_up=False):
            return plain_loop(song_path, args.fps, out, model, args.loop_batch, args.loop_batch if warm_up else None), {
                "batch_size": args.loop_batch, "threads": torch.get_num_threads()}

    # Models loaded, kernels chosen, caches filled: one batch (ours: its first aligned batch).
    run_side(os.path.join(args.work, f"warm-{args.serve}"), warm_up=True)
    shutil.rmtree(os.path.join(args.work, f"warm-{args.serve}"), ignore_errors=True)
    print("BENCH " + json.dumps({"ready": True, "wait_policy": os.environ.get("OMP_WAIT_POLICY")}), flush=True)
    for line in sys.stdin:
        command, _, out = line.strip().partition(" ")
        if command != "run":
            break
        gc.collect()
        start_mb = resident_mb("VmRSS") if reset_peak() else None
        start, start_cpu = time.perf_counter(), cpu_seconds()
        frames, contract = run_side(out)
        seconds, cpu = time.perf_counter() - start, cpu_seconds() - start_cpu
        peak = resident_mb("VmHWM") if start_mb is not None else None
        shutil.rmtree(out, ignore_errors=True)
        print("BENCH " + json.dumps({"frames": frames, "seconds": seconds, "cpu_seconds": cpu, "peak_mb": peak,
                                     **contract}), flush=True)


class Side:
    """A side's process (`serve`), asked for one run at a time."""

    def __init__(self, name, args, environment):
        command = [sys.executable, os.path.abspath(__file__), "--serve", name, "--work", args.work,
                   "--seconds", str(args.seconds), "--fps", str(args.fps), "--size", str(args.size),
                   "--loop-batch", str(args.loop_batch)]
        for flag, value in (("--batch-size", args.batch_size), ("--png-threads", args.png_threads),
                            ("--ours-threads", args.ours_threads)):
            command += [flag, str(value)] if value is not None else []
        command += ["--tiny"] if args.tiny else []
        self.name = name
        self.process = subprocess.Popen(command, env=environment, text=True, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE)
        self.ready = self.answer()

    def answer(self):
        for line in self.process.stdout:
            if line.startswith("BENCH "):
                return json.loads(line[len("BENCH "):])
        sys.exit(f"error: the {self.name} side's process ended (exit status {self.process.wait()})")

    def run(self, out):
        self.process.stdin.write(f"run {out}\n")
        self.process.stdin.flush()
        return self.answer()

    def close(self):
        if self.process.poll() is None:
            self.process.stdin.write("quit\n")
            self.process.stdin.flush()
            self.process.wait(60)


def start_load(count):
    """``count`` busy-loop processes: a competing CPU load."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def stop_load(processes):
    for process in processes:
        process.kill()
    for process in processes:
        process.wait()


def machine():
    cpu = compute.cpu_model()
    return f"machine: CPU {cpu} ({os.cpu_count()} cores), torch {torch.__version__}, {torch.get_num_threads()} threads"


def engine_environment():
    """The variables the engine's processes set for themselves before torch loads (engine/__main__.py does it for
    the CLI and the worker; ours' process here is started by this script, so it gets them from here), where this
    engine has any: ``engine.cpu_threads.ENVIRONMENT``."""
    try:
        from blender_latentwalk.engine import cpu_threads
    except ImportError:
        return {}
    return dict(cpu_threads.ENVIRONMENT)


def environment_with(pairs):
    """Ours' environment: this one, the engine's own variables where not set, then ``pairs`` (KEY=VALUE)."""
    environment = dict(os.environ)
    for key, value in engine_environment().items():
        environment.setdefault(key, value)
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals:
            sys.exit(f"error: --ours-env '{pair}' is not KEY=VALUE")
        environment[key] = value
    return environment


def table(args, runs, conditions, ready):
    """Print the header and the table of medians."""
    first = runs[conditions[0], "ours"][0]
    print(machine())
    print("command: " + shlex.join([os.path.relpath(os.path.abspath(sys.argv[0]), ROOT)] + sys.argv[1:]))
    size = 32 if args.tiny else args.size
    model = "the tiny 32x32 stand-in" if args.tiny else f"biggan-deep-{args.size}"
    print(f"song: {args.seconds:g} s synthesised (scripts/demo_song.py) at {args.fps:g} fps, {first['frames']} frames; "
          f"{model} (random weights), {size}x{size}, BigGAN only; timed from the song file to the last PNG, "
          "analysis included, models loaded before; each side in its own process")
    png_threads = png_writer.writer_threads() if args.png_threads is None else args.png_threads
    policy = ready["ours"]["wait_policy"]
    print(f"ours: render.run.render, batch {first['batch_size']}{'' if args.batch_size else ' (default)'}, "
          f"torch {first['threads']} threads{'' if args.ours_threads else ' (default)'}, {png_threads} PNG writer "
          f"thread{'s' if png_threads != 1 else ''}{'' if args.png_threads is not None else ' (default)'}"
          + (f", OMP_WAIT_POLICY={policy}" if policy else ""))
    loop = runs[conditions[0], "loop"][0]
    policy = ready["loop"]["wait_policy"]
    print(f"loop: deep-music-visualizer's way: batch {args.loop_batch}, torch.no_grad, the model as loaded (fp32), "
          f"torch {loop['threads']} threads, Pillow PNGs (level {png_writer.PNG_COMPRESS_LEVEL}) in the loop"
          + (f", OMP_WAIT_POLICY={policy}" if policy else ""))
    print(f"load: {args.load_processes} busy-loop processes" if args.load else "load: none (--no-load)")
    print(f"rounds: {args.rounds}, interleaved; medians (peak MB: the side's process at its largest, resident)")
    print(f"{'condition':10s} {'ours f/s':>9s} {'loop f/s':>9s} {'ours/loop':>9s} {'ours frames':>11s} "
          f"{'loop frames':>11s} {'ours CPU s/f':>12s} {'loop CPU s/f':>12s} {'ours MB':>8s} {'loop MB':>8s}")
    for condition in conditions:
        rate, counts, cpu, peaks = {}, {}, {}, {}
        for side in ("ours", "loop"):
            done = runs[condition, side]
            rate[side] = float(np.median([run["frames"] / run["seconds"] for run in done]))
            counts[side] = ",".join(str(count) for count in sorted({run["frames"] for run in done}))
            cpu[side] = float(np.median([run["cpu_seconds"] / run["frames"] for run in done]))
            known = [run["peak_mb"] for run in done if run["peak_mb"] is not None]
            peaks[side] = f"{max(known):8.0f}" if known else f"{'-':>8s}"
        print(f"{condition:10s} {rate['ours']:9.2f} {rate['loop']:9.2f} {rate['ours'] / rate['loop']:8.2f}x "
              f"{counts['ours']:>11s} {counts['loop']:>11s} {cpu['ours']:12.3f} {cpu['loop']:12.3f} "
              f"{peaks['ours']} {peaks['loop']}")
    for condition in conditions:
        for side in ("ours", "loop"):
            print(f"  {condition} {side} f/s by round: " + ", ".join(
                f"{run['frames'] / run['seconds']:.2f}" for run in runs[condition, side]))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the synthesised song")
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=128, choices=(128, 256, 512), help="biggan-deep-SIZE")
    parser.add_argument("--tiny", action="store_true", help="the 32x32 stand-in instead (tests)")
    parser.add_argument("--load", action=argparse.BooleanOptionalAction, default=True,
                        help="also run under a competing CPU load (default: yes)")
    parser.add_argument("--load-processes", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--batch-size", type=int, default=None, help="ours (default: the engine's)")
    parser.add_argument("--png-threads", type=int, default=None, help="ours (default: the engine's)")
    parser.add_argument("--ours-threads", type=int, default=None, help="ours' torch threads (default: the engine's)")
    parser.add_argument("--ours-env", action="append", default=[], metavar="KEY=VALUE",
                        help="an environment variable of ours' process only (e.g. OMP_WAIT_POLICY=PASSIVE)")
    parser.add_argument("--loop-batch", type=int, default=30)
    parser.add_argument("--work", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "latentwalk-bench-cpu-load"))
    parser.add_argument("--serve", choices=("ours", "loop"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    if args.serve:
        return serve(args)
    model_folder(args.work, args.size, args.tiny)  # made once, before either side loads it
    song(args.work, args.seconds)
    sides = {}
    try:
        sides["ours"] = Side("ours", args, environment_with(args.ours_env))
        sides["loop"] = Side("loop", args, dict(os.environ))
        conditions = ["idle"] + (["loaded"] if args.load else [])
        runs = {(condition, side): [] for condition in conditions for side in sides}
        for number in range(args.rounds):
            order = ["ours", "loop"] if number % 2 == 0 else ["loop", "ours"]
            for condition in conditions:
                load = start_load(args.load_processes) if condition == "loaded" else []
                try:
                    for side in order:
                        runs[condition, side].append(sides[side].run(os.path.join(args.work, f"frames-{side}")))
                finally:
                    stop_load(load)
    finally:
        for side in sides.values():
            side.close()
    table(args, runs, conditions, {name: side.ready for name, side in sides.items()})


if __name__ == "__main__":
    main()
