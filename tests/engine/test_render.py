"""The full frame render: resumable, never reusing a stale frame."""

import os

import numpy as np
import pytest

from blender_latentwalk.engine import biggan, img2img, render
from blender_latentwalk.engine.plan import DEFAULT_SETTINGS, RenderPlan


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    return (biggan.make_tiny_model(str(folder / "biggan")), img2img.make_tiny_pipeline(str(folder / "sd")))


def plan(n_frames=10):
    rng = np.random.default_rng(1)
    return RenderPlan(
        frame_start=1, fps=24, fps_base=1.0, seed=2, band_names=["a"], bands=rng.random((1, n_frames)),
        band_weights=np.ones((1, n_frames)), onset=rng.random(n_frames), chroma=rng.random((n_frames, 12)),
        truncation=np.full(n_frames, 0.5), pulse=np.ones(n_frames), speed=np.ones(n_frames),
        jitter=np.zeros(n_frames), settings=dict(DEFAULT_SETTINGS),
    )


def settings(models, **changes):
    values = dict(model=models[1], prompt="a volcano", strength=0.6, steps=2, width=48, height=32)
    values.update(changes)
    return render.Img2ImgSettings(**values)


def read_all(folder):
    return {name: open(os.path.join(folder, name), "rb").read() for name in sorted(os.listdir(folder))
            if name.endswith(".png")}


def test_stopped_render_resumes_byte_identical_computing_only_the_rest(models, tmp_path):
    whole = render.render(plan(), models[0], settings(models), str(tmp_path / "whole"), batch_size=3, device="cpu")
    assert len(whole.rendered) == 10 and not whole.reused

    calls = {"n": 0}

    def stop_after_first_batch():
        calls["n"] += 1
        return True

    first = render.render(plan(), models[0], settings(models), str(tmp_path / "resumed"), batch_size=3,
                          device="cpu", should_stop=stop_after_first_batch)
    assert first.stopped and first.rendered == [1, 2, 3]
    second = render.render(plan(), models[0], settings(models), str(tmp_path / "resumed"), batch_size=3, device="cpu")
    assert second.rendered == list(range(4, 11)) and second.reused == [1, 2, 3]
    assert read_all(tmp_path / "resumed") == read_all(tmp_path / "whole")


def test_missing_frames_are_redone_and_changed_settings_rerender(models, tmp_path):
    out = str(tmp_path / "out")
    render.render(plan(), models[0], settings(models), out, device="cpu")
    os.unlink(os.path.join(out, "frame_000004.png"))
    again = render.render(plan(), models[0], settings(models), out, device="cpu")
    assert again.rendered == [4] and len(again.reused) == 9
    before = read_all(out)
    changed = render.render(plan(), models[0], settings(models, prompt="a lake"), out, device="cpu")
    assert len(changed.rendered) == 10 and not changed.reused
    assert read_all(out) != before


def test_none_skips_diffusion_and_sizes_follow_the_settings(models, tmp_path):
    from PIL import Image

    out = str(tmp_path / "plain")
    result = render.render(plan(3), models[0], settings(models, model="none", width=80, height=45), out, device="cpu")
    assert result.rendered == [1, 2, 3]
    with Image.open(os.path.join(out, "frame_000001.png")) as image:
        assert image.size == (80, 45)


def test_render_cli_resumes_and_explains_missing_models(models, tmp_path):
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    plan().save(tmp_path / "plan.npz")

    def run(*extra):
        return subprocess.run([sys.executable, "-m", "blender_latentwalk.engine", "render", str(tmp_path / "plan.npz"),
                               "--biggan", models[0], "--out", str(tmp_path / "frames"), "--size", "48x32",
                               "--device", "cpu", *extra], capture_output=True, text=True, cwd=root)

    first = run("--sd", models[1], "--prompt", "a volcano", "--frames", "0-4")
    assert first.returncode == 0, first.stderr
    assert "rendered 5 frames, reused 0" in first.stdout
    second = run("--sd", models[1], "--prompt", "a volcano")
    assert "rendered 5 frames, reused 5" in second.stdout
    missing = run("--sd", str(tmp_path / "no-such-model"), "--prompt", "x")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "could not be loaded" in missing.stderr or "does not exist" in missing.stderr
