"""Any chunking, any order, any resume, two renders at once: the bytes of one uninterrupted render."""

import os
import socket
import subprocess
import sys
import time

import pytest
from render_helpers import (ROOT, assert_manifest_consistent, cli_command, identities, leftovers, plan_72,
                            pngs, settings)

from blender_latentwalk.engine import LatentWalkError
from blender_latentwalk.engine.render import claims
from blender_latentwalk.engine.render import png_writer
from blender_latentwalk.engine.render import run
from blender_latentwalk.engine.render import trust
from blender_latentwalk.engine.walk.plan import RenderPlan

BATCH = 8


@pytest.fixture(scope="module")
def reference(models, tmp_path_factory):
    """One uninterrupted 72-frame render at batch size 8, through the engine CLI."""
    folder = tmp_path_factory.mktemp("reference")
    plan_72().save(folder / "plan.npz")
    started = time.perf_counter()
    result = subprocess.run(cli_command(folder / "plan.npz", models, folder / "frames", "--batch-size", str(BATCH)),
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    print(f"\none 72-frame render: {time.perf_counter() - started:.1f} s")
    frames = pngs(folder / "frames")
    assert len(frames) == 72
    return folder / "plan.npz", frames


def test_two_concurrent_chunks_then_a_resume_after_deleting_frames_are_the_bytes_of_one_run(models, reference):
    plan_path, expected = reference
    out = plan_path.parent / "chunks"
    # Farm chunks with gaps: plan indices 0-30 and 60-71 in one, 31-59 in the other; the edges split the
    # aligned batches 24-31 and 56-63.
    started = time.perf_counter()
    chunks = [subprocess.Popen(cli_command(plan_path, models, out, "--batch-size", str(BATCH), "--plan-indices", span),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
              for span in ("0-30,60-71", "31-59")]
    finished = []
    for chunk, count in zip(chunks, (43, 29)):
        stdout, stderr = chunk.communicate(timeout=600)
        finished.append(time.perf_counter() - started)
        assert chunk.returncode == 0, stderr
        assert f"rendered {count} frames, reused 0" in stdout
    print(f"\ntwo concurrent chunks 1-31,61-72 and 32-60: done after {finished[0]:.1f} s and {finished[1]:.1f} s")
    assert pngs(out) == expected
    assert_manifest_consistent(out, RenderPlan.load(str(plan_path)), models, 72)
    assert leftovers(out) == []

    for number in (11, 12, 41):
        os.unlink(out / f"frame_{number:06d}.png")
    before = identities(out)
    started = time.perf_counter()
    resumed = subprocess.run(cli_command(plan_path, models, out, "--batch-size", str(BATCH)), capture_output=True,
                             text=True, cwd=ROOT)
    print(f"resume of 3 deleted frames: {time.perf_counter() - started:.1f} s")
    assert resumed.returncode == 0, resumed.stderr
    assert "rendered 3 frames, reused 69" in resumed.stdout
    assert pngs(out) == expected
    after = identities(out)
    assert {name: after[name] for name in before} == before  # the 69 others were not rewritten
    assert sorted(set(after) - set(before)) == ["frame_000011.png", "frame_000012.png", "frame_000041.png"]
    assert_manifest_consistent(out, RenderPlan.load(str(plan_path)), models, 72)


def test_out_of_order_single_frames_and_ragged_chunks_in_process(models, reference, tmp_path):
    plan_path, expected = reference
    plan = RenderPlan.load(str(plan_path))
    out = str(tmp_path / "ragged")
    # The last batch first, single frames from the middle of batches, then ragged spans, then the rest.
    for span in ([71], [69, 70], [5], [13], range(40, 53), range(17, 30), range(60, 64), None):
        result = run.render(plan, models[0], settings(models), out, span, batch_size=BATCH, device="cpu")
        assert not result.replaced
    assert pngs(out) == expected


def test_an_overlapping_render_is_refused_naming_the_other_and_disjoint_chunks_proceed(models, tmp_path):
    plan = plan_72(16)
    out = tmp_path / "busy"
    out.mkdir()
    other = claims.claim(str(out), range(5, 11))  # a live render of Blender frames 5-10 (this process)
    try:
        with pytest.raises(claims.FolderBusy) as refused:
            run.render(plan, models[0], settings(models, model="none"), str(out), range(8, 12), device="cpu")
        message = str(refused.value)
        assert f"process {os.getpid()} on {socket.gethostname()}" in message and "since" in message
        assert "frames 9-10" in message and "\n" not in message
        assert not list(out.glob("*.png"))  # refused before any work
        done = run.render(plan, models[0], settings(models, model="none"), str(out), range(10, 16), device="cpu")
        assert done.rendered == list(range(11, 17))  # frames 11-16 do not overlap 5-10
    finally:
        other.release()
    # The other render ended: the frames are free again.
    assert run.render(plan, models[0], settings(models, model="none"), str(out), range(8, 12),
                         device="cpu").rendered == [9, 10]


def test_the_cli_refuses_an_overlapping_render_in_one_line(models, tmp_path):
    plan_72(16).save(tmp_path / "plan.npz")
    out = tmp_path / "busy"
    out.mkdir()
    other = claims.claim(str(out), [1])
    try:
        result = subprocess.run(cli_command(tmp_path / "plan.npz", models, out, "--plan-indices", "0-3"),
                                capture_output=True, text=True, cwd=ROOT)
    finally:
        other.release()
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and f"being rendered by process {os.getpid()}" in result.stderr


def _dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_killed_render_s_claim_and_temporary_files_are_taken_over(models, tmp_path):
    import json

    out = tmp_path / "taken"
    out.mkdir()
    now = time.time()
    dead = {"pid": _dead_pid(), "host": socket.gethostname(), "since": now - 5, "frames": [[1, 16]],
            "pid_space": claims.pid_space()}  # provably this machine's (and container's): taken over at once
    (out / ".latentwalk-render-00000000000000aa.json").write_text(json.dumps(dead))
    if claims.pid_space() is None:  # nothing proves a pid here: only its heartbeat can tell
        os.utime(out / ".latentwalk-render-00000000000000aa.json", (now - claims.STALE_AFTER_S - 5,) * 2)
    (out / ".latentwalk-00000000000000aa-frame_000003.png.x1.tmp").write_bytes(b"half a png")
    far = {"pid": 1, "host": "render-node-7", "since": now - 3600, "frames": [[1, 16]]}
    (out / ".latentwalk-render-00000000000000bb.json").write_text(json.dumps(far))
    stale = now - claims.STALE_AFTER_S - 5  # its heartbeat stopped: killed on another machine
    os.utime(out / ".latentwalk-render-00000000000000bb.json", (stale, stale))
    live = claims.claim(str(out), [40])  # a live render elsewhere in the folder: its temp files stay
    (out / f"{live.temp_prefix}frame_000040.png.x2.tmp").write_bytes(b"being written")
    try:
        result = run.render(plan_72(16), models[0], settings(models, model="none"), str(out), device="cpu")
        assert result.rendered == list(range(1, 17))
        assert leftovers(out) == sorted([os.path.basename(live.path), f"{live.temp_prefix}frame_000040.png.x2.tmp"])
    finally:
        live.release()

    fresh = dict(far, since=now)  # another machine's render with a fresh heartbeat is alive
    (out / ".latentwalk-render-00000000000000cc.json").write_text(json.dumps(fresh))
    (out / "frame_000002.png").unlink()
    with pytest.raises(claims.FolderBusy, match="on render-node-7"):
        run.render(plan_72(16), models[0], settings(models, model="none"), str(out), device="cpu")


def test_a_render_whose_claim_was_taken_over_stops_before_its_next_batch(models, tmp_path):
    out = str(tmp_path / "out")

    def take_over_after_the_first_batch(done, total):
        if done:
            for path in (tmp_path / "out").glob(".latentwalk-render-*.json"):
                path.unlink()

    with pytest.raises(LatentWalkError, match="taken over by another render"):
        # PNGs written in the loop (png_threads=0), so that progress counts the first batch as soon as it is
        # computed: the takeover then lands exactly between the first and the second batch.
        run.render(plan_72(16), models[0], settings(models, model="none"), out, batch_size=4, device="cpu",
                      progress=take_over_after_the_first_batch, png_threads=0)
    assert trust.frame_status(plan_72(16), models[0], settings(models, model="none"), out).current == (1, 2, 3, 4)


def test_with_the_png_pool_a_taken_over_render_records_nothing_after_the_takeover(models, tmp_path, monkeypatch):
    """The writer pool checks the claim too: batches already queued when the claim goes are neither
    written nor recorded, and what the manifest lists is complete and current. (One writer thread, so the
    takeover lands at a known point: as frame 5, the second batch's first, starts to be written.)"""
    out, real = str(tmp_path / "out"), png_writer.write_png

    def take_over_at_frame_5(path, image, temp_prefix=None):
        if path.endswith("frame_000005.png"):
            for claim_file in (tmp_path / "out").glob(".latentwalk-render-*.json"):
                claim_file.unlink()
        return real(path, image, temp_prefix)

    monkeypatch.setattr(png_writer, "write_png", take_over_at_frame_5)
    with pytest.raises(LatentWalkError, match="taken over by another render"):
        run.render(plan_72(32), models[0], settings(models, model="none"), out, batch_size=4, device="cpu",
                      png_threads=1)
    status = trust.frame_status(plan_72(32), models[0], settings(models, model="none"), out)
    assert status.current == (1, 2, 3, 4)  # the batch recorded before the takeover, nothing after
    assert sorted(trust.load_manifest(out)) == [1, 2, 3, 4]
    assert not any(os.path.exists(png_writer.frame_path(out, n)) for n in range(9, 33))  # queued: never written


def test_the_worker_refuses_an_overlapping_render_and_serves_the_next(models, tmp_path):
    from blender_latentwalk.engine.worker import messages

    plan_72(8).save(tmp_path / "plan.npz")
    out = tmp_path / "busy"
    out.mkdir()
    worker = subprocess.Popen([sys.executable, "-m", "blender_latentwalk.engine", "worker"], cwd=ROOT, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def send(request):
        worker.stdin.write(messages.encode(request) + "\n")
        worker.stdin.flush()

    assert isinstance(messages.decode_event(worker.stdout.readline()), messages.Ready)
    request = dict(plan_path=str(tmp_path / "plan.npz"), generator=models[0], out_folder=str(out), device="cpu",
                   img2img={"model": "none", "width": 32, "height": 32}, batch_size=4)
    other = claims.claim(str(out), [8])  # e.g. a headless render of the last frame
    try:
        send(messages.RenderRequest(id=1, **request))
        refused = messages.decode_event(worker.stdout.readline())
    finally:
        other.release()
    assert isinstance(refused, messages.RequestFailed) and refused.id == 1
    assert f"frames 8 of '{out}' are being rendered by process {os.getpid()}" in refused.message
    send(messages.RenderRequest(id=2, **request))
    event = messages.decode_event(worker.stdout.readline())
    while isinstance(event, messages.Progress):
        event = messages.decode_event(worker.stdout.readline())
    send(messages.QuitRequest())
    assert worker.wait(60) == 0
    assert isinstance(event, messages.RenderDone) and event.rendered == list(range(1, 9)), event
