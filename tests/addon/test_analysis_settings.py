"""Analysis settings the artist picks in the panel reach the engine: normalisation."""

import os
import subprocess
import sys

import bpy
import numpy as np
import pytest

from blender_latentwalk.blender import compat
from blender_latentwalk.engine.analysis import pipeline

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _curve(scene, data_path, n_frames):
    fcurve = compat.find_fcurve(scene, data_path, 0)
    return np.array([fcurve.evaluate(1 + k) for k in range(n_frames)])


def test_the_song_is_the_default_and_a_window_bakes_the_windowed_analysis(scene, song):
    settings = scene.latentwalk
    assert settings.normalise == "song"
    settings.audio_path = song
    settings.normalise, settings.normalise_window_s = "window", 2.0
    assert bpy.ops.latentwalk.bake() == {"FINISHED"}
    expected = pipeline.analyze(song, 30, normalise="window", normalise_window_s=2.0)
    assert not np.allclose(expected.rms, pipeline.analyze(song, 30).rms)  # the setting matters here
    np.testing.assert_allclose(_curve(scene, "latentwalk.rms", expected.n_frames), expected.rms, atol=1e-6)
    np.testing.assert_allclose(_curve(scene, "latentwalk.onset", expected.n_frames), expected.onset, atol=1e-6)
    np.testing.assert_allclose(_curve(scene, "latentwalk.bands[1].value", expected.n_frames), expected.bands[1],
                               atol=1e-6)


def test_headless_bake_takes_the_normalisation_and_refuses_a_window_too_short(song, tmp_path):
    if bpy.app.version < (5, 0, 0):
        pytest.skip("the bpy 4.2 wheel crashes when a script's Python exits (see conftest.py)")
    script = os.path.join(ROOT, "scripts", "bake.py")
    saved = tmp_path / "baked.blend"
    result = subprocess.run([sys.executable, script, "--", "--audio", song, "--normalise", "window",
                             "--normalise-window-s", "0.5", "--save", str(saved)],
                            capture_output=True, text=True, cwd=ROOT, stdin=subprocess.DEVNULL)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "normalisation window is 0.5 s; it must be at least 1 s" in result.stderr
    assert not saved.exists()
    result = subprocess.run([sys.executable, script, "--", "--audio", song, "--normalise", "window",
                             "--normalise-window-s", "3", "--save", str(saved)],
                            capture_output=True, text=True, cwd=ROOT, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr[-2000:]
    bpy.ops.wm.open_mainfile(filepath=str(saved))
    settings = bpy.context.scene.latentwalk
    assert (settings.normalise, settings.normalise_window_s) == ("window", 3.0)


def test_a_band_up_to_16_khz_bakes_and_one_above_the_song_is_refused_keeping_the_curves(scene, song):
    settings = scene.latentwalk
    settings.audio_path = song  # 44.1 kHz: holds frequencies up to 22050 Hz
    settings.ensure_default_bands()
    air = settings.bands[6]
    air.title, air.low_hz, air.high_hz = "Air", 12000.0, 16000.0
    assert bpy.ops.latentwalk.bake() == {"FINISHED"}
    from blender_latentwalk.engine.analysis.bands import Band, DEFAULT_BANDS

    bands = list(DEFAULT_BANDS[:6]) + [Band("Air", 12000.0, 16000.0)]
    expected = pipeline.analyze(song, 30, bands=bands)
    assert expected.meta["band_sample_rate"] == 32000
    np.testing.assert_allclose(_curve(scene, "latentwalk.bands[6].value", expected.n_frames), expected.bands[6],
                               atol=1e-6)
    before = [tuple(k.co) for k in compat.find_fcurve(scene, "latentwalk.bands[6].value", 0).keyframe_points]
    air.high_hz = 23000.0
    with pytest.raises(RuntimeError, match="band 'Air' reaches 23000 Hz, but .*song.wav' is sampled at 44100 Hz "
                                           "and holds frequencies up to 22050 Hz only"):
        bpy.ops.latentwalk.bake(overwrite_edited=True)
    after = [tuple(k.co) for k in compat.find_fcurve(scene, "latentwalk.bands[6].value", 0).keyframe_points]
    assert after == before


def _snapshot(scene):
    from blender_latentwalk.blender import curves

    return {fc.data_path + str(fc.array_index): curves.fingerprint(fc) for fc in compat.fcurves_of(scene)}


def test_bands_on_a_stem_and_on_the_percussive_part_bake_and_a_missing_stem_keeps_the_curves(scene, tmp_path):
    import synth
    from blender_latentwalk.engine.analysis.bands import Band

    kicks = synth.kicks(np.arange(0.5, 3.5, 0.5), 44100, 4.0)
    bass = synth.tone(80.0, 44100, 4.0, 0.3)
    song = synth.write(tmp_path / "song.wav", kicks + bass, 44100)
    stem = synth.write(tmp_path / "bass.wav", bass, 44100)
    settings = scene.latentwalk
    settings.audio_path = song
    for title, low, high, source in (("Kick", 40.0, 120.0, "percussive"), ("Bass", 40.0, 250.0, "stem")):
        band = settings.bands.add()
        band.title, band.low_hz, band.high_hz, band.source = title, low, high, source
    settings.bands[1].stem_path = stem
    assert bpy.ops.latentwalk.bake() == {"FINISHED"}
    expected = pipeline.analyze(song, 30, bands=[Band("Kick", 40.0, 120.0, "percussive"),
                                                 Band("Bass", 40.0, 250.0, stem)])
    for index in range(2):
        np.testing.assert_allclose(_curve(scene, f"latentwalk.bands[{index}].value", expected.n_frames),
                                   expected.bands[index], atol=1e-6)
    before = _snapshot(scene)
    os.remove(stem)
    with pytest.raises(RuntimeError, match=r"the stem of band 'Bass' is not found: '.*bass.wav'"):
        bpy.ops.latentwalk.bake(overwrite_edited=True)
    assert _snapshot(scene) == before
    settings.bands[1].stem_path = ""
    with pytest.raises(RuntimeError, match="band 'Bass' listens to a stem, but no stem file is chosen"):
        bpy.ops.latentwalk.bake(overwrite_edited=True)
    assert _snapshot(scene) == before


def test_headless_bake_takes_band_sources(song, tmp_path):
    if bpy.app.version < (5, 0, 0):
        pytest.skip("the bpy 4.2 wheel crashes when a script's Python exits (see conftest.py)")
    script = os.path.join(ROOT, "scripts", "bake.py")
    saved = tmp_path / "sources.blend"
    result = subprocess.run([sys.executable, script, "--", "--audio", song, "--band", f"Kick:40-120@{song}",
                             "--band", "Pad:200-2000@harmonic", "--band", "Bass:60-250", "--save", str(saved)],
                            capture_output=True, text=True, cwd=ROOT, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr[-2000:]
    bpy.ops.wm.open_mainfile(filepath=str(saved))
    bands = bpy.context.scene.latentwalk.bands
    assert [(b.title, b.source) for b in bands] == [("Kick", "stem"), ("Pad", "harmonic"), ("Bass", "mix")]
    assert os.path.abspath(bpy.path.abspath(bands[0].stem_path)) == os.path.abspath(song)


def test_onset_and_chroma_sources_reach_the_engine(scene, tmp_path):
    import synth

    kicks = synth.kicks(np.arange(0.5, 3.5, 0.5), 44100, 4.0)
    chord = sum(synth.tone(f, 44100, 4.0, 0.05) for f in (220.0, 277.2, 329.6))
    song = synth.write(tmp_path / "song.wav", kicks + chord, 44100)
    drums = synth.write(tmp_path / "drums.wav", kicks, 44100)
    settings = scene.latentwalk
    settings.audio_path = song
    settings.onset_source, settings.onset_stem_path = "stem", drums
    settings.chroma_source = "harmonic"
    assert bpy.ops.latentwalk.bake() == {"FINISHED"}
    expected = pipeline.analyze(song, 30, onset_source=drums, chroma_source="harmonic")
    assert not np.allclose(expected.onset, pipeline.analyze(song, 30).onset)
    np.testing.assert_allclose(_curve(scene, "latentwalk.onset", expected.n_frames), expected.onset, atol=1e-6)
    np.testing.assert_allclose(_curve(scene, "latentwalk.chroma[9].value", expected.n_frames), expected.chroma[:, 9],
                               atol=1e-6)
    settings.onset_stem_path = ""
    with pytest.raises(RuntimeError, match="the onset curve listens to a stem, but no stem file is chosen"):
        bpy.ops.latentwalk.bake(overwrite_edited=True)


def test_the_onset_on_the_percussive_part_reaches_the_engine(scene, tmp_path):
    import synth

    clicks = synth.clicks(np.arange(0.5, 3.5, 0.3) + 0.011, 44100, 4.0, amplitude=0.15)
    chord = sum(synth.tone(f * k, 44100, 4.0, 0.2 / k, fade_s=0.5) for f in (220.0, 277.2, 329.6) for k in (1, 2, 3))
    song = synth.write(tmp_path / "song.wav", clicks + chord, 44100)
    settings = scene.latentwalk
    settings.audio_path = song
    settings.onset_source = "percussive"
    assert bpy.ops.latentwalk.bake() == {"FINISHED"}
    expected = pipeline.analyze(song, 30, onset_source="percussive")
    assert not np.allclose(expected.onset, pipeline.analyze(song, 30).onset)
    np.testing.assert_allclose(_curve(scene, "latentwalk.onset", expected.n_frames), expected.onset, atol=1e-6)
