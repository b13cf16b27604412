"""Curves follow the song's dynamics: a quiet intro stays low, a loud drop reaches high
(onset as well as bands), unless the artist asks for each passage on its own scale."""

import numpy as np
import pytest

import synth
from blender_latentwalk.engine import cli
from blender_latentwalk.engine.analysis import pipeline
from blender_latentwalk.engine.errors import LatentWalkError

SAMPLE_RATE = 44100
INTRO, DROP = slice(30, 280), slice(330, 580)  # frames at 30 fps: 1-9.3 s, 11-19.3 s


def _section(start_s, gain, dense, total_s=20.0, length_s=10.0):
    """Kick on the beat, hats (8ths, or 16ths when dense), stabs, a held chord and a noise floor."""
    beats = np.arange(start_s, start_s + length_s, 0.5)
    hat_step = 0.125 if dense else 0.25
    t = np.arange(int(total_s * SAMPLE_RATE)) / SAMPLE_RATE
    inside = ((t >= start_s) & (t < start_s + length_s)).astype(np.float32)
    rng = np.random.default_rng(int(start_s))
    x = (synth.kicks(beats, SAMPLE_RATE, total_s)
         + synth.hats(np.arange(start_s + hat_step, start_s + length_s, hat_step), SAMPLE_RATE, total_s, 0.3)
         + synth.stabs(beats[::2] + 0.25, SAMPLE_RATE, total_s, 0.1))
    x += inside * (0.1 * sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6))
                   + 0.003 * rng.standard_normal(len(t))).astype(np.float32)
    if dense:  # the drop: a noise wash and a sub bass under everything
        x += inside * (0.05 * rng.standard_normal(len(t)) + 0.15 * np.sin(2 * np.pi * 55 * t)).astype(np.float32)
    return gain * x


@pytest.fixture(scope="module")
def quiet_intro_loud_drop(tmp_path_factory):
    song = _section(0.0, 0.1, dense=False) + _section(10.0, 1.0, dense=True)  # the intro is 20 dB down
    return synth.write(tmp_path_factory.mktemp("dyn") / "intro_drop.wav", song.astype(np.float32), SAMPLE_RATE)


def _p(curve, part, q):
    return float(np.percentile(curve[part], q))


def test_by_default_the_quiet_intro_stays_low_and_the_loud_drop_reaches_high(quiet_intro_loud_drop):
    features = pipeline.analyze(quiet_intro_loud_drop, 30)
    assert features.meta["normalise"] == "song"
    # Expected order of levels: drop > intro for every curve; the intro's hits pulse at
    # about half (20 dB down on a 40 dB range), the drop's reach near the top.
    for curve in (features.band("Bass"), features.band("Mids"), features.band("Brilliance"), features.rms):
        assert _p(curve, INTRO, 95) < 0.6 and _p(curve, DROP, 95) > 0.9
    assert _p(features.onset, INTRO, 99) < 0.6
    assert _p(features.onset, DROP, 99) > 0.7
    assert _p(features.onset, DROP, 95) > 1.5 * _p(features.onset, INTRO, 95)


def test_a_window_of_n_seconds_puts_each_passage_on_its_own_scale(quiet_intro_loud_drop):
    features = pipeline.analyze(quiet_intro_loud_drop, 30, normalise="window", normalise_window_s=8.0)
    assert features.meta["normalise_window_s"] == 8.0
    for curve in (features.band("Bass"), features.band("Mids"), features.rms):
        assert _p(curve, INTRO, 95) > 0.9 and _p(curve, DROP, 95) > 0.9
    assert _p(features.onset, INTRO, 99) > 0.8 and _p(features.onset, DROP, 99) > 0.7


def test_a_window_still_leaves_silence_at_zero_and_one_spike_does_not_flatten_it(tmp_path):
    beat = synth.clicks(np.arange(0.25, 20, 0.5), SAMPLE_RATE, 20.0, amplitude=0.3)
    beat[int(10.0 * SAMPLE_RATE): int(13.0 * SAMPLE_RATE)] = 0.0  # three seconds of silence
    spiky = beat.copy()
    spiky[int(5.1 * SAMPLE_RATE)] = 1.0  # one huge single-sample spike
    window = dict(normalise="window", normalise_window_s=6.0)
    plain = pipeline.analyze(synth.write(tmp_path / "plain.wav", beat, SAMPLE_RATE), 30, **window)
    spiked = pipeline.analyze(synth.write(tmp_path / "spike.wav", spiky, SAMPLE_RATE), 30, **window)
    silence = slice(int(10.2 * 30), int(12.9 * 30))
    assert spiked.rms[silence].max() == 0.0 and spiked.onset[silence].max() == 0.0
    hits = [int(t * 30) for t in np.arange(0.25, 20, 0.5) if not 10.0 <= t < 13.0]
    for name in ("onset", "rms"):
        assert np.median(getattr(spiked, name)[hits]) > 0.9 * np.median(getattr(plain, name)[hits]), name


@pytest.mark.parametrize("mode,window_s,message", [("loudest", 10.0, "unknown"), ("window", 0.2, "at least")])
def test_bad_normalisation_settings_are_refused_clearly(tmp_path, mode, window_s, message):
    path = synth.write(tmp_path / "t.wav", synth.tone(100, SAMPLE_RATE, 1.0), SAMPLE_RATE)
    with pytest.raises(LatentWalkError, match=message):
        pipeline.analyze(path, 30, normalise=mode, normalise_window_s=window_s)


def test_the_cli_takes_the_normalisation(tmp_path, capsys):
    path = synth.write(tmp_path / "t.wav", synth.tone(100, SAMPLE_RATE, 2.0), SAMPLE_RATE)
    out = tmp_path / "f.npz"
    assert cli.main(["analyze", path, "--fps", "30", "--normalise", "window", "--normalise-window-s", "5",
                     "--out", str(out)]) == 0
    from blender_latentwalk.engine.analysis.features import Features

    meta = Features.load_npz(str(out)).meta
    assert meta["normalise"] == "window" and meta["normalise_window_s"] == 5.0
    assert cli.main(["analyze", path, "--fps", "30", "--normalise", "louder", "--out", str(out)]) == 2
    assert "normalisation 'louder' is unknown" in capsys.readouterr().err


def test_the_running_maximum_is_scipys_maximum_filter():
    # shaping.running_max stands in for scipy.ndimage.maximum_filter1d (mode "nearest"), whose import
    # costs every bake a tenth of a second: it must give the very same peaks, odd and even sizes alike.
    from scipy.ndimage import maximum_filter1d

    from blender_latentwalk.engine.analysis.shaping import running_max

    rng = np.random.default_rng(4)
    for n in (1, 2, 7, 100, 1001):
        for size in (1, 2, 3, 8, 31, 137, 2000):
            values = rng.standard_normal(n).astype(np.float32)
            np.testing.assert_array_equal(running_max(values, size), maximum_filter1d(values, size, mode="nearest"))
