"""The full frame render: resumable, never reusing a stale frame."""

import os

import numpy as np
import pytest

from blender_latentwalk.engine.generators import biggan
from blender_latentwalk.engine.diffusion import img2img
from blender_latentwalk.engine.render import compute
from blender_latentwalk.engine.render import run as render
from blender_latentwalk.engine.render import trust
from blender_latentwalk.engine.walk.plan import DEFAULT_SETTINGS, RenderPlan


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    return (biggan.make_tiny_model(str(folder / "biggan")), img2img.make_tiny_pipeline(str(folder / "sd")))


def plan(n_frames=10, prompt="a volcano", **arrays):
    rng = np.random.default_rng(1)
    values = dict(strength=np.full(n_frames, 0.6), steps=np.full(n_frames, 2.0))
    values.update(arrays)
    return RenderPlan(
        frame_start=1, fps=24, fps_base=1.0, seed=2, band_names=["a"], bands=rng.random((1, n_frames)),
        band_weights=np.ones((1, n_frames)), onset=rng.random(n_frames), chroma=rng.random((n_frames, 12)),
        truncation=np.full(n_frames, 0.5), pulse=np.ones(n_frames), speed=np.ones(n_frames),
        jitter=np.zeros(n_frames), settings=dict(DEFAULT_SETTINGS, prompts=[prompt]), **values,
    )


def settings(models, **changes):
    values = dict(model=models[1], width=48, height=32)
    values.update(changes)
    return render.Img2ImgSettings(**values)


def read_all(folder):
    return {name: open(os.path.join(folder, name), "rb").read() for name in sorted(os.listdir(folder))
            if name.endswith(".png")}


def test_stopped_render_resumes_byte_identical_computing_only_the_rest(models, tmp_path):
    whole = render.render(plan(), models[0], settings(models), str(tmp_path / "whole"), batch_size=3, device="cpu")
    assert len(whole.rendered) == 10 and not whole.reused

    calls = {"n": 0}

    def stop_after_first_batch():  # asked before each batch: Esc pressed during the first
        calls["n"] += 1
        return calls["n"] > 1

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
    changed = render.render(plan(prompt="a lake"), models[0], settings(models), out, device="cpu")
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

    first = run("--sd", models[1], "--prompt", "a volcano", "--plan-indices", "0-4")
    assert first.returncode == 0, first.stderr
    assert "rendered 5 frames, reused 0" in first.stdout
    second = run("--sd", models[1], "--prompt", "a volcano")
    assert "rendered 5 frames, reused 5" in second.stdout
    missing = run("--sd", str(tmp_path / "no-such-model"), "--prompt", "x")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "could not be loaded" in missing.stderr or "does not exist" in missing.stderr


def scheduled_plan(second_prompt, n_frames=12):
    from blender_latentwalk.engine.walk import prompts

    result = plan(n_frames)
    texts, weights = prompts.schedule("a volcano", [(7, second_prompt)], 1, n_frames, fps=24, blend_ms=0)
    result.settings["prompts"], result.prompt_weights = texts, weights
    return result


def test_editing_one_prompt_of_a_schedule_rerenders_only_the_batches_of_its_frames(models, tmp_path):
    out = str(tmp_path / "out")
    first = render.render(scheduled_plan("a lake"), models[0], settings(models), out, batch_size=4, device="cpu")
    assert first.rendered == list(range(1, 13))
    before = read_all(out)
    edited = render.render(scheduled_plan("a forest"), models[0], settings(models), out, device="cpu")
    # Frames 7-12 changed; frames 5 and 6 share their aligned batch (plan indices 4-7), so they are made again.
    assert edited.rendered == list(range(5, 13)) and edited.reused == list(range(1, 5))
    after = read_all(out)
    changed = [name for name in before if before[name] != after[name]]
    assert set(changed) >= {f"frame_{n:06d}.png" for n in range(7, 13)}
    assert set(changed) <= {f"frame_{n:06d}.png" for n in range(5, 13)}


def test_animated_strength_batches_exactly_and_too_little_strength_keeps_the_source(models, tmp_path):
    # steps 2: strength 0.5..0.99 runs one step and 1.0 runs two; below 0.5 runs none.
    strength = np.array([0.55, 0.9, 1.0, 0.3, 0.7, 0.5, 0.2, 1.0])
    mixed = render.render(plan(8, strength=strength), models[0], settings(models), str(tmp_path / "mixed"),
                          batch_size=8, device="cpu")
    assert len(mixed.rendered) == 8
    mixed_frames = read_all(tmp_path / "mixed")
    # Diffusers runs int(steps * strength) steps, so 0.55 and 0.9 are the same call: the
    # render groups them into one batch, and that is exact, not an approximation.
    for value in (0.55, 0.9):
        render.render(plan(8, strength=np.full(8, value)), models[0], settings(models), str(tmp_path / f"s{value}"),
                      batch_size=8, device="cpu")
    assert read_all(tmp_path / "s0.55") == read_all(tmp_path / "s0.9")
    source = render.render(plan(8), models[0], settings(models, model="none"), str(tmp_path / "source"), device="cpu")
    assert len(source.rendered) == 8
    plain = read_all(tmp_path / "source")
    for number in (4, 7):  # strength 0.3 and 0.2: no step, the BigGAN frame itself
        assert mixed_frames[f"frame_{number:06d}.png"] == plain[f"frame_{number:06d}.png"]
    for number in (1, 2, 3):
        assert mixed_frames[f"frame_{number:06d}.png"] != plain[f"frame_{number:06d}.png"]
    # One step (0.55, 0.9) and two steps (1.0) give different pictures of the same source.
    assert mixed_frames["frame_000001.png"] != mixed_frames["frame_000003.png"]


def test_weights_replaced_in_the_same_folder_rerender_even_in_a_warm_worker(models, tmp_path):
    folder = str(tmp_path / "sd")
    img2img.make_tiny_pipeline(folder, seed=0)
    out, warm = str(tmp_path / "out"), compute.Models()  # the worker keeps its models between renders
    render.render(plan(4), models[0], settings(models, model=folder), out, device="cpu", models=warm)
    before = read_all(out)
    img2img.make_tiny_pipeline(folder, seed=1)  # other weights, same path
    again = render.render(plan(4), models[0], settings(models, model=folder), out, device="cpu", models=warm)
    assert again.rendered == [1, 2, 3, 4]
    fresh = str(tmp_path / "fresh")
    render.render(plan(4), models[0], settings(models, model=folder), fresh, device="cpu")
    assert read_all(out) != before and read_all(out) == read_all(fresh)  # the new weights, not the cached ones


def test_sizes_that_are_not_multiples_of_8_come_out_exact(models, tmp_path):
    from PIL import Image

    strength = np.array([0.2, 0.6, 1.0])  # no step, one step, two steps
    render.render(plan(3, strength=strength), models[0], settings(models, width=60, height=44),
                  str(tmp_path / "odd"), device="cpu")
    for number in (1, 2, 3):
        with Image.open(tmp_path / "odd" / f"frame_{number:06d}.png") as image:
            assert image.size == (60, 44)


def test_frame_status_is_decided_by_the_files_and_the_plan_now(models, tmp_path):
    out = str(tmp_path / "out")
    render.render(plan(), models[0], settings(models), out, batch_size=5, device="cpu")
    status = trust.frame_status(plan(), models[0], settings(models), out)
    assert status.complete and status.current == tuple(range(1, 11)) and status.summary() == "10 of 10 frames current"

    # A PNG replaced behind the manifest's back (a preview, a copy from another render) is not the frame.
    replaced = os.path.join(out, "frame_000007.png")
    other = render.render(plan(), models[0], settings(models, model="none"), str(tmp_path / "other"), device="cpu")
    assert other.rendered
    os.replace(os.path.join(tmp_path, "other", "frame_000007.png"), replaced)
    os.unlink(os.path.join(out, "frame_000009.png"))
    status = trust.frame_status(plan(), models[0], settings(models), out)
    assert status.stale == (7,) and status.missing == (9,) and status.first_not_current == 7
    assert status.summary() == "8 of 10 frames current (1 stale, 1 missing)"
    # ...and the plan as it is now decides: an edited prompt makes every frame stale.
    assert trust.frame_status(plan(prompt="a lake"), models[0], settings(models), out).current == ()
    again = render.render(plan(), models[0], settings(models), out, batch_size=5, device="cpu")
    assert again.rendered == [7, 9]


def test_frames_copied_back_with_new_times_stay_current_and_a_changed_byte_does_not(models, tmp_path):
    """A farm node's frames copied home (or synced, or on a share) get new modification times."""
    import shutil

    out = tmp_path / "node"
    render.render(plan(), models[0], settings(models, model="none"), str(out), device="cpu")
    home = tmp_path / "home"
    home.mkdir()
    for name in os.listdir(out):
        if not name.startswith("."):
            shutil.copy(out / name, home / name)  # contents only: new modification times
    assert os.stat(home / "frame_000003.png").st_mtime_ns != os.stat(out / "frame_000003.png").st_mtime_ns
    assert trust.frame_status(plan(), models[0], settings(models, model="none"), str(home)).complete
    data = bytearray((home / "frame_000003.png").read_bytes())
    data[-20] ^= 0xFF  # same size, one byte different
    (home / "frame_000003.png").write_bytes(bytes(data))
    assert trust.frame_status(plan(), models[0], settings(models, model="none"), str(home)).stale == (3,)
