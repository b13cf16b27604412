"""Faults during a render: kill -9, out of memory, a full disk, a lost permission, untrusted files.
Each ends in a clear error or a correct result; finished frames survive and a resume completes."""

import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image
from render_helpers import (ROOT, assert_manifest_consistent, cli_command, kill_point_random, leftovers,
                            plan_72, pngs, run_cli, settings)

from blender_latentwalk.engine import LatentWalkError, atomic, cli
from blender_latentwalk.engine.generators import biggan
from blender_latentwalk.engine.diffusion import img2img
from blender_latentwalk.engine.render import compute
from blender_latentwalk.engine.render import run as render
from blender_latentwalk.engine.walk.plan import PLAN_VERSION
from blender_latentwalk.engine.render import trust
from blender_latentwalk.engine.worker import messages
from blender_latentwalk.engine.worker import process as worker
from blender_latentwalk.engine.walk.plan import RenderPlan

N_FRAMES, BATCH = 32, 4


@pytest.fixture(scope="module")
def reference(models, tmp_path_factory):
    """(plan path, loaded plan, {name: bytes}) of one uninterrupted CLI render at batch size 4."""
    folder = tmp_path_factory.mktemp("reference")
    plan_72(N_FRAMES).save(folder / "plan.npz")
    result = subprocess.run(cli_command(folder / "plan.npz", models, folder / "frames", "--batch-size", str(BATCH)),
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return folder / "plan.npz", RenderPlan.load(str(folder / "plan.npz")), pngs(folder / "frames")


def wait_for_frames(folder, count, process, timeout_s=300):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if os.path.isdir(folder) and sum(n.endswith(".png") for n in os.listdir(folder)) >= count:
            return
        assert process.poll() is None, "the render ended before it could be killed"
        time.sleep(0.02)
    pytest.fail(f"no {count} frames in {timeout_s} s")


def assert_every_frame_whole_and_right(folder, expected):
    """A PNG in the folder (current or not) is never truncated, and each is the reference's bytes."""
    for name, data in pngs(folder).items():
        with Image.open(os.path.join(folder, name)) as image:
            image.load()  # a truncated file raises here
        assert data == expected[name], name


def test_kill_9_of_the_cli_render_at_a_random_point_then_resume(models, reference, tmp_path):
    plan_path, plan, expected = reference
    rng = kill_point_random()
    out = tmp_path / "frames"
    for attempt in range(1, 6):  # on a quiet machine the render can finish before the kill: try earlier
        shutil.rmtree(out, ignore_errors=True)
        process = subprocess.Popen(cli_command(plan_path, models, out, "--batch-size", str(BATCH)), cwd=ROOT,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_frames(out, rng.randrange(1, N_FRAMES - 8), process)
        time.sleep(rng.uniform(0.0, 0.3) / attempt)  # anywhere inside a batch: computing, writing a PNG, the manifest
        if process.poll() is None and len(pngs(out)) < N_FRAMES:
            process.send_signal(signal.SIGKILL)
            break
        process.kill()  # it finished (or wrote its last frame) first: not the fault under test
        process.wait()
    else:
        pytest.fail("the render always finished before it could be killed")
    process.wait()
    assert_every_frame_whole_and_right(out, expected)
    assert len(pngs(out)) < N_FRAMES

    resumed = subprocess.run(cli_command(plan_path, models, out, "--batch-size", str(BATCH)), capture_output=True,
                             text=True, cwd=ROOT)
    assert resumed.returncode == 0, resumed.stderr
    assert pngs(out) == expected and leftovers(out) == []
    assert_manifest_consistent(out, plan, models, N_FRAMES)


def test_kill_9_of_the_worker_at_a_random_point_then_resume(models, reference, tmp_path):
    plan_path, plan, expected = reference
    rng = kill_point_random()
    out = tmp_path / "frames"
    request = messages.RenderRequest(id=1, plan_path=str(plan_path), generator=models[0], out_folder=str(out),
                                     device="cpu", img2img={"model": models[1], "width": 48, "height": 32},
                                     batch_size=BATCH)

    def start():
        process = subprocess.Popen([sys.executable, "-m", "blender_latentwalk.engine", "worker"], cwd=ROOT,
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert isinstance(messages.decode_event(process.stdout.readline()), messages.Ready)
        process.stdin.write(messages.encode(request) + "\n")
        process.stdin.flush()
        return process

    first = start()
    kill_after = rng.randrange(1, N_FRAMES - 8)
    while True:
        event = messages.decode_event(first.stdout.readline())
        assert isinstance(event, messages.Progress), event
        if event.done >= kill_after:
            break
    time.sleep(rng.uniform(0.0, 0.5))
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert_every_frame_whole_and_right(out, expected)

    second = start()
    event = messages.decode_event(second.stdout.readline())
    while isinstance(event, messages.Progress):
        event = messages.decode_event(second.stdout.readline())
    second.stdin.write(messages.encode(messages.QuitRequest()) + "\n")
    second.stdin.flush()
    assert second.wait(60) == 0
    assert isinstance(event, messages.RenderDone) and not event.stopped and len(event.reused) >= kill_after, event
    assert pngs(out) == expected and leftovers(out) == []
    assert_manifest_consistent(out, plan, models, N_FRAMES)


def out_of_memory_above(limit, kind=torch.OutOfMemoryError, message="CUDA out of memory. Tried to allocate 2 GiB"):
    """A biggan.generate_images that fails like a GPU would when a batch has more than ``limit`` frames."""
    real = biggan.generate_images

    def generate(model, device, dtype, z, classes, truncation, plan_indices, batch_size=16):
        if batch_size > limit:
            raise kind(message)
        return real(model, device, dtype, z, classes, truncation, plan_indices, batch_size)

    return generate


def test_out_of_memory_halves_the_batch_tells_the_user_and_records_it(models, monkeypatch, tmp_path):
    plan = plan_72(24)
    at_two = render.render(plan, models[0], settings(models), str(tmp_path / "at2"), batch_size=2, device="cpu")
    assert len(at_two.rendered) == 24
    monkeypatch.setattr(biggan, "generate_images", out_of_memory_above(2))
    told = []
    result = render.render(plan, models[0], settings(models), str(tmp_path / "oom"), batch_size=8, device="cpu",
                           warn=told.append)
    assert result.rendered == list(range(1, 25)) and not result.stopped
    assert len(told) == 2 and told == result.warnings
    assert "at batch size 8: going on at batch size 4" in told[0] and "going on at batch size 2" in told[1]
    assert "smaller batch" in told[1]
    assert result.reduced_batch == {frame: 2 for frame in range(1, 25)}
    manifest = trust.load_manifest(str(tmp_path / "oom"))
    assert {entry["batch_size"] for entry in manifest.values()} == {2}
    # Made at batch size 2, aligned as a render at batch size 2 is: its very bytes.
    assert pngs(tmp_path / "oom") == pngs(tmp_path / "at2")
    assert trust.frame_status(plan, models[0], settings(models), str(tmp_path / "oom")).complete


def test_out_of_memory_at_batch_1_is_a_clear_error_and_keeps_finished_frames(models, monkeypatch, tmp_path):
    real_run = img2img.run

    def run(pipeline, images, conditions, strength, guidance, steps, seeds, device):
        if steps == 2 and strength == 1.0:  # the frames with strength 1.0 cannot be made at all
            raise RuntimeError("CUDA error: out of memory")
        return real_run(pipeline, images, conditions, strength, guidance, steps, seeds, device)

    monkeypatch.setattr(img2img, "run", run)
    plan = plan_72(16)  # strength 1.0 first at plan index 4
    told = []
    with pytest.raises(LatentWalkError) as error:
        render.render(plan, models[0], settings(models), str(tmp_path / "out"), batch_size=4, device="cpu",
                      warn=told.append)
    assert "out of memory" in str(error.value) and "even one frame at a time" in str(error.value)
    assert "frame 5" in str(error.value) and "\n" not in str(error.value)
    assert len(told) == 2  # 4 -> 2 -> 1, then the error
    status = trust.frame_status(plan, models[0], settings(models), str(tmp_path / "out"))
    assert status.current == (1, 2, 3, 4) and leftovers(tmp_path / "out") == []


def test_out_of_memory_reaches_the_worker_client_and_the_cli(models, monkeypatch, tmp_path, capsys):
    plan_path = tmp_path / "plan.npz"
    plan_72(8).save(plan_path)
    monkeypatch.setattr(biggan, "generate_images", out_of_memory_above(2))
    events = []
    request = messages.RenderRequest(id=7, plan_path=str(plan_path), generator=models[0], out_folder=str(tmp_path / "w"),
                                     device="cpu", img2img={"model": "none", "width": 32, "height": 32}, batch_size=4)
    result = worker._render(request, compute.Models(), events.append, should_stop=lambda: False)
    warnings = [e for e in events if isinstance(e, messages.RenderWarning)]
    assert len(warnings) == 1 and warnings[0].id == 7 and "going on at batch size 2" in warnings[0].message
    assert result.reduced_batch == {frame: 2 for frame in range(1, 9)}

    status = cli.main(["render", str(plan_path), "--biggan", models[0], "--sd", "none", "--out", str(tmp_path / "c"),
                       "--size", "32x32", "--device", "cpu", "--batch-size", "4"])
    captured = capsys.readouterr()
    assert status == 0
    assert "warning: out of memory on cpu at batch size 4: going on at batch size 2" in captured.err
    assert "8 frames were made at a smaller batch (2)" in captured.err


def failing_after(count, error_number):
    """A function that raises OSError(error_number) from its ``count``-th call on (the disk fills up)."""
    calls = {"n": 0}

    def fail(real):
        def wrapper(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] >= count:
                raise OSError(error_number, os.strerror(error_number))
            return real(*args, **kwargs)

        return wrapper

    return fail, calls


@pytest.mark.parametrize("error_number,where,fix", [
    (errno.ENOSPC, "fsync", "free some space there"),  # the disk fills while a file is written
    (errno.EACCES, "mkstemp", "make it writable again"),  # write permission lost: no file can be made
])
def test_disk_full_or_permission_lost_mid_render_then_resume(models, reference, monkeypatch, tmp_path, error_number,
                                                             where, fix):
    plan_path, plan, expected = reference
    out = str(tmp_path / "frames")
    failure_call = random.Random(error_number).randrange(4, 20)
    fail, calls = failing_after(failure_call, error_number)
    if where == "fsync":
        monkeypatch.setattr(atomic.os, "fsync", fail(os.fsync))
    else:
        monkeypatch.setattr(atomic.tempfile, "mkstemp", fail(atomic.tempfile.mkstemp))
    with pytest.raises(LatentWalkError) as error:
        render.render(plan, models[0], settings(models), out, batch_size=BATCH, device="cpu")
    monkeypatch.undo()  # space or permission is back
    message = str(error.value)
    assert f"cannot write frames to '{out}'" in message and fix in message and "\n" not in message
    assert calls["n"] >= failure_call  # the fault happened (a last try to record the batch fails too)
    assert leftovers(out) == []
    assert_every_frame_whole_and_right(out, expected)
    finished = trust.frame_status(plan, models[0], settings(models), out).current
    assert len(finished) >= BATCH * ((failure_call - 2) // (BATCH + 2))  # whole batches before the failure
    resumed = render.render(plan, models[0], settings(models), out, batch_size=BATCH, device="cpu")
    assert set(resumed.reused) == set(finished)
    assert pngs(out) == expected
    assert_manifest_consistent(out, plan, models, N_FRAMES)


@pytest.mark.parametrize("content,what", [
    (b"\x00\x01 not json", "is damaged (not JSON)"),
    (b'{"name": "My App", "icons": []}', "is not a Latent Walk manifest"),
    (b'{"version": 9, "frames": {}}', "was written by a newer version"),
    (b'{"version": 3, "frames": {"first": {"key": "x"}}}', "is damaged"),
    (b'{"version": 3, "frames": {"1": {"bytes": 3}}}', "has no key"),
])
def test_a_corrupt_or_foreign_manifest_is_explained_and_never_mixed_in(models, tmp_path, content, what):
    plan = plan_72(8)
    out = tmp_path / "frames"
    render.render(plan, models[0], settings(models, model="none"), str(out), device="cpu")
    before = pngs(out)
    (out / "manifest.json").write_bytes(content)
    status = trust.frame_status(plan, models[0], settings(models, model="none"), str(out))
    assert status.current == () and len(status.stale) == 8 and what in status.problem
    assert what in status.summary() and "move that file away" in status.summary()
    with pytest.raises(trust.ManifestError) as error:
        render.render(plan, models[0], settings(models, model="none"), str(out), device="cpu")
    assert str(out / "manifest.json") in str(error.value) and "\n" not in str(error.value)
    assert pngs(out) == before and (out / "manifest.json").read_bytes() == content  # nothing touched


def test_an_older_manifest_counts_its_frames_stale(models, tmp_path):
    plan = plan_72(8)
    out = tmp_path / "frames"
    render.render(plan, models[0], settings(models, model="none"), str(out), device="cpu")
    (out / "manifest.json").write_text('{"version": 2, "frames": {"1": "0123abcd"}}')
    assert trust.frame_status(plan, models[0], settings(models, model="none"), str(out)).stale == tuple(range(1, 9))
    again = render.render(plan, models[0], settings(models, model="none"), str(out), device="cpu")
    assert again.rendered == again.replaced == list(range(1, 9))


def test_frames_of_another_plan_in_the_folder_are_detected_and_replaced(models, tmp_path):
    other, mine = plan_72(8, seed=4), plan_72(8, seed=3)
    plan_path = tmp_path / "plan.npz"
    mine.save(plan_path)
    out = tmp_path / "frames"
    render.render(other, models[0], settings(models, model="none"), str(out), device="cpu")
    foreign = pngs(out)
    os.unlink(out / "manifest.json")  # and without a manifest: copied in from elsewhere
    status = trust.frame_status(RenderPlan.load(str(plan_path)), models[0], settings(models, model="none"), str(out))
    assert status.current == () and status.stale == tuple(range(1, 9))
    result = run_cli("render", str(plan_path), "--biggan", models[0], "--sd", "none", "--out", str(out),
                     "--size", "48x32", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert "replaced 8 frames that were not current" in result.stdout
    mine_alone = tmp_path / "alone"
    run_cli("render", str(plan_path), "--biggan", models[0], "--sd", "none", "--out", str(mine_alone),
            "--size", "48x32", "--device", "cpu")
    assert pngs(out) == pngs(mine_alone) != foreign


def _old_plan(path):
    """A version-1 plan as the first releases wrote it (no img2img arrays)."""
    header = {"version": 1, "frame_start": 1, "fps": 24.0, "fps_base": 1.0, "seed": 0, "band_names": ["a"],
              "settings": {}}
    arrays = {name: np.zeros(4, np.float32) for name in ("onset", "truncation", "pulse", "speed", "jitter")}
    np.savez(path, header=np.array(json.dumps(header)), bands=np.zeros((1, 4), np.float32), **arrays)


@pytest.mark.parametrize("case,expected", [
    ("batch size 0", "--batch-size 0: give 1 or more"),
    ("old plan", f"is from an older version of Latent Walk (plan version 1, this one reads {PLAN_VERSION})"),
    ("features file", "is not a render plan (it holds"),
    ("text file", "is not a render plan"),
    ("frames outside", "--plan-indices '0-3,60-80': index 80 is outside the plan's 0-71"),
    ("frames reversed", "--plan-indices '0,9-3': '9-3' ends before it starts"),
    ("frames bad part", "--plan-indices '0-3,x5': 'x5' is not an index or a range A-B"),
    ("old frames flag", "--frames 0-3: the engine command line takes 0-based plan indices as --plan-indices 0-3"),
])
def test_engine_cli_errors_are_one_line_and_come_before_any_work(models, tmp_path, case, expected):
    plan_path = tmp_path / "plan.npz"
    extra = []
    if case == "batch size 0":
        extra = ["--batch-size", "0"]  # said even before the plan is read
        plan_path = tmp_path / "not-there.npz"
    elif case == "old plan":
        _old_plan(plan_path)
    elif case == "features file":
        np.savez(plan_path, onset=np.zeros(4), rms=np.zeros(4), chroma=np.zeros((4, 12)))
    elif case == "text file":
        plan_path.write_text("not a plan\n")
    elif case == "old frames flag":
        plan_72().save(plan_path)
        extra = ["--frames", "0-3"]
    else:
        plan_72().save(plan_path)
        extra = ["--plan-indices", {"frames outside": "0-3,60-80", "frames reversed": "0,9-3"}.get(case, "0-3,x5")]
    started = time.perf_counter()
    result = run_cli("render", str(plan_path), "--biggan", models[0], "--sd", "none", "--out", str(tmp_path / "o"),
                     *extra)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert expected in result.stderr
    if case in ("old plan", "features file", "text file"):
        assert str(plan_path) in result.stderr and "sample it again from Blender" in result.stderr
    assert not (tmp_path / "o").exists()  # nothing made, no model loaded
    print(f"{case}: {time.perf_counter() - started:.2f} s")
