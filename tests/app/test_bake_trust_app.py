"""Issue 9's fps and band-identity scenarios in Debian's Blender 3.4.1 (the literal
`blender -b -P` command). Skipped where no `blender` executable is on PATH."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import synth

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BLENDER = shutil.which("blender")
pytestmark = pytest.mark.skipif(BLENDER is None, reason="no blender executable on PATH")


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    sample_rate = 44100
    signal = synth.clicks(np.arange(0.5, 4.0, 0.5), sample_rate, 4.0, amplitude=0.6)
    signal += synth.tone(110, sample_rate, 4.0, 0.3) + synth.tone(3000, sample_rate, 4.0, 0.1)
    return synth.write(tmp_path_factory.mktemp("trust") / "song.wav", signal, sample_rate)


@pytest.mark.parametrize("scenario", ["fps_change_is_refused_until_a_rebake_that_retimes_edits",
                                      "removing_and_moving_bands_keeps_animation_and_drivers_on_their_band"])
def test_scenario_in_the_blender_application(scenario, song):
    # The analysis runs in this Python (librosa), as Engine Python does for a user.
    env = dict(os.environ, LATENTWALK_ENGINE_PYTHON=sys.executable)
    command = [BLENDER, "-b", "--factory-startup", "--python-exit-code", "1", "-P",
               os.path.join(ROOT, "tests", "app", "bake_trust_in_blender.py"), "--", scenario, song]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert f"PASSED {scenario} in Blender " in result.stdout
