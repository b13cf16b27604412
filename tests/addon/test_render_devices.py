"""One render on several devices (Devices: "cpu,cpu" here, "cuda:0,cuda:1" on a workstation): one
worker per device over interleaved aligned batches, one progress line, one cancel, and a device
that dies hands its frames to the other; the frames are the bytes of a one-worker render."""

import os
import signal
import time

import pytest
from addon_helpers import pngs

from blender_latentwalk.blender import render_job, worker_client


@pytest.fixture
def one_worker_frames(baked, tmp_path):
    job = render_job.render_sync(baked)
    assert len(job.result.rendered) == 72
    return pngs(tmp_path / "frames")


def test_a_bad_device_is_named_before_any_work(baked, tmp_path):
    baked.latentwalk.diffusion.devices = "cuda:0,gpu1"
    with pytest.raises(render_job.LatentWalkError, match="'gpu1' is not a device"):
        render_job.RenderJob(baked)
    assert not (tmp_path / "frames").exists() or not pngs(tmp_path / "frames")


def test_two_cpu_workers_give_the_bytes_of_one_with_one_progress_line(baked, one_worker_frames, tmp_path):
    scene = baked
    scene.latentwalk.diffusion.output_folder = str(tmp_path / "two")
    scene.latentwalk.diffusion.devices = "cpu,cpu"
    lines = []
    job = render_job.RenderJob(scene)
    assert len({id(share.worker) for share in job.shares}) == 2
    assert {share.worker.process.pid for share in job.shares} == {p.process.pid for p in worker_client.workers()}
    job.wait(lambda job: lines.append(job.status_line()))
    job.finish(scene)
    assert pngs(tmp_path / "two") == one_worker_frames
    assert len(job.result.rendered) == 72 and not job.result.stopped
    frames_lines = [line for line in lines if "/72 frames" in line]
    assert frames_lines and frames_lines[-1].startswith("Latent Walk: 72/72 frames") and "on 2 devices" in lines[-1]
    counts = [int(line.split(": ")[1].split("/")[0]) for line in frames_lines]
    assert counts == sorted(counts)  # one count for the job, never one per worker

    # Back to one device: the second worker ends (it held that device's memory), the first renders on.
    second = job.shares[1].worker
    scene.latentwalk.diffusion.devices = ""
    scene.latentwalk.diffusion.output_folder = str(tmp_path / "one")
    render_job.render_sync(scene)
    assert len(worker_client.workers()) == 1 and not second.alive()
    assert pngs(tmp_path / "one") == one_worker_frames


def test_cancel_stops_both_workers_and_keeps_their_frames(baked, tmp_path):
    scene = baked
    scene.latentwalk.diffusion.devices = "cpu,cpu"
    job = render_job.RenderJob(scene)
    while not job.finished and job.done < 8:
        if not job.poll():
            time.sleep(0.05)
    job.cancel()
    job.wait()
    assert job.result.stopped and all(share.result.stopped for share in job.shares)
    assert all(share.worker.alive() for share in job.shares)  # stopped between batches, models kept
    assert 8 <= len(job.result.rendered) < 72
    assert len(pngs(tmp_path / "frames")) == len(job.result.rendered)


def test_a_worker_killed_mid_render_hands_its_frames_to_the_other(baked, one_worker_frames, tmp_path):
    scene = baked
    scene.latentwalk.diffusion.output_folder = str(tmp_path / "killed")
    scene.latentwalk.diffusion.devices = "cpu,cpu"
    job = render_job.RenderJob(scene)
    victim = job.shares[1]
    while not job.finished and victim.done < 4:
        if not job.poll():
            time.sleep(0.05)
    os.kill(victim.worker.process.pid, signal.SIGKILL)
    job.wait()
    assert job.error is None, job.error
    assert len(job.handed_over) == 1 and "cpu (worker 2) failed" in job.handed_over[0]
    job.finish(scene)
    assert pngs(tmp_path / "killed") == one_worker_frames
