"""The literal headless render with a StyleGAN model file, in Debian's Blender 3.4.1 (as CI installs it):

    blender -b --factory-startup --python-exit-code 1 -P scripts/render.py -- --audio SONG \\
        --generator TINY.pkl --sd none --size 64x48 --fps 24 --device cpu --output DIR --encode OUT.mp4

with the untrained tiny stand-ins (generators/stylegan.make_tiny_models); the worker runs in the project's
.venv (LATENTWALK_ENGINE_PYTHON), as tests/app/test_blender_app.py's headless runs do. Then a farm's way with
the rosinality .pt: two chunks (--frames), and a last task that only encodes (--no-render --encode).
Skipped where no `blender` executable is on PATH."""

import os
import shutil
import subprocess
import sys

import pytest

import engine_python

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BLENDER = shutil.which("blender")
pytestmark = pytest.mark.skipif(BLENDER is None, reason="no blender executable on PATH")
SONG_S = 3.0


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    pytest.importorskip("torch")
    from demo_song import synthesise_song

    from blender_latentwalk.engine.generators import stylegan

    folder = tmp_path_factory.mktemp("stylegan")
    song = str(folder / "song.wav")
    synthesise_song(song, seconds=SONG_S)
    return {"song": song, **stylegan.make_tiny_models(str(folder / "stylegan-tiny-UNTRAINED"))}


def render(*arguments):
    """The literal command; the worker in the Python that has torch (the .venv's, this test's)."""
    command = [BLENDER, "-b", "--factory-startup", "--python-exit-code", "1", "-P",
               os.path.join(ROOT, "scripts", "render.py"), "--", *arguments]
    env = dict(os.environ, LATENTWALK_ENGINE_PYTHON=sys.executable, PYTHONPATH=ROOT)
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stdout + result.stderr
    return result


def pngs(folder):
    return sorted(name for name in os.listdir(folder) if name.endswith(".png"))


def check_video(path):
    """H.264 of the song's length at 64x48, and the song as AAC."""
    streams = engine_python.video_streams(sys.executable, path)
    video, audio = streams["video"], streams["audio"]
    assert video["codec"] == "h264" and (video["width"], video["height"]) == (64, 48), streams
    assert video["seconds"] == pytest.approx(SONG_S, abs=1 / 24), streams
    assert audio["codec"] == "aac" and audio["seconds"] == pytest.approx(SONG_S, abs=0.05), streams


def test_blender_b_renders_and_encodes_a_stylegan3_file(inputs, tmp_path):
    frames, video = tmp_path / "frames", tmp_path / "out.mp4"
    result = render("--audio", inputs["song"], "--generator", inputs["stylegan3-t"], "--sd", "none",
                    "--size", "64x48", "--fps", "24", "--device", "cpu", "--output", str(frames),
                    "--encode", str(video))
    assert "Latent Walk: 72/72 frames" in result.stdout, result.stdout[-3000:]
    assert "stand-in models: the frames are noise (StyleGAN)" in result.stdout  # the file was read as StyleGAN
    assert len(pngs(frames)) == 72 and engine_python.png_size(frames / "frame_000001.png") == (64, 48)
    check_video(video)


def test_blender_b_renders_a_rosinality_file_in_two_chunks_then_encodes(inputs, tmp_path):
    """A farm's tasks: chunk 1-30, chunk 31-72 (each keeps its own frames), then --no-render --encode."""
    frames, video = tmp_path / "frames", tmp_path / "out.mp4"
    common = ("--audio", inputs["song"], "--generator", inputs["rosinality"], "--sd", "none", "--size", "64x48",
              "--fps", "24", "--device", "cpu", "--output", str(frames))
    render(*common, "--frames", "1-30")
    assert pngs(frames) == [f"frame_{n:06d}.png" for n in range(1, 31)]
    render(*common, "--frames", "31-72")
    assert len(pngs(frames)) == 72
    before = {name: os.path.getmtime(frames / name) for name in pngs(frames)}
    result = render(*common, "--no-render", "--encode", str(video))
    assert "72 of 72 frames current" in result.stdout, result.stdout[-3000:]
    assert {name: os.path.getmtime(frames / name) for name in pngs(frames)} == before  # nothing re-rendered
    check_video(video)
