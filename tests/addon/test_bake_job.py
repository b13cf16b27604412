"""Bake Curves as a job (the UI's path, bake_job.py) on the bpy wheel (5.0.1 in .venv, 4.2 LTS in
.venv-bpy42): the analysis in a worker of its own, its steps and progress, the curves written when it
is done, and nothing changed by a cancel or a failure. The bpy module runs in background mode, where
the operator bakes blocking, so the job is driven here as the modal operator drives it; the click
itself, Esc and the status bar are tests/app/test_bake_app.py's, in Blender's UI."""

import os
import sys
import time

import bpy
import numpy as np
import pytest

import synth
from blender_latentwalk.blender import bake_job, compat, curves, jobs, operators
from blender_latentwalk.engine.analysis import pipeline
from blender_latentwalk.engine.errors import LatentWalkError


@pytest.fixture(scope="module")
def long_song(tmp_path_factory):
    """Five minutes of kicks over a bass note: the analysis measures it in 15 blocks, so a cancel lands midway."""
    sample_rate, duration_s = 22050, 300.0
    beats_s = np.arange(0.25, duration_s - 0.5, 0.5)
    signal = synth.kicks(beats_s, sample_rate, duration_s) + synth.tone(55.0, sample_rate, duration_s, 0.2)
    return synth.write(tmp_path_factory.mktemp("long") / "long.wav", signal, sample_rate)


@pytest.fixture
def running():
    """Start bake jobs as the modal operator does (`jobs.begin`); whatever a test leaves running is ended."""
    started = []

    def start(scene, python=sys.executable):  # the bpy wheel's Python has librosa, as an Engine Python does
        job = bake_job.BakeJob(scene, operators.build_request(scene), python)
        jobs.begin(job)
        started.append(job)
        return job

    yield start
    for job in started:
        job.abandon()
        jobs.end(job)


def poll_until(job, done=lambda job: False, timeout_s=120):
    """Poll ``job`` as the operator's timer does until it is over (or ``done(job)``); returns True when over."""
    deadline = time.monotonic() + timeout_s
    while not job.poll():
        if done(job):
            return False
        assert time.monotonic() < deadline, job.status_line()
        time.sleep(0.01)
    return True


def snapshot(scene):
    """What a bake may change: every key of the scene's F-curves, the frame range, markers, bands and summary."""
    keys = {(fc.data_path, fc.array_index): [tuple(k.co) for k in fc.keyframe_points]
            for fc in compat.fcurves_of(scene) or []}
    return (keys, scene.frame_start, scene.frame_end, sorted((m.name, m.frame) for m in scene.timeline_markers),
            [b.title for b in scene.latentwalk.bands], scene.latentwalk.last_bake_summary)


def test_a_bake_job_ends_with_the_curves_the_blocking_bake_writes(scene, song, running):
    scene.latentwalk.audio_path = song
    job = running(scene)
    assert job.status_line() == "Latent Walk bake: starting the analysis..." and job.progress_fraction() == 0.0
    assert poll_until(job)
    jobs.end(job)
    assert job.status_line() == "Latent Walk bake: writing the features (6/6)" and job.progress_fraction() == 1.0
    baked_scene, result = operators.finish_bake(job)
    assert baked_scene == scene and len(result.written) == 7 + 2 + 4 + 12
    assert not os.path.exists(job.folder) and job.worker.process.wait(30) is not None  # nothing left behind
    by_job = snapshot(scene)
    assert "120 frames" in by_job[-1] and by_job[2] == 120

    assert bpy.ops.latentwalk.bake(overwrite_edited=True) == {"FINISHED"}  # scripts: blocking, in this process
    assert snapshot(scene) == by_job
    onset = compat.find_fcurve(scene, "latentwalk.onset", 0)
    assert [k.co.y for k in onset.keyframe_points] == pytest.approx(pipeline.analyze(song, 30).onset, abs=1e-6)


def test_a_bake_cancelled_midway_changes_nothing_and_other_jobs_wait_for_it(scene, song, long_song, running):
    settings = scene.latentwalk
    settings.audio_path = song
    assert bpy.ops.latentwalk.bake() == {"FINISHED"}
    compat.find_fcurve(scene, "latentwalk.onset", 0).keyframe_points[3].co.y = 0.5  # an edit by hand
    before = snapshot(scene)

    settings.audio_path = long_song
    job = running(scene)
    assert not poll_until(job, done=lambda job: job.step is not None and job.step.stage == pipeline.STEP_MEASURING)
    assert job.status_line() == "Latent Walk bake: measuring bands and onsets (2/6)"
    assert 0.1 < job.progress_fraction() < 0.4
    # Meanwhile the buttons of the other jobs are off, and a job started anyway is refused in words.
    assert not bpy.ops.latentwalk.bake.poll() and not bpy.ops.latentwalk.render.poll()
    assert not bpy.ops.latentwalk.model_download.poll()
    assert jobs.refusal() == "a bake is running: let it finish or cancel it (Esc) first."
    another = bake_job.BakeJob(scene, operators.build_request(scene), "/bin/true")
    with pytest.raises(LatentWalkError, match="^a bake is running: let it finish or cancel it"):
        jobs.begin(another)
    another.abandon()

    assert bpy.ops.latentwalk.bake_cancel() == {"FINISHED"}  # the panel's Cancel Bake does what Esc does
    assert job.status_line().endswith(" (cancelling)") and not bpy.ops.latentwalk.bake_cancel.poll()
    assert poll_until(job)
    jobs.end(job)
    assert job.stopped and job.features_path is None
    assert operators.finish_bake(job) is None
    settings.audio_path = song
    assert snapshot(scene) == before
    assert not os.path.exists(job.folder)
    assert bpy.ops.latentwalk.bake.poll()  # and the next bake may start


@pytest.mark.parametrize("change", ["band gain", "song"])
def test_settings_changed_while_it_baked_are_never_overwritten_with_the_old_analysis(scene, song, tmp_path, running,
                                                                                     change):
    scene.latentwalk.audio_path = song
    job = running(scene)
    if change == "song":
        scene.latentwalk.audio_path = str(tmp_path / "another.wav")
    else:
        scene.latentwalk.ensure_default_bands()
        scene.latentwalk.bands[1].gain = 2.0
    before = snapshot(scene)
    assert poll_until(job)
    with pytest.raises(LatentWalkError, match="changed while the bake ran: nothing was changed; press Bake Curves"):
        operators.finish_bake(job)
    assert snapshot(scene) == before


def test_a_worker_python_without_the_analysis_requirements_is_explained_and_changes_nothing(
        scene, song, tmp_path, monkeypatch, running):
    poisoned = tmp_path / "poisoned"
    poisoned.mkdir()
    (poisoned / "soxr.py").write_text("raise ImportError('soxr is not installed here', name='soxr')\n")
    monkeypatch.setenv("PYTHONPATH", str(poisoned))  # the worker's environment: as a Python without soxr
    scene.latentwalk.audio_path = song
    before = snapshot(scene)
    job = running(scene)
    assert poll_until(job)
    with pytest.raises(LatentWalkError, match="^the analysis needs librosa, which the worker's Python .* cannot "
                                              "import .*soxr is not installed here"):
        operators.finish_bake(job)
    assert snapshot(scene) == before and not os.path.exists(job.folder)


def test_a_worker_that_dies_is_explained_with_its_log(scene, song, running):
    scene.latentwalk.audio_path = song
    job = running(scene, python="/bin/true")  # exits at once, says nothing
    assert poll_until(job)
    with pytest.raises(LatentWalkError, match=r"^the analysis worker stopped \(exit status 0\)\. Its log: "):
        operators.finish_bake(job)


def test_loading_a_file_abandons_the_bake(scene, long_song, running):
    scene.latentwalk.audio_path = long_song
    job = running(scene)
    bpy.ops.wm.read_factory_settings(use_empty=True)  # as File > Open does: the scene goes
    assert jobs.running() is None and not os.path.exists(job.folder)
    job.worker.process.wait(30)
    assert not job.worker.alive()


def test_a_worker_in_blenders_own_python_sees_the_folders_blender_put_on_sys_path(tmp_path, monkeypatch):
    """A library installed where Blender looks (scripts/modules, an add-on's folder) imports in the bake's
    worker when it runs in Blender's own Python, as it did in Blender's process."""
    import sys

    from blender_latentwalk.blender import engine_client

    extra = tmp_path / "modules"
    extra.mkdir()
    monkeypatch.setattr(sys, "path", sys.path + [str(extra)])
    own = engine_client.engine_environment(sys.executable)["PYTHONPATH"].split(os.pathsep)
    assert str(extra) in own and own[0] == engine_client._PACKAGE_PARENT
    other = engine_client.engine_environment("/nonexistent/python")["PYTHONPATH"].split(os.pathsep)
    assert str(extra) not in other  # another Python keeps its own packages


def test_esc_after_the_last_step_still_writes_nothing(scene, song, running):
    """The worker may have answered already when Esc arrives: a cancel is a cancel."""
    scene.latentwalk.audio_path = song
    job = running(scene)
    poll_until(job, done=lambda job: job.features_path is not None)
    before = snapshot(scene)
    job.cancel()
    poll_until(job)
    assert operators.finish_bake(job) is None and snapshot(scene) == before


def test_overwrite_replaces_the_curves_the_dialog_listed_not_edits_made_while_it_baked(scene, song, running):
    scene.latentwalk.audio_path = song
    assert bpy.ops.latentwalk.bake() == {"FINISHED"}
    mids = compat.find_fcurve(scene, "latentwalk.bands[3].value")
    mids.modifiers.new("NOISE")  # edited before the click: listed in the dialog, Overwrite ticked
    listed = {t.key for t in curves.edited_targets(scene, curves.targets_for(scene.latentwalk))}
    job = running(scene)
    compat.find_fcurve(scene, "latentwalk.bands[1].value").modifiers.new("CYCLES")  # edited while it bakes
    assert poll_until(job)
    _scene, result = operators.finish_bake(job, overwrite_edited=True, overwrite_keys=listed)
    assert [m.type for m in compat.find_fcurve(scene, "latentwalk.bands[3].value").modifiers] == []
    assert [m.type for m in compat.find_fcurve(scene, "latentwalk.bands[1].value").modifiers] == ["CYCLES"]
    assert [t.key for t in result.kept] == ["latentwalk.bands[1].value[0]"]
