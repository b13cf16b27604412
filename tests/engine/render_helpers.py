"""What the render trust and fault tests share: a 72-frame plan whose batches mix truncations and
img2img step counts, tiny models, the engine CLI and worker as processes, and folder snapshots."""

import os
import random
import subprocess
import sys

import numpy as np

from blender_latentwalk.engine.generators import biggan
from blender_latentwalk.engine.diffusion import img2img
from blender_latentwalk.engine.render import run
from blender_latentwalk.engine.render import trust
from blender_latentwalk.engine.walk.plan import DEFAULT_SETTINGS, RenderPlan

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIZE = (48, 32)


def tiny_models(folder):
    """(BigGAN folder, SD pipeline folder): untrained tiny models in the real on-disk formats."""
    return biggan.make_tiny_model(str(folder / "biggan")), img2img.make_tiny_pipeline(str(folder / "sd"))


def kill_point_random():
    """A random.Random whose seed is printed, so a failing kill point can be replayed."""
    seed = random.randrange(10**6)
    print(f"\nkill point seed {seed}")
    return random.Random(seed)


def plan_72(n_frames=72, seed=3):
    """3 s at 24 fps (as the headless test's song). Truncation and strength vary within batches, so
    an aligned batch holds several BigGAN and img2img calls of different shapes."""
    rng = np.random.default_rng(seed)
    truncation = np.where(np.arange(n_frames) % 5 < 3, 0.4, 0.62)
    strength = np.where(np.arange(n_frames) % 7 < 4, 0.6, 1.0)
    return RenderPlan(
        frame_start=1, fps=24, fps_base=1.0, seed=seed, band_names=["low", "high"],
        bands=rng.random((2, n_frames)), band_weights=np.ones((2, n_frames)), onset=rng.random(n_frames),
        chroma=rng.random((n_frames, 12)), truncation=truncation, pulse=np.ones(n_frames), speed=np.ones(n_frames),
        jitter=np.full(n_frames, 0.05), strength=strength, steps=np.full(n_frames, 2.0),
        noise_seed=(np.arange(n_frames) % 3).astype(np.float32),
        settings=dict(DEFAULT_SETTINGS, mode="travel", prompts=["a volcano"]),
    )


def settings(models, **changes):
    values = dict(model=models[1], width=SIZE[0], height=SIZE[1])
    values.update(changes)
    return run.Img2ImgSettings(**values)


def cli_command(plan_path, models, out, *extra):
    return [sys.executable, "-m", "blender_latentwalk.engine", "render", str(plan_path), "--biggan", models[0],
            "--sd", models[1], "--out", str(out), "--size", f"{SIZE[0]}x{SIZE[1]}", "--device", "cpu", *extra]


def run_cli(*args, **options):
    return subprocess.run([sys.executable, "-m", "blender_latentwalk.engine", *args], capture_output=True,
                          text=True, cwd=ROOT, **options)


def pngs(folder):
    """{name: bytes} of the folder's frames."""
    return {name: open(os.path.join(folder, name), "rb").read() for name in sorted(os.listdir(folder))
            if name.endswith(".png")}


def identities(folder):
    """{name: (inode, mtime_ns)} of the folder's frames: a rewritten file changes both."""
    return {name: (os.stat(os.path.join(folder, name)).st_ino, os.stat(os.path.join(folder, name)).st_mtime_ns)
            for name in sorted(os.listdir(folder)) if name.endswith(".png")}


def leftovers(folder):
    """Temporary files and render claims left in the folder."""
    return sorted(name for name in os.listdir(folder) if name.endswith(".tmp") or name.startswith(".latentwalk-render-"))


def assert_manifest_consistent(folder, plan, models, n_expected):
    """Every manifest entry is a file as it is now, every frame is current, and nothing else is listed."""
    status = trust.frame_status(plan, models[0], settings(models), str(folder))
    assert status.complete and len(status.current) == n_expected, status.summary()
    entries = trust.load_manifest(str(folder))  # the snapshot with its journal (folded in only when due)
    assert sorted(entries) == list(status.current)
