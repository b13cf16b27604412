"""The render worker process, spoken to over its JSON-lines protocol as the add-on does."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from blender_latentwalk.engine.generators import biggan
from blender_latentwalk.engine.walk.plan import DEFAULT_SETTINGS, RenderPlan

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def start_worker(tmp_path, poison):
    """A worker whose Python fails loudly when it imports any module in ``poison``."""
    fake = tmp_path / "poisoned"
    fake.mkdir(exist_ok=True)
    for module in poison:
        (fake / f"{module}.py").write_text(f"raise ImportError('{module} is poisoned here', name='{module}')\n")
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join([str(fake), ROOT]))
    return subprocess.Popen([sys.executable, "-m", "blender_latentwalk.engine", "worker"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment, cwd=tmp_path)


def send(worker, **request):
    worker.stdin.write(json.dumps(request) + "\n")
    worker.stdin.flush()


def next_event(worker):
    line = worker.stdout.readline()
    assert line, worker.stderr.read()[-3000:]
    return json.loads(line)


@pytest.fixture
def plan_path(tmp_path):
    n = 24
    rng = np.random.default_rng(0)
    plan = RenderPlan(frame_start=1, fps=24, fps_base=1.0, seed=0, band_names=["a"], bands=rng.random((1, n)),
                      band_weights=np.ones((1, n)), onset=rng.random(n), chroma=rng.random((n, 12)),
                      truncation=np.full(n, 0.5), pulse=np.ones(n), speed=np.ones(n), jitter=np.zeros(n),
                      settings=dict(DEFAULT_SETTINGS))
    plan.save(tmp_path / "plan.npz")
    return str(tmp_path / "plan.npz")


def test_worker_renders_reports_progress_cancels_and_never_imports_bpy(tmp_path, plan_path):
    model = biggan.make_tiny_model(str(tmp_path / "biggan"))
    worker = start_worker(tmp_path, poison=["bpy"])
    assert next_event(worker)["event"] == "ready"
    request = dict(command="render", plan=plan_path, biggan=model, out=str(tmp_path / "frames"), device="cpu",
                   img2img={"model": "none", "width": 32, "height": 32}, frames=None, batch_size=2)
    send(worker, id=1, **request)
    events = []
    while not events or events[-1]["event"] not in ("done", "error"):
        events.append(next_event(worker))
    assert events[-1]["event"] == "done", events[-1]
    progress = [(e["done"], e["total"]) for e in events if e["event"] == "progress"]
    assert progress[0] == (0, 24) and progress[-1] == (24, 24)
    assert events[-1]["rendered"] == list(range(1, 25))

    # A second request reuses the loaded model; cancel it as soon as it starts.
    (tmp_path / "frames" / "manifest.json").unlink()
    send(worker, id=2, **request)
    assert next_event(worker) == {"event": "progress", "id": 2, "done": 0, "total": 24}
    send(worker, command="cancel", id=2)
    event = next_event(worker)
    while event["event"] == "progress":
        event = next_event(worker)
    assert event["event"] == "done" and event["stopped"] and len(event["rendered"]) < 24

    send(worker, id=3, **dict(request, plan=str(tmp_path / "missing.npz")))
    error = next_event(worker)
    assert error["event"] == "error" and "missing.npz" in error["message"]
    send(worker, command="quit")
    assert worker.wait(30) == 0
    assert "bpy is poisoned" not in worker.stderr.read()


def test_a_python_without_torch_is_told_at_once(tmp_path):
    worker = start_worker(tmp_path, poison=["torch"])
    event = next_event(worker)
    assert event["event"] == "fatal" and "cannot import torch" in event["message"]
    assert "Engine Python" in event["message"]
    assert worker.wait(30) == 3


def render_events(worker, **request):
    send(worker, command="render", **request)
    events = [next_event(worker)]
    while events[-1]["event"] not in ("done", "error"):
        events.append(next_event(worker))
    return events[-1]


def test_a_version_2_chunk_with_gaps_renders_those_frames_and_version_1_requests_still_work(tmp_path, plan_path):
    model = biggan.make_tiny_model(str(tmp_path / "biggan"))
    worker = start_worker(tmp_path, poison=["bpy"])
    assert next_event(worker)["event"] == "ready"
    request = dict(plan=plan_path, biggan=model, out=str(tmp_path / "frames"), device="cpu",
                   img2img={"model": "none", "width": 32, "height": 32}, batch_size=4)
    chunk = render_events(worker, id=1, version=2, frames=[[0, 2], [5, 5], [20, 23]], **request)
    assert chunk["event"] == "done" and chunk["rendered"] == [1, 2, 3, 6, 21, 22, 23, 24], chunk
    old = render_events(worker, id=2, frames=[2, 6], **request)  # version 1: one [first, last], no "version"
    assert old["event"] == "done" and old["rendered"] == [4, 5, 7] and old["reused"] == [3, 6], old
    newer = render_events(worker, id=3, version=3, frames=[[0, 1]], **request)
    assert newer["event"] == "error" and "request version 3 is newer than this worker's (2)" in newer["message"]
    send(worker, command="quit")
    assert worker.wait(60) == 0
    assert sorted(n for n in os.listdir(tmp_path / "frames") if not n.startswith(".")) == sorted(
        [f"frame_{n:06d}.png" for n in (1, 2, 3, 4, 5, 6, 7, 21, 22, 23, 24)] + ["manifest.json"])
