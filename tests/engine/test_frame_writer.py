"""The PNG writer off the render loop: bounded, in order with the manifest, and safe to kill mid-write."""

import errno
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from PIL import Image
from render_helpers import (ROOT, assert_manifest_consistent, cli_command, kill_point_random, leftovers, plan_72,
                            pngs, settings)

from blender_latentwalk.engine.render import png_writer
from blender_latentwalk.engine.render import run
from blender_latentwalk.engine.render import trust
from blender_latentwalk.engine.walk.plan import RenderPlan

FRAME = np.zeros((8, 8, 3), np.uint8)
BATCH_BYTES = 4 * FRAME.nbytes


def batch_of(folder, first, gate=None):
    """(paths, pixels callable) of a 4-frame batch; ``gate``: an Event the pixels wait for (a slow device)."""
    def pixels():
        if gate is not None:
            assert gate.wait(30)
        return np.stack([FRAME + number for number in range(first, first + 4)])

    return [png_writer.frame_path(folder, number) for number in range(first, first + 4)], pixels


def test_submit_waits_while_the_bound_is_full_and_every_frame_is_written(tmp_path):
    gate, recorded = threading.Event(), []
    writer = png_writer.FrameWriter(2, max_pending_bytes=2 * BATCH_BYTES)
    for first in (1, 5):  # two batches fill the bound
        writer.submit(*batch_of(str(tmp_path), first, gate), lambda: None, recorded.append, BATCH_BYTES)
    third = threading.Thread(target=writer.submit, args=(*batch_of(str(tmp_path), 9), lambda: None, recorded.append, BATCH_BYTES))
    third.start()
    third.join(0.5)
    assert third.is_alive(), "a third batch was taken in beyond the bound"
    assert recorded == [] and not any(name.endswith(".png") for name in os.listdir(tmp_path))
    gate.set()
    third.join(30)
    writer.close()
    assert writer.peak_pending_bytes == 2 * BATCH_BYTES
    assert sorted(path for batch in recorded for path in batch) == [png_writer.frame_path(str(tmp_path), n) for n in range(1, 13)]
    with Image.open(png_writer.frame_path(str(tmp_path), 7)) as image:
        assert np.array_equal(np.asarray(image), FRAME + 7)


def test_a_batch_is_recorded_only_once_all_its_files_are_complete(tmp_path, monkeypatch):
    real, release = png_writer.write_png, threading.Event()

    def slow_last(path, image, temp_prefix=None):
        if path.endswith("frame_000004.png"):
            assert release.wait(30)
        return real(path, image, temp_prefix)

    monkeypatch.setattr(png_writer, "write_png", slow_last)
    recorded = []
    writer = png_writer.FrameWriter(4)
    writer.submit(*batch_of(str(tmp_path), 1), lambda: None, recorded.append, BATCH_BYTES)
    deadline = time.monotonic() + 30
    while sum(name.endswith(".png") for name in os.listdir(tmp_path)) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sum(name.endswith(".png") for name in os.listdir(tmp_path)) == 3 and recorded == []
    release.set()
    writer.close()
    assert len(recorded) == 1 and len(recorded[0]) == 4
    for path, written in recorded[0].items():  # what is recorded is the file's
        status = os.stat(path)
        assert hashlib.sha256(open(path, "rb").read()).hexdigest() == written.sha256
        assert (status.st_size, status.st_mtime_ns) == (written.bytes, written.mtime_ns)


def test_a_failed_write_keeps_the_others_and_surfaces_once(tmp_path, monkeypatch):
    real = png_writer.write_png

    def disk_full_at_6(path, image, temp_prefix=None):
        if path.endswith("frame_000006.png"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, image, temp_prefix)

    monkeypatch.setattr(png_writer, "write_png", disk_full_at_6)
    recorded = []
    writer = png_writer.FrameWriter(1)
    writer.submit(*batch_of(str(tmp_path), 1), lambda: None, recorded.append, BATCH_BYTES)
    writer.submit(*batch_of(str(tmp_path), 5), lambda: None, recorded.append, BATCH_BYTES)
    with pytest.raises(OSError, match="No space"):
        writer.close()
    written = sorted(os.path.basename(path) for batch in recorded for path in batch)
    assert written[:4] == [f"frame_00000{n}.png" for n in range(1, 5)] and "frame_000006.png" not in written
    assert sorted(n for n in os.listdir(tmp_path) if n.endswith(".png")) == written  # only recorded frames exist


def test_png_threads_change_nothing_in_the_bytes_or_the_manifest(models, tmp_path):
    plan = plan_72(12)
    for threads in (0, 3):
        run.render(plan, models[0], settings(models), str(tmp_path / f"threads-{threads}"), batch_size=4,
                      device="cpu", png_threads=threads)
        assert_manifest_consistent(tmp_path / f"threads-{threads}", plan, models, 12)
    assert pngs(tmp_path / "threads-0") == pngs(tmp_path / "threads-3")


def test_a_long_render_keeps_the_frames_waiting_for_the_writer_bounded(models, tmp_path, monkeypatch):
    """A writer far slower than the device (0.1 s a frame): the render waits for it, and never holds more
    than the bound (two batches here) in memory, however many batches the song has."""
    real, writers = png_writer.write_png, []
    monkeypatch.setattr(png_writer, "write_png", lambda *args, **kw: (time.sleep(0.1), real(*args, **kw))[1])
    monkeypatch.setattr(png_writer, "MAX_PENDING_BYTES", 2 * 4 * 48 * 32 * 3)  # 2 batches of 4 frames at 48x32
    real_writer = png_writer.FrameWriter
    monkeypatch.setattr(png_writer, "FrameWriter", lambda *args, **kw: writers.append(real_writer(*args, **kw)) or writers[-1])
    result = run.render(plan_72(40), models[0], settings(models, model="none"), str(tmp_path / "slow"),
                           batch_size=4, device="cpu", png_threads=2)
    assert len(result.rendered) == 40
    assert writers[0].peak_pending_bytes == 2 * 4 * 48 * 32 * 3


STALL_THEN_RENDER = r"""
import os, sys, time
from blender_latentwalk.engine import atomic, cli

marker, stall_at = sys.argv[1], int(sys.argv[2])
real, count = atomic.write_via, [0]


class HalfThenStall:
    # The PNG's first half reaches the disk, then the writer waits to be killed.
    def __init__(self, stream):
        self.stream = stream

    def write(self, data):
        self.stream.write(data[: len(data) // 2])
        self.stream.flush()
        open(marker, "w").close()
        time.sleep(600)

    def __getattr__(self, name):
        return getattr(self.stream, name)


def write_via(path, write, binary=True, temp_prefix=None):
    if path.endswith(".png"):
        count[0] += 1
        if count[0] >= stall_at:
            return real(path, lambda stream: write(HalfThenStall(stream)), binary, temp_prefix)
    return real(path, write, binary, temp_prefix)


atomic.write_via = write_via
sys.exit(cli.main(sys.argv[3:]))
"""


def test_kill_9_while_a_png_is_half_written_then_resume(models, tmp_path):
    """The render is killed while a writer thread has half a PNG on disk and the device has gone on to the next
    batches: no PNG is ever half there under its name, the manifest lists only complete files, and the resume
    is byte-identical to an uninterrupted render."""
    rng = kill_point_random()
    plan_72(24).save(tmp_path / "plan.npz")
    plan = RenderPlan.load(str(tmp_path / "plan.npz"))  # as the CLI reads it
    reference = tmp_path / "reference"
    assert subprocess.run(cli_command(tmp_path / "plan.npz", models, reference, "--batch-size", "4"),
                          cwd=ROOT, capture_output=True).returncode == 0
    out, marker = tmp_path / "frames", tmp_path / "stalled"
    command = cli_command(tmp_path / "plan.npz", models, out, "--batch-size", "4")
    process = subprocess.Popen([sys.executable, "-c", STALL_THEN_RENDER, str(marker), str(rng.randrange(1, 16)),
                                *command[3:]], cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not marker.exists():
        assert process.poll() is None and time.monotonic() < deadline, "the render never reached the stalled write"
        time.sleep(0.02)
    time.sleep(rng.uniform(0.0, 0.5))  # the device goes on computing the next batches meanwhile
    process.send_signal(signal.SIGKILL)
    process.wait()

    expected = pngs(reference)
    assert any(name.endswith(".tmp") for name in leftovers(out)), leftovers(out)  # killed during a write
    for name, data in pngs(out).items():  # every PNG under its name is whole and the right one
        with Image.open(out / name) as image:
            image.load()
        assert data == expected[name], name
    status = trust.frame_status(plan, models[0], settings(models), str(out))
    recorded = trust.load_manifest(str(out))  # the snapshot and the journal a kill leaves uncompacted
    assert sorted(recorded) == list(status.current)  # what the manifest lists is complete and right
    assert len(status.current) < 24

    resumed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert pngs(out) == expected and leftovers(out) == []
    assert_manifest_consistent(out, plan, models, 24)
