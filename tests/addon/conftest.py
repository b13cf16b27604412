import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

import blender_latentwalk  # noqa: E402
import synth  # noqa: E402
from addon_helpers import FPS  # noqa: E402


@pytest.fixture(scope="session")
def addon():
    blender_latentwalk.register()
    yield blender_latentwalk
    blender_latentwalk.unregister()


@pytest.fixture
def scene(addon):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 30, 1.0
    scene.frame_start = 1
    return scene


@pytest.fixture(scope="session")
def engine_python():
    """The render worker's Python: Blender's own where it has torch, else the project's .venv (as on 4.2)."""
    import engine_python as engine

    python = engine.find()
    if python is None:
        pytest.skip("no Python with torch, diffusers and av: run scripts/setup.sh to make .venv")
    return python


@pytest.fixture
def use_engine_python(engine_python, monkeypatch):
    """Point the add-on's Engine Python at the worker's Python, as a user without torch in Blender does."""
    import sys

    if engine_python != sys.executable:
        monkeypatch.setenv("LATENTWALK_ENGINE_PYTHON", engine_python)
    return engine_python


@pytest.fixture
def song(tmp_path):
    """A 4 s song: clicks every half second over a bass note and a 1 kHz tone."""
    sample_rate = 44100
    signal = synth.clicks(np.arange(0.5, 4.0, 0.5), sample_rate, 4.0, amplitude=0.6)
    signal += synth.tone(110, sample_rate, 4.0, 0.3) + synth.tone(1000, sample_rate, 4.0, 0.1)
    return synth.write(tmp_path / "song.wav", signal, sample_rate)


@pytest.fixture(scope="module")
def models(engine_python, tmp_path_factory):
    """Tiny untrained BigGAN and SD pipeline in the real on-disk formats, made by the worker's Python."""
    import engine_python as engine

    return engine.make_tiny_models(engine_python, tmp_path_factory.mktemp("models"))


@pytest.fixture
def baked(scene, models, use_engine_python, tmp_path):
    """The render tests' scene: a 3 s demo song baked at 24 fps, tiny models, frames in tmp/frames.
    The worker runs in Blender's own Python where it has torch (5.0.1 here), else in the project's
    .venv set as Engine Python (bpy 4.2, as a 4.2 user does)."""
    from demo_song import synthesise_song

    song = str(tmp_path / "song.wav")
    synthesise_song(song, seconds=3.0)  # kick, bass, chords and hats
    scene.render.fps = FPS
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 64, 48, 100
    settings = scene.latentwalk
    settings.audio_path = song
    assert bpy.ops.latentwalk.bake() == {"FINISHED"}
    settings.walk.model, settings.diffusion.model = models
    settings.walk.device = "cpu"
    settings.diffusion.prompt = "a volcano"
    settings.diffusion.output_folder = str(tmp_path / "frames")
    settings.diffusion.batch_size = 4
    yield scene
    from blender_latentwalk.blender import worker_client

    worker_client.release()


# The bpy 4.2 wheel crashes (SIGSEGV) while Python shuts down once any Python
# callback (a property's update=, an operator's execute) has been registered,
# even after unregistering; 5.0.1 does not. Every test has run and pytest has
# printed its summary by pytest_unconfigure, so leave with pytest's own status
# before the interpreter's teardown reaches bpy.
_EXIT_STATUS = {"code": 0}


def pytest_sessionfinish(session, exitstatus):
    _EXIT_STATUS["code"] = int(exitstatus)


def pytest_unconfigure(config):
    import os
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_EXIT_STATUS["code"])
