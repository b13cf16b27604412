"""The Flamenco job type, end to end without a Flamenco Manager: Node runs the job file's
compileJob() through Flamenco's job-compiler API as recorded calls (flamenco_harness.js,
job_type.test.js); then the recorded commands run here, two chunks at a time, with Debian's
Blender 3.4.1 as the worker's `{blender}` and the add-on installed in its user scripts, and
every frame is compared with a single-process render, byte for byte, before the last task
encodes the video with the song."""

import json
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import synth

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.dirname(os.path.abspath(__file__))
JOB_FILE = os.path.join(ROOT, "blender_latentwalk", "farm", "latentwalk_flamenco.js")
NODE = shutil.which("node")
BLENDER = shutil.which("blender")
BLENDER_ARGS = ["-b", "-y"]  # the Flamenco Manager's default {blenderArgs}
needs_node = pytest.mark.skipif(NODE is None, reason="node (Node.js) is not installed: .ci/run installs nodejs")


@needs_node
def test_node_compiles_the_job_type_into_chunks_that_cover_every_frame_once():
    result = subprocess.run([NODE, "--test", HERE], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    passed = re.search(r"\bpass (\d+)", result.stdout)  # TAP ("# pass 13") and spec ("pass 13") reporters
    assert passed and int(passed.group(1)) >= 10, result.stdout[-3000:]


def compile_job(tmp_path, settings):
    settings_path = tmp_path / f"settings-{len(list(tmp_path.glob('settings-*')))}.json"
    settings_path.write_text(json.dumps(settings))
    result = subprocess.run([NODE, os.path.join(HERE, "flamenco_harness.js"), JOB_FILE, str(settings_path)],
                            capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def worker_command(task):
    """A task's blender-render command as a Flamenco worker runs it: exe, exeArgs, argsBefore, .blend, args."""
    (command,) = task["commands"]
    assert command["name"] == "blender-render"
    parameters = command["parameters"]
    assert parameters["exe"] == "{blender}" and parameters["exeArgs"] == "{blenderArgs}"
    return [BLENDER, *BLENDER_ARGS, *parameters["argsBefore"], parameters["blendfile"], *parameters["args"]]


def pngs(folder):
    return {name: (folder / name).read_bytes() for name in sorted(os.listdir(folder)) if name.endswith(".png")}


@pytest.fixture(scope="module")
def worker_setup(tmp_path_factory):
    """A worker's Blender with the add-on installed (not enabled) in its user scripts, the Engine
    Python that renders, tiny models, a song, and a single-process render that also saved the .blend."""
    if BLENDER is None:
        pytest.skip("no blender executable on PATH (.ci/run installs Debian's Blender 3.4.1)")
    import engine_python

    python = engine_python.find()
    if python is None:
        pytest.skip("no Python with torch, diffusers and av: run scripts/setup.sh to make .venv")
    folder = tmp_path_factory.mktemp("farm")
    addons = folder / "user_scripts" / "addons"
    addons.mkdir(parents=True)
    os.symlink(os.path.join(ROOT, "blender_latentwalk"), addons / "blender_latentwalk")
    environment = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH",
                                                                                 "LATENTWALK_ENGINE_PYTHON")}
    environment["BLENDER_USER_SCRIPTS"] = str(folder / "user_scripts")
    biggan, sd = engine_python.make_tiny_models(python, folder / "models")
    signal = synth.clicks(np.arange(0.5, 3.0, 0.5), 44100, 3.0) + synth.tone(100, 44100, 3.0, 0.2)
    song = synth.write(folder / "song.wav", signal, 44100)
    blend = folder / "song.blend"
    single = [BLENDER, "-b", "--factory-startup", "--python-exit-code", "1", "-P",
              os.path.join(ROOT, "scripts", "render.py"), "--", "--audio", song, "--output", str(folder / "single"),
              "--biggan", biggan, "--sd", sd, "--size", "64x48", "--fps", "24", "--device", "cpu",
              "--batch-size", "4", "--engine-python", python, "--save", str(blend)]
    result = subprocess.run(single, capture_output=True, text=True, env=environment, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "72 frames rendered, 0 kept" in result.stdout
    settings = {"blendfile": str(blend), "output_folder": str(folder / "farm"), "video_path": str(folder / "video.mp4"),
                "biggan": biggan, "sd": sd, "batch_size": 4, "device": "cpu", "engine_python": python}
    return folder, environment, settings


@needs_node
def test_the_compiled_chunks_run_two_at_a_time_give_the_bytes_of_one_render_and_encode(worker_setup, tmp_path):
    av = pytest.importorskip("av")
    folder, environment, settings = worker_setup
    # Frames with a gap give chunks with gaps ("31-50,61-70") and two-frame chunks ("71,72"); a second job
    # renders the gap; the first job's last task then finds all of 1-72 current and encodes them.
    job = compile_job(tmp_path, dict(settings, frames="1-50,61-72", chunk_size=30))
    gap = compile_job(tmp_path, dict(settings, frames="51-60", chunk_size=4))
    chunks = [task for task in job["tasks"] + gap["tasks"] if task["name"].startswith("render-")]
    assert [task["name"] for task in chunks] == ["render-1-30", "render-31-50,61-70", "render-71,72",
                                                 "render-51-54", "render-55-58", "render-59,60"]
    encode = job["tasks"][-1]
    assert encode["name"] == "encode-video" and sorted(encode["dependencies"]) == sorted(
        task["name"] for task in job["tasks"][:-1])

    def run(task):
        return task["name"], subprocess.run(worker_command(task), capture_output=True, text=True, env=environment,
                                            timeout=900)

    with ThreadPoolExecutor(max_workers=2) as pool:  # two workers sharing the output folder
        for name, result in pool.map(run, chunks):
            assert result.returncode == 0, f"{name}: " + result.stdout[-2000:] + result.stderr[-2000:]
            assert "Saved: '" in result.stdout  # the line Flamenco's worker reports as the task's output
            assert "strip" not in result.stdout  # a chunk keeps its frames only
    farm = folder / "farm"
    assert pngs(farm) == pngs(folder / "single")  # every frame, byte for byte

    name, result = run(encode)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "72 of 72 frames current" in result.stdout and "Latent Walk:" not in result.stdout  # nothing rendered
    with av.open(settings["video_path"]) as container:
        streams = {s.type: float(s.duration * s.time_base) for s in container.streams}
    assert streams["video"] == pytest.approx(3.0, abs=1 / 24) and streams["audio"] == pytest.approx(3.0, abs=0.05)

    retry = run(chunks[1])[1]  # a retried task keeps the frames that are current
    assert retry.returncode == 0 and "0 frames rendered, 30 kept" in retry.stdout, retry.stdout[-2000:]


@needs_node
def test_the_last_task_refuses_a_missing_frame_naming_it(worker_setup, tmp_path):
    folder, environment, settings = worker_setup
    partial = tmp_path / "partial"
    shutil.copytree(folder / "single", partial)
    os.unlink(partial / "frame_000040.png")
    job = compile_job(tmp_path, dict(settings, frames="1-72", output_folder=str(partial),
                                     video_path=str(tmp_path / "video.mp4")))
    result = subprocess.run(worker_command(job["tasks"][-1]), capture_output=True, text=True, env=environment,
                            timeout=900)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: 71 of 72 frames current (1 missing)") and "frame 40 is missing" in last, last
    assert not (tmp_path / "video.mp4").exists()


def test_a_worker_without_the_add_on_is_told_in_one_line(tmp_path):
    if BLENDER is None:
        pytest.skip("no blender executable on PATH (.ci/run installs Debian's Blender 3.4.1)")
    if NODE is None:
        pytest.skip("node (Node.js) is not installed: .ci/run installs nodejs")
    job = compile_job(tmp_path, {"frames": "1-4", "blendfile": "x.blend", "output_folder": str(tmp_path),
                                 "video_path": str(tmp_path / "v.mp4")})
    command = worker_command(job["tasks"][0])
    command.remove("x.blend")  # no .blend needed to find that the add-on is missing
    environment = dict(os.environ, BLENDER_USER_SCRIPTS=str(tmp_path / "empty"))
    environment.pop("PYTHONPATH", None)
    result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300)
    assert result.returncode == 1
    assert "error: the Latent Walk add-on is not installed in this Blender on this worker" in result.stderr


def test_the_engine_only_recipe_plan_chunks_then_encode_gives_the_bytes_of_one_render(worker_setup, tmp_path):
    import shlex

    folder, environment, settings = worker_setup
    out = tmp_path / "frames"
    headless = [BLENDER, "-b", settings["blendfile"], "--python-exit-code", "1", "-P",
                os.path.join(ROOT, "scripts", "render.py"), "--", "--output", str(out), "--engine-python",
                settings["engine_python"]]
    planned = subprocess.run(headless + ["--no-render"], capture_output=True, text=True, env=environment, timeout=300)
    assert planned.returncode == 0, planned.stdout[-2000:] + planned.stderr[-2000:]
    assert f"wrote {out / 'plan.npz'} (72 frames; plan index 0 is frame 1)" in planned.stdout
    line = next(line for line in planned.stdout.splitlines() if line.startswith("render it in chunks"))
    pythonpath, _, command = line.partition("): ")
    assert command.endswith(" --plan-indices A-B")
    command = shlex.split(command[:-len(" --plan-indices A-B")])
    engine_environment = dict(environment, PYTHONPATH=pythonpath.rpartition("PYTHONPATH=")[2])

    def run(frames):
        return subprocess.run(command + ["--plan-indices", frames], capture_output=True, text=True, env=engine_environment,
                              timeout=900)

    with ThreadPoolExecutor(max_workers=2) as pool:  # plan indices: chunks with gaps, side by side
        results = list(pool.map(run, ["0-9,30-35", "10-29,36-40"]))
    results.append(run("41-71"))
    for result in results:
        assert result.returncode == 0, result.stderr[-2000:]
    assert pngs(out) == pngs(folder / "single")
    encoded = subprocess.run(headless + ["--no-render", "--encode", str(tmp_path / "video.mp4")],
                             capture_output=True, text=True, env=environment, timeout=300)
    assert encoded.returncode == 0, encoded.stdout[-2000:] + encoded.stderr[-2000:]
    assert "72 of 72 frames current" in encoded.stdout and os.path.getsize(tmp_path / "video.mp4") > 0


@needs_node
def test_the_job_settings_read_the_scene_as_the_add_on_resolves_it(tmp_path):
    """The settings' eval expressions, run as the submitting Blender runs them: the default Output
    folder's // and {blend_name}/{scene_name} resolve as Check Frames and Encode Video resolve them."""
    bpy = pytest.importorskip("bpy")
    import blender_latentwalk
    from blender_latentwalk.blender import compat, output

    settings_of = ("const vm = require('node:vm'), fs = require('node:fs'); const context = {}; vm.createContext(context);"
                   "vm.runInContext(fs.readFileSync(process.argv[1], 'utf8') + ';globalThis.jobType = JOB_TYPE;', context);"
                   "console.log(JSON.stringify(context.jobType.settings));")
    settings = json.loads(subprocess.run([NODE, "-e", settings_of, JOB_FILE], capture_output=True, text=True,
                                         check=True).stdout)
    evals = {setting["key"]: setting["eval"] for setting in settings if "eval" in setting}
    if not hasattr(bpy.types.Scene, "latentwalk"):
        blender_latentwalk.register()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "My Song.blend"))
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 1, 240
    values = {key: eval(expression, {"C": bpy.context}) for key, expression in evals.items()}  # noqa: S307

    frames_folder = str(tmp_path / "latentwalk_frames" / "My Song" / "Scene")
    assert values["output_folder"] == output.resolve_folder(scene.latentwalk.diffusion.output_folder, "Output",
                                                            scene) == frames_folder
    assert values["video_path"] == os.path.join(frames_folder, "My Song.mp4")
    assert values["frames"] == "1-240" and values["biggan"] == "biggan-deep-256"
    assert values["batch_size"] == 0  # the add-on's automatic batch size: the job passes none

    song = synth.write(tmp_path / "song.wav", synth.tone(220, 44100, 1.0, 0.2), 44100)
    scene.latentwalk.audio_path = song
    compat.new_sound_strip(scene, "song", song, 1, 11)  # the song starts at 11, the scene at 1
    values = {key: eval(expression, {"C": bpy.context}) for key, expression in evals.items()}  # noqa: S307
    assert values["frames"] == "11-240"


# Opens the farm's .blend in the submitting Blender, moves the song to frame 11 with the scene still at 1,
# bakes again as an artist does, saves, and prints the job settings' eval expressions as Flamenco's
# submit panel evaluates them.
SUBMIT_SCRIPT = """
import addon_utils, bpy, json, sys
addon_utils.enable("blender_latentwalk", default_set=True)
evals, out_blend, out_folder = json.loads(sys.argv[sys.argv.index("--") + 1:][0]), *sys.argv[sys.argv.index("--") + 2:]
scene = bpy.context.scene
strip = next(s for s in scene.sequence_editor.sequences_all if s.type == "SOUND")
strip.frame_start = 11
assert bpy.ops.latentwalk.bake() == {"FINISHED"}
scene.frame_start, scene.frame_end = 1, 82  # after the bake, which moves the range with the song
scene.latentwalk.diffusion.batch_size = 0  # the add-on's default: automatic
scene.latentwalk.diffusion.output_folder = out_folder
bpy.ops.wm.save_as_mainfile(filepath=out_blend)
print("SETTINGS " + json.dumps({key: eval(expression, {"C": bpy.context}) for key, expression in evals.items()}))
"""


@needs_node
def test_a_song_starting_at_11_in_a_scene_at_1_renders_through_the_default_chunks_and_encode(worker_setup, tmp_path):
    """The job's defaults, as the submit panel evaluates them in Blender 3.4.1: its range starts at the song's
    first frame (a chunk touching frames 1-10 would be refused), and its batch size is the add-on's."""
    av = pytest.importorskip("av")
    folder, environment, settings = worker_setup
    settings_of = ("const vm = require('node:vm'), fs = require('node:fs'); const context = {}; vm.createContext(context);"
                   "vm.runInContext(fs.readFileSync(process.argv[1], 'utf8') + ';globalThis.jobType = JOB_TYPE;', context);"
                   "console.log(JSON.stringify(context.jobType.settings));")
    job_settings = json.loads(subprocess.run([NODE, "-e", settings_of, JOB_FILE], capture_output=True, text=True,
                                             check=True).stdout)
    evals = {s["key"]: s["eval"] for s in job_settings if "eval" in s and s["key"] in ("frames", "batch_size",
                                                                                   "output_folder")}
    blend, farm = tmp_path / "song_at_11.blend", tmp_path / "farm"
    submit = subprocess.run([BLENDER, "-b", settings["blendfile"], "--python-exit-code", "1", "--python-expr",
                             SUBMIT_SCRIPT, "--", json.dumps(evals), str(blend), str(farm)],
                            capture_output=True, text=True, timeout=600,
                            env=dict(environment, LATENTWALK_ENGINE_PYTHON=settings["engine_python"]))
    assert submit.returncode == 0, submit.stdout[-3000:] + submit.stderr[-3000:]
    evaluated = json.loads(next(line for line in submit.stdout.splitlines() if line.startswith("SETTINGS "))[9:])
    assert evaluated == {"frames": "11-82", "batch_size": 0, "output_folder": str(farm)}

    job = compile_job(tmp_path, dict(settings, blendfile=str(blend), chunk_size=40, video_path=str(tmp_path / "v.mp4"),
                                     **evaluated))
    chunks = [task for task in job["tasks"] if task["name"].startswith("render-")]
    assert [task["name"] for task in chunks] == ["render-11-50", "render-51-82"]

    def run(task):
        return subprocess.run(worker_command(task), capture_output=True, text=True, env=environment, timeout=900)

    with ThreadPoolExecutor(max_workers=2) as pool:
        for result in pool.map(run, chunks):
            assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert sorted(pngs(farm)) == [f"frame_{n:06d}.png" for n in range(11, 83)]
    single = subprocess.run([BLENDER, "-b", str(blend), "--python-exit-code", "1", "-P",
                             os.path.join(ROOT, "scripts", "render.py"), "--", "--output", str(tmp_path / "single"),
                             "--engine-python", settings["engine_python"]],
                            capture_output=True, text=True, env=environment, timeout=900)
    assert single.returncode == 0, single.stdout[-2000:] + single.stderr[-2000:]
    assert pngs(farm) == pngs(tmp_path / "single")  # the chunks give the bytes of one render

    encoded = run(job["tasks"][-1])
    assert encoded.returncode == 0, encoded.stdout[-2000:] + encoded.stderr[-2000:]
    assert "72 of 72 frames current" in encoded.stdout
    with av.open(str(tmp_path / "v.mp4")) as container:
        streams = {s.type: float(s.duration * s.time_base) for s in container.streams}
    assert streams["video"] == pytest.approx(3.0, abs=1 / 24) and streams["audio"] == pytest.approx(3.0, abs=0.05)
