"""The render worker process, spoken to over its JSON-lines protocol (engine/worker/messages.py) as
the add-on does."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from blender_latentwalk.engine.errors import LatentWalkError
from blender_latentwalk.engine.generators import biggan
from blender_latentwalk.engine.walk.plan import DEFAULT_SETTINGS, RenderPlan
from blender_latentwalk.engine.worker import messages

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def start_worker(tmp_path, poison, *flags):
    """A worker (``worker FLAGS``) whose Python fails loudly when it imports any module in ``poison``."""
    fake = tmp_path / "poisoned"
    fake.mkdir(exist_ok=True)
    for module in poison:
        (fake / f"{module}.py").write_text(f"raise ImportError('{module} is poisoned here', name='{module}')\n")
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join([str(fake), ROOT]))
    return subprocess.Popen([sys.executable, "-m", "blender_latentwalk.engine", "worker", *flags],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=environment, cwd=tmp_path)


def send(worker, request):
    worker.stdin.write(messages.encode(request) + "\n")
    worker.stdin.flush()


def send_line(worker, line):
    worker.stdin.write(line + "\n")
    worker.stdin.flush()


def next_event(worker):
    line = worker.stdout.readline()
    assert line, worker.stderr.read()[-3000:]
    return messages.decode_event(line)


def until_end(worker):
    """The events of one request, up to its done or error."""
    events = [next_event(worker)]
    while not isinstance(events[-1], (messages.RenderDone, messages.AnalyzeDone, messages.RequestFailed)):
        events.append(next_event(worker))
    return events


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
    assert isinstance(next_event(worker), messages.Ready)
    request = dict(plan_path=plan_path, generator=model, out_folder=str(tmp_path / "frames"), device="cpu",
                   img2img={"model": "none", "width": 32, "height": 32}, plan_index_ranges=None, batch_size=2)
    send(worker, messages.RenderRequest(id=1, **request))
    events = until_end(worker)
    assert isinstance(events[-1], messages.RenderDone), events[-1]
    progress = [(e.done, e.total) for e in events if isinstance(e, messages.Progress)]
    assert progress[0] == (0, 24) and progress[-1] == (24, 24)
    assert events[-1].rendered == list(range(1, 25))

    # A second request reuses the loaded model; cancel it as soon as it starts.
    (tmp_path / "frames" / "manifest.json").unlink()
    send(worker, messages.RenderRequest(id=2, **request))
    assert next_event(worker) == messages.Progress(id=2, done=0, total=24, unit="frames")
    send(worker, messages.CancelRequest(id=2))
    event = until_end(worker)[-1]
    assert isinstance(event, messages.RenderDone) and event.stopped and len(event.rendered) < 24

    send(worker, messages.RenderRequest(id=3, **dict(request, plan_path=str(tmp_path / "missing.npz"))))
    error = next_event(worker)
    assert isinstance(error, messages.RequestFailed) and error.id == 3 and "missing.npz" in error.message
    send(worker, messages.QuitRequest())
    assert worker.wait(30) == 0
    assert "bpy is poisoned" not in worker.stderr.read()


def test_a_python_without_torch_is_told_at_once(tmp_path):
    worker = start_worker(tmp_path, poison=["torch"])
    event = next_event(worker)
    assert isinstance(event, messages.Fatal) and "cannot import torch" in event.message
    assert "Engine Python" in event.message
    assert worker.wait(30) == 3


def test_a_chunk_with_gaps_renders_those_frames_and_other_protocol_versions_are_refused(tmp_path, plan_path):
    model = biggan.make_tiny_model(str(tmp_path / "biggan"))
    worker = start_worker(tmp_path, poison=["bpy"])
    assert isinstance(next_event(worker), messages.Ready)
    request = dict(plan_path=plan_path, generator=model, out_folder=str(tmp_path / "frames"), device="cpu",
                   img2img={"model": "none", "width": 32, "height": 32}, batch_size=4)
    send(worker, messages.RenderRequest(id=1, plan_index_ranges=[[0, 2], [5, 5], [20, 23]], **request))
    chunk = until_end(worker)[-1]
    assert isinstance(chunk, messages.RenderDone) and chunk.rendered == [1, 2, 3, 6, 21, 22, 23, 24], chunk

    # An add-on of another version: its requests are refused with both versions named, and the worker goes on.
    for version, fields in ((2, dict(command="render", id=2, plan=plan_path, frames=[[2, 6]])),
                            (messages.PROTOCOL_VERSION + 1, dict(type="render", id=3, plan_path=plan_path))):
        send_line(worker, json.dumps(dict(fields, version=version)))
        refused = next_event(worker)
        assert isinstance(refused, messages.RequestFailed) and refused.id == fields["id"], refused
        both = f"protocol version {version}, and this side speaks version {messages.PROTOCOL_VERSION}"
        assert both in refused.message
        assert "the add-on and its Engine Python run different versions" in refused.message
    send(worker, messages.RenderRequest(id=4, plan_index_ranges=[[2, 6]], **request))
    later = until_end(worker)[-1]
    assert isinstance(later, messages.RenderDone) and later.rendered == [4, 5, 7] and later.reused == [3, 6], later
    send(worker, messages.QuitRequest())
    assert worker.wait(60) == 0
    assert sorted(n for n in os.listdir(tmp_path / "frames") if not n.startswith(".") and n != "manifest.journal") == sorted(
        [f"frame_{n:06d}.png" for n in (1, 2, 3, 4, 5, 6, 7, 21, 22, 23, 24)] + ["manifest.json"])


def test_messages_round_trip_and_a_line_of_another_version_or_type_is_refused_naming_both_versions():
    done = messages.RenderDone(id=7, rendered=[1, 2], reused=[3], stopped=False, reduced_batch={"2": 1})
    line = messages.encode(done)
    assert json.loads(line)["type"] == "render_done" and json.loads(line)["version"] == messages.PROTOCOL_VERSION
    assert messages.decode_event(line) == done
    request = messages.DownloadRequest(id=3, model="tiny/sd", role="pipeline")
    assert messages.decode_request(messages.encode(request)) == request
    with pytest.raises(LatentWalkError, match="a worker event of protocol no version .* this side speaks version "
                       f"{messages.PROTOCOL_VERSION}: the add-on and its Engine Python run different versions"):
        messages.decode_event(json.dumps({"event": "ready", "pid": 1}))  # a worker of protocol 2
    with pytest.raises(LatentWalkError, match=f"unknown worker request type 'paint' \\(protocol version "
                       f"{messages.PROTOCOL_VERSION}; this side speaks version {messages.PROTOCOL_VERSION}"):
        messages.decode_request(json.dumps({"type": "paint", "version": messages.PROTOCOL_VERSION}))
    with pytest.raises(LatentWalkError, match="a worker event 'progress' whose fields do not match"):
        messages.decode_event(json.dumps({"type": "progress", "version": messages.PROTOCOL_VERSION, "id": 1}))
    assert messages.request_id_of(messages.Fatal(message="no torch")) is None


# The analysis worker (``worker --analysis``): Bake Curves in the UI.

def analysis_request(song, **changes):
    """The add-on's analysis request for ``song`` at 30 fps with the default bands (as build_request makes it)."""
    from blender_latentwalk.engine import cli

    return dict(cli.request_from_args(cli._build_parser().parse_args(["analyze", song, "--fps", "30", "--out", "x"])),
                **changes)


def assert_same_features(got, expected):
    for name in ("bands", "onset", "rms", "chroma", "beats", "band_low_hz", "band_high_hz"):
        a, b = getattr(got, name), getattr(expected, name)
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), name
    assert got.band_names == expected.band_names and got.meta == expected.meta


@pytest.fixture(scope="module")
def long_song(tmp_path_factory):
    """Five minutes of kicks, hats and a bass note: 15 blocks of the song to measure, so a cancel lands midway."""
    import synth

    sample_rate, duration_s = 22050, 300.0
    beats_s = np.arange(0.25, duration_s - 0.5, 0.5)
    signal = (synth.kicks(beats_s, sample_rate, duration_s) + synth.hats(beats_s + 0.25, sample_rate, duration_s)
              + synth.tone(55.0, sample_rate, duration_s, 0.2))
    return synth.write(tmp_path_factory.mktemp("long") / "long.wav", signal, sample_rate)


def test_an_analysis_worker_without_torch_reports_its_steps_and_writes_the_pipelines_features(tmp_path, long_song):
    from blender_latentwalk.engine.analysis import pipeline
    from blender_latentwalk.engine.analysis.features import Features

    worker = start_worker(tmp_path, ["bpy", "torch"], "--analysis")  # torch is not needed for a bake
    assert isinstance(next_event(worker), messages.Ready)
    out = tmp_path / "out" / "features.npz"
    send(worker, messages.AnalyzeRequest(id=1, request=analysis_request(long_song), features_path=str(out)))
    events = until_end(worker)
    assert events[-1] == messages.AnalyzeDone(id=1, stopped=False, features_path=str(out)), events[-1]
    steps = [e for e in events[:-1] if isinstance(e, messages.AnalyzeProgress)]
    assert len(steps) == len(events) - 1 and {e.id for e in steps} == {1}
    assert [(e.step, e.stage) for e in steps if e.step_fraction == 0.0] == [
        (1, pipeline.STEP_PREPARING), (2, pipeline.STEP_MEASURING), (3, pipeline.STEP_FRAMES),
        (4, pipeline.STEP_SHAPING), (5, pipeline.STEP_BEATS), (6, "writing the features")]
    assert {e.n_steps for e in steps} == {6}
    measuring = [e.step_fraction for e in steps if e.stage == pipeline.STEP_MEASURING]
    assert measuring == sorted(measuring) and 0.0 < max(measuring) <= 1.0
    # The worker's file is the pipeline's analysis, to the byte, as the in-process bake gets it.
    assert_same_features(Features.load_npz(str(out)), pipeline.analyze(long_song, 30))
    assert sorted(os.listdir(out.parent)) == ["features.npz"]  # written atomically: no temporary file left

    # It serves analyses only, and goes on after refusing anything else.
    send(worker, messages.DownloadRequest(id=2, model="biggan-deep-128"))
    refused = next_event(worker)
    assert isinstance(refused, messages.RequestFailed) and refused.id == 2
    assert "analysis requests only" in refused.message
    send(worker, messages.QuitRequest())
    assert worker.wait(30) == 0
    assert "bpy is poisoned" not in worker.stderr.read()


def test_a_cancelled_analysis_writes_nothing_and_the_worker_analyses_again(tmp_path, long_song):
    from blender_latentwalk.engine.analysis import pipeline

    worker = start_worker(tmp_path, ["bpy", "torch"], "--analysis")
    assert isinstance(next_event(worker), messages.Ready)
    out = tmp_path / "features.npz"
    send(worker, messages.AnalyzeRequest(id=1, request=analysis_request(long_song), features_path=str(out)))
    seen = [next_event(worker)]
    while seen[-1].stage != pipeline.STEP_MEASURING:  # cancel midway through the song
        seen.append(next_event(worker))
    send(worker, messages.CancelRequest(id=1))
    seen += until_end(worker)
    assert seen[-1] == messages.AnalyzeDone(id=1, stopped=True, features_path=None), seen[-1]
    assert max(e.step for e in seen[:-1]) == 2 and max(e.step_fraction for e in seen[:-1]) < 1.0, seen
    assert os.listdir(tmp_path / "poisoned") and not out.exists()
    assert [name for name in os.listdir(tmp_path) if name != "poisoned"] == []  # no temporary file either

    send(worker, messages.AnalyzeRequest(id=2, request=analysis_request(long_song, fps=24), features_path=str(out)))
    assert until_end(worker)[-1] == messages.AnalyzeDone(id=2, stopped=False, features_path=str(out))
    send(worker, messages.QuitRequest())
    assert worker.wait(30) == 0


def test_an_analysis_worker_without_the_analysis_requirements_says_so_and_goes_on(tmp_path, long_song):
    worker = start_worker(tmp_path, ["torch", "soxr"], "--analysis")
    assert isinstance(next_event(worker), messages.Ready)
    send(worker, messages.AnalyzeRequest(id=1, request=analysis_request(long_song),
                                         features_path=str(tmp_path / "features.npz")))
    failed = next_event(worker)
    assert isinstance(failed, messages.RequestFailed) and failed.id == 1, failed
    assert failed.message.startswith("the analysis needs librosa, which the worker's Python")
    assert "soxr is poisoned here" in failed.message and "Engine Python" in failed.message
    send(worker, messages.AnalyzeRequest(id=2, request=analysis_request(str(tmp_path / "missing.wav")),
                                         features_path=str(tmp_path / "features.npz")))
    assert isinstance(next_event(worker), messages.RequestFailed)
    send(worker, messages.QuitRequest())
    assert worker.wait(30) == 0
    assert not (tmp_path / "features.npz").exists()


def test_progress_changes_no_number_of_the_analysis_with_stems_and_parts_of_the_mix(tmp_path):
    import synth
    from blender_latentwalk.engine.analysis import pipeline
    from blender_latentwalk.engine.analysis import request as analysis_request_module

    sample_rate, duration_s = 22050, 30.0
    beats_s = np.arange(0.25, duration_s - 0.5, 0.5)
    kicks = synth.write(tmp_path / "kicks.wav", synth.kicks(beats_s, sample_rate, duration_s), sample_rate)
    bass = synth.tone(55.0, sample_rate, duration_s, 0.2)
    mix = synth.write(tmp_path / "mix.wav", synth.kicks(beats_s, sample_rate, duration_s) + bass, sample_rate)
    request = analysis_request(mix, onset_source=kicks, chroma_source="harmonic")
    request["bands"][0]["source"], request["bands"][1]["source"] = kicks, "percussive"
    steps = []
    with_progress = analysis_request_module.run(request, progress=steps.append)
    assert_same_features(with_progress, analysis_request_module.run(request))
    starts = list(dict.fromkeys((s.number, s.name) for s in steps))  # each step once, in order
    assert starts == list(enumerate([pipeline.STEP_PREPARING, pipeline.STEP_MEASURING, pipeline.STEP_STEMS,
                                     pipeline.STEP_FRAMES, pipeline.STEP_SHAPING, pipeline.STEP_BEATS], 1))
    assert {s.n_steps for s in steps} == {6}


def test_analysis_messages_round_trip():
    request = messages.AnalyzeRequest(id=4, request={"audio": "/songs/a.wav", "fps": 30, "bands": []},
                                      features_path="/tmp/f.npz")
    assert messages.decode_request(messages.encode(request)) == request
    for event in (messages.AnalyzeProgress(id=4, step=2, n_steps=6, stage="measuring bands and onsets",
                                           step_fraction=0.25),
                  messages.AnalyzeDone(id=4, stopped=True), messages.AnalyzeDone(id=4, stopped=False,
                                                                                  features_path="/tmp/f.npz")):
        assert messages.decode_event(messages.encode(event)) == event
