"""scripts/render.py as a user runs it: `python scripts/render.py -- ...` on bpy 5.0.1
here, and the literal `blender -b FILE.blend --python-exit-code 1 -P scripts/render.py`
with Debian's Blender 3.4.1 where it is installed (tests/app)."""

import os
import re
import subprocess
import sys

import pytest

pytest.importorskip("bpy")
pytest.importorskip("torch")
av = pytest.importorskip("av")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "render.py")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    from blender_latentwalk.engine.generators import biggan
    from blender_latentwalk.engine.diffusion import img2img
    from demo_song import synthesise_song

    folder = tmp_path_factory.mktemp("inputs")
    song = str(folder / "song.wav")
    synthesise_song(song, seconds=3.0)
    return {"song": song, "biggan": biggan.make_tiny_model(str(folder / "biggan-tiny-UNTRAINED")),
            "sd": img2img.make_tiny_pipeline(str(folder / "sd-tiny-UNTRAINED"))}


def run_script(inputs, out, *extra, audio=None):
    command = [sys.executable, SCRIPT, "--", "--audio", audio or inputs["song"], "--output", str(out),
               "--biggan", inputs["biggan"], "--sd", inputs["sd"], "--size", "64x48", "--fps", "24",
               "--device", "cpu", *extra]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, stdin=subprocess.DEVNULL)


def video_streams(path):
    with av.open(str(path)) as container:
        return {s.type: (s.codec_context.name, float(s.duration * s.time_base)) for s in container.streams}


def frames_of(folder):
    return {name: os.path.getmtime(os.path.join(folder, name))
            for name in sorted(os.listdir(folder)) if name.endswith(".png")}


@pytest.fixture(scope="module")
def rendered(inputs, tmp_path_factory):
    folder = tmp_path_factory.mktemp("rendered")
    result = run_script(inputs, folder / "frames", "--encode", str(folder / "video.mp4"),
                        "--save", str(folder / "video.blend"))
    assert result.returncode == 0, result.stderr[-3000:]
    return folder, result


def test_script_bakes_renders_saves_and_encodes(rendered):
    folder, result = rendered
    assert "baked" in result.stdout and "Latent Walk: 72/72 frames" in result.stdout
    assert len(frames_of(folder / "frames")) == 72
    streams = video_streams(folder / "video.mp4")
    assert streams["video"][0] == "h264" and streams["video"][1] == pytest.approx(3.0, abs=1 / 24)
    assert streams["audio"][0] == "aac" and streams["audio"][1] == pytest.approx(3.0, abs=0.05)
    assert os.path.isfile(folder / "video.blend")


@pytest.mark.parametrize("case", ["missing biggan", "missing sd", "unreadable audio", "unwritable output",
                                  "frames outside the song", "malformed frames", "not an mp4"])
def test_bad_input_exits_1_with_a_message_and_loses_nothing(case, inputs, rendered, tmp_path):
    folder, _ = rendered
    before = frames_of(folder / "frames")
    blend_time = os.path.getmtime(folder / "video.blend")
    extra, audio, out = [], None, folder / "frames"
    if case == "missing biggan":
        extra, expected = ["--biggan", str(tmp_path / "no-such-biggan")], "no-such-biggan"
    elif case == "missing sd":
        extra, expected = ["--sd", str(tmp_path / "no-such-sd")], "no-such-sd"
    elif case == "unreadable audio":
        audio, expected = os.path.join(ROOT, "README.md"), "README.md"
    elif case == "unwritable output":
        (tmp_path / "a-file").write_text("not a folder")
        out, expected = tmp_path / "a-file" / "frames", "cannot write frames to"
    elif case == "frames outside the song":
        extra, expected = ["--frames", "1-3,60-100"], "frames 60-100 are outside the frames to render, 1-72"
    elif case == "malformed frames":
        extra, expected = ["--frames", "1-5,sixty"], "--frames '1-5,sixty': 'sixty' is not a frame or a range A-B"
    else:
        extra, expected = ["--encode", str(tmp_path / "video.mov")], "give a path ending in .mp4"
    result = run_script(inputs, out, *extra, "--save", str(folder / "video.blend"), audio=audio)
    assert result.returncode == 1, result.stdout[-2000:]
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: ") and expected in last_line, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert frames_of(folder / "frames") == before  # no frame rewritten or removed
    assert os.path.getmtime(folder / "video.blend") == blend_time  # the saved file is untouched


def test_another_frame_rate_rebakes_a_saved_file_and_the_same_one_does_not(inputs, rendered, tmp_path):
    import shutil

    folder, _ = rendered
    blend = tmp_path / "copy.blend"
    shutil.copy(folder / "video.blend", blend)  # baked at 24 fps

    def run(out, *extra):
        return subprocess.run([sys.executable, SCRIPT, "--", "--blend", str(blend), "--output", str(tmp_path / out),
                               "--sd", "none", "--device", "cpu", *extra],
                              capture_output=True, text=True, cwd=ROOT, stdin=subprocess.DEVNULL)

    other = run("frames30", "--fps", "30", "--save")
    assert other.returncode == 0, other.stderr[-3000:]
    assert "baked" in other.stdout and "Latent Walk: 90/90 frames" in other.stdout
    same = run("frames30b", "--fps", "30")
    assert same.returncode == 0 and "baked" not in same.stdout  # the file's own bake is used as it is
    assert "Latent Walk: 90/90 frames" in same.stdout


@pytest.mark.parametrize("arguments, expected", [
    (["--prompt-change", "240"], "is not FRAME:TEXT"),
    (["--prompt-change", "2:" + "x" * 60], "a marker name holds 63 characters"),
    (["--save"], "--save needs a path"),
    (["--strength", "strong"], "argument --strength: invalid float value"),
    (["--frames", "1_120"], "--frames '1_120': '1_120' is not a frame"),  # Python's int() would read 1120
    (["--engine-python", "/no/such/python"], "--engine-python PATH, or the LATENTWALK_ENGINE_PYTHON"),
])
def test_argument_mistakes_are_one_line_and_exit_1_before_any_work(inputs, tmp_path, arguments, expected):
    result = run_script(inputs, tmp_path / "frames", *arguments)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ") and expected in result.stderr
    assert not (tmp_path / "frames").exists()  # refused before baking or rendering


def test_an_unwritable_video_path_is_refused_before_any_work(inputs, tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    result = run_script(inputs, tmp_path / "frames", "--encode", str(tmp_path / "a-file" / "video.mp4"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: --encode") and "cannot write" in last_line
    assert not (tmp_path / "frames").exists()


def audio_rms(path):
    import numpy as np

    with av.open(str(path)) as container:
        samples = [frame.to_ndarray().astype(np.float64).ravel() for frame in container.decode(audio=0)]
    return float(np.sqrt(np.mean(np.concatenate(samples) ** 2)))


def test_a_blend_copied_elsewhere_still_encodes_the_song(inputs, rendered, tmp_path):
    """The saved file's sound strip is relative to it; a copy elsewhere must not give a silent video."""
    import shutil

    folder, _ = rendered
    assert audio_rms(folder / "video.mp4") > 0.01
    copy = tmp_path / "a" / "b" / "c" / "copy.blend"
    copy.parent.mkdir(parents=True)
    shutil.copy(folder / "video.blend", copy)
    result = subprocess.run([sys.executable, SCRIPT, "--", "--blend", str(copy), "--audio", inputs["song"],
                             "--output", str(folder / "frames"), "--encode", str(tmp_path / "copy.mp4")],
                            capture_output=True, text=True, cwd=ROOT, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "it now plays the Song" in result.stdout and "72 of 72 frames current" in result.stdout
    assert audio_rms(tmp_path / "copy.mp4") == pytest.approx(audio_rms(folder / "video.mp4"), rel=0.05)



def test_a_moved_blend_whose_song_was_relative_takes_the_audio_given(inputs, rendered, tmp_path):
    """Song "//song.wav" next to the .blend; the .blend alone is moved: --audio is the song."""
    import shutil

    folder, _ = rendered
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(inputs["song"], project / "song.wav")
    shutil.copy(folder / "video.blend", project / "video.blend")
    relative = subprocess.run([sys.executable, "-c", (
        "import sys, bpy; sys.path.insert(0, sys.argv[1]); import blender_latentwalk; "
        "bpy.ops.wm.open_mainfile(filepath=sys.argv[2]); blender_latentwalk.register(); "
        "bpy.context.scene.latentwalk.audio_path = '//song.wav'; bpy.ops.latentwalk.bake(); "
        "bpy.ops.wm.save_mainfile()"), ROOT, str(project / "video.blend")],
        capture_output=True, text=True, cwd=str(tmp_path))
    assert relative.returncode == 0, relative.stderr[-2000:]
    moved = tmp_path / "elsewhere" / "video.blend"
    moved.parent.mkdir()
    shutil.copy(project / "video.blend", moved)
    result = subprocess.run([sys.executable, SCRIPT, "--", "--blend", str(moved), "--audio", inputs["song"],
                             "--output", str(tmp_path / "frames"), "--sd", "none", "--device", "cpu",
                             "--encode", str(tmp_path / "moved.mp4")],
                            capture_output=True, text=True, cwd=ROOT, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr[-3000:]
    assert audio_rms(tmp_path / "moved.mp4") == pytest.approx(audio_rms(folder / "video.mp4"), rel=0.05)


def children_of(pid):
    """Process ids whose parent is ``pid`` (Linux /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stream:
                    if int(stream.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return found


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds the worker process through /proc")
def test_kill_9_at_a_random_point_then_resume_gives_the_same_bytes(inputs, rendered, tmp_path):
    import random
    import signal
    import time

    folder, _ = rendered
    out = tmp_path / "frames"
    command = [sys.executable, SCRIPT, "--", "--audio", inputs["song"], "--output", str(out), "--biggan",
               inputs["biggan"], "--sd", inputs["sd"], "--size", "64x48", "--fps", "24", "--device", "cpu"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
                               stdin=subprocess.DEVNULL)
    kill_after = random.Random().randint(8, 60)  # frames done, reported by the progress lines
    for line in process.stdout:
        if line.startswith("Latent Walk: ") and "/72 frames" in line and int(line.split()[2].split("/")[0]) >= kill_after:
            break
    time.sleep(random.Random().uniform(0.0, 0.5))  # somewhere inside the next batch
    workers = children_of(process.pid)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 20
    while any(os.path.exists(f"/proc/{pid}") and open(f"/proc/{pid}/stat").read().split()[2] != "Z"
              for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)  # the worker ends when its parent is gone
    assert not [pid for pid in workers if os.path.exists(f"/proc/{pid}")
                and open(f"/proc/{pid}/stat").read().split()[2] != "Z"], "the worker outlived the killed render"

    resumed = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, stdin=subprocess.DEVNULL)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "kept" in resumed.stdout
    names = sorted(os.listdir(out))
    assert [n for n in names if n.endswith(".png")] == [f"frame_{n:06d}.png" for n in range(1, 73)]
    assert not [n for n in names if "tmp" in n], names  # no temp file left behind
    reference = folder / "frames"
    for name in names:
        if name.endswith(".png"):
            assert (out / name).read_bytes() == (reference / name).read_bytes(), name
    status = subprocess.run([sys.executable, "-m", "blender_latentwalk.engine", "status", str(out / "plan.npz"),
                             "--biggan", inputs["biggan"], "--sd", inputs["sd"], "--size", "64x48", "--out", str(out)],
                            capture_output=True, text=True, cwd=ROOT)
    assert status.returncode == 0 and "72 of 72 frames current" in status.stdout, status.stderr


EDIT_ONSET = """
import sys, bpy
from blender_latentwalk.blender import compat
bpy.ops.wm.open_mainfile(filepath=sys.argv[-1])
key = compat.find_fcurve(bpy.context.scene, "latentwalk.onset", 0).keyframe_points[24]  # 1.0 s at 24 fps
key.co.y = 0.75
bpy.ops.wm.save_mainfile()
"""

READ_BACK = """
import json, sys, bpy
from blender_latentwalk.blender import compat
bpy.ops.wm.open_mainfile(filepath=sys.argv[-1])
scene = bpy.context.scene
onset = compat.find_fcurve(scene, "latentwalk.onset", 0)
lifted = [tuple(p.co) for p in onset.keyframe_points if abs(p.co.y - 0.75) < 1e-6]
print("STATE=" + json.dumps({"fps": scene.render.fps, "fps_base": scene.render.fps_base, "lifted": lifted,
                              "bass_keys": len(compat.find_fcurve(scene, "latentwalk.bands[1].value", 0).keyframe_points)}))
"""


def test_fps_29_97_rebakes_a_saved_file_keeping_and_retiming_the_artists_edit(inputs, rendered, tmp_path):
    import json
    import shutil

    folder, _ = rendered
    blend = tmp_path / "edited.blend"
    shutil.copy(folder / "video.blend", blend)  # baked at 24 fps

    def python(code):
        result = subprocess.run([sys.executable, "-c", code, str(blend)], capture_output=True, text=True, cwd=ROOT,
                                env=dict(os.environ, PYTHONPATH=ROOT))
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout

    python("import blender_latentwalk; blender_latentwalk.register()\n" + EDIT_ONSET)
    result = subprocess.run([sys.executable, SCRIPT, "--", "--blend", str(blend), "--output", str(tmp_path / "out"),
                             "--biggan", inputs["biggan"], "--sd", "none", "--device", "cpu", "--frames", "1-2",
                             "--fps", "29.97", "--save"],
                            capture_output=True, text=True, cwd=ROOT, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "baking: the scene is now 29.97 fps, the curves were baked at 24 fps" in result.stdout
    assert "kept 1 curve(s) edited by hand: Onset" in result.stdout
    assert "retimed to the new timing: Onset" in result.stdout
    state = json.loads(next(line for line in python("import blender_latentwalk; blender_latentwalk.register()\n"
                                                     + READ_BACK).splitlines() if line.startswith("STATE="))[6:])
    assert (state["fps"], state["fps_base"]) == (30, pytest.approx(1.001))
    assert state["bass_keys"] == 90  # re-baked at 29.97: ceil(3 s * 29.97)
    assert len(state["lifted"]) == 1 and state["lifted"][0][0] == pytest.approx(1 + 24 * (30 / 1.001) / 24, abs=1e-4)


def test_two_cpu_devices_render_the_same_frames_with_one_progress_line(inputs, rendered, tmp_path):
    """--devices cpu,cpu: two workers share the frames; the bytes are those of one worker's render."""
    folder, _ = rendered
    result = run_script(inputs, tmp_path / "frames", "--devices", "cpu,cpu")
    assert result.returncode == 0, result.stderr[-3000:]
    progress = [line for line in result.stdout.splitlines() if re.match(r"Latent Walk: \d+/72 frames", line)]
    assert progress and all(" on 2 devices" in line for line in progress), progress  # one line for both
    assert progress[-1].startswith("Latent Walk: 72/72 frames")
    two = {name: (tmp_path / "frames" / name).read_bytes() for name in frames_of(tmp_path / "frames")}
    one = {name: (folder / "frames" / name).read_bytes() for name in frames_of(folder / "frames")}
    assert len(two) == 72 and two == one


def test_a_prompt_change_with_a_new_fps_lands_on_the_frame_given(rendered, inputs, tmp_path):
    """--prompt-change 120:... --fps 60 on a 24 fps .blend: the marker is at 120 of the 60 fps scene (the re-bake
    moves the file's own markers to the new rate, not the one given on the command line)."""
    folder, _ = rendered
    out = tmp_path / "at60.blend"
    command = [sys.executable, SCRIPT, "--", "--blend", str(folder / "video.blend"), "--fps", "60",
               "--prompt-change", "120:a city at night", "--no-render", "--save", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-3000:]
    code = ("import bpy, sys; bpy.ops.wm.open_mainfile(filepath=sys.argv[1]); s = bpy.context.scene; "
            "print([(m.name, m.frame) for m in s.timeline_markers if m.name.startswith('prompt:')], s.render.fps)")
    read = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True, cwd=ROOT)
    assert read.returncode == 0, read.stderr[-2000:]
    assert read.stdout.strip().splitlines()[-1] == "[('prompt: a city at night', 120)] 60"
