"""Bad input through the Bake operator: a clear message, and the old curves untouched."""

import os

import bpy
import numpy as np
import pytest

import synth
from blender_latentwalk.blender import compat, curves


def snapshot(scene):
    return {fc.data_path + str(fc.array_index): curves.fingerprint(fc) for fc in compat.fcurves_of(scene)}


def _files(tmp_path):
    fake = tmp_path / "fake.wav"
    fake.write_text("not audio at all\n" * 50)
    ogg = synth.write(tmp_path / "ok.ogg", synth.tone(300, 44100, 4.0), 44100)
    data = open(ogg, "rb").read()
    truncated = tmp_path / "cut.ogg"
    truncated.write_bytes(data[: len(data) // 2])
    return {
        "missing file": (str(tmp_path / "gone.wav"), {}, "audio file not found"),
        "not audio": (str(fake), {}, "could not be read as audio"),
        "truncated ogg": (str(truncated), {}, "truncated"),
        "zero length": (synth.write(tmp_path / "z.wav", np.zeros(0, np.float32), 44100), {}, "truncated"),
        "sub-frame": (synth.write(tmp_path / "s.wav", np.zeros(500, np.float32), 44100), {}, "shorter than one frame"),
        "inverted band": (None, {"band": (2000.0, 500.0)}, "must be below high_hz"),
        "no song": ("", {}, "no song is set"),
    }


@pytest.mark.parametrize("case", ["missing file", "not audio", "truncated ogg", "zero length", "sub-frame",
                                  "inverted band", "no song"])
def test_bad_input_is_reported_and_nothing_baked_is_lost(scene, song, tmp_path, case):
    settings = scene.latentwalk
    settings.audio_path = song
    assert bpy.ops.latentwalk.bake() == {"FINISHED"}
    compat.find_fcurve(scene, "latentwalk.onset", 0).keyframe_points[3].co.y = 0.5  # a hand edit too
    before, frame_end = snapshot(scene), scene.frame_end

    path, change, expected = _files(tmp_path)[case]
    if path is not None:
        settings.audio_path = path
    if "band" in change:
        settings.bands[3].low_hz, settings.bands[3].high_hz = change["band"]

    with pytest.raises(RuntimeError) as error:
        bpy.ops.latentwalk.bake(overwrite_edited=True)
    message = str(error.value)
    assert expected in message and "Traceback" not in message
    if path:
        assert os.path.basename(path) in message
    assert snapshot(scene) == before and scene.frame_end == frame_end
