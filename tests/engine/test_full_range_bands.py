"""Bands up to the song's own Nyquist frequency; the analysis rate follows the highest band."""

import numpy as np
import pytest

import synth
from blender_latentwalk.engine import LatentWalkError
from blender_latentwalk.engine.analysis import pipeline
from blender_latentwalk.engine.analysis.bands import Band

AIR = Band("Air", 12000.0, 16000.0)
MIDS = Band("Mids", 500.0, 2000.0)


def _tone_song(tmp_path, frequency_hz, sample_rate):
    signal = np.concatenate([np.zeros(sample_rate), synth.tone(frequency_hz, sample_rate, 3.0),
                             np.zeros(sample_rate)]).astype(np.float32)
    return synth.write(tmp_path / f"tone{frequency_hz:g}_{sample_rate}.wav", signal, sample_rate)


@pytest.mark.parametrize("sample_rate", [44100, 48000])
def test_a_14_khz_tone_fills_a_12_to_16_khz_band(tmp_path, sample_rate):
    features = pipeline.analyze(_tone_song(tmp_path, 14000.0, sample_rate), 30, bands=[AIR, MIDS])
    during, before = slice(40, 110), slice(0, 28)
    assert features.band("Air")[during].min() > 0.9
    assert features.band("Air")[before].max() == 0.0
    assert features.band("Mids").max() < 0.05
    assert features.meta["band_sample_rate"] == 32000  # the lowest rate that holds 16 kHz


def test_a_band_up_to_20_khz_measures_at_the_file_s_rate(tmp_path):
    features = pipeline.analyze(_tone_song(tmp_path, 18500.0, 44100), 24,
                                bands=[Band("Top", 16000.0, 20000.0), AIR])
    assert features.meta["band_sample_rate"] == 44100
    assert features.band("Top")[30:90].min() > 0.9 and features.band("Air").max() < 0.05


def test_the_default_bands_keep_the_22050_hz_analysis(tmp_path):
    features = pipeline.analyze(_tone_song(tmp_path, 1000.0, 48000), 30)
    assert features.meta["band_sample_rate"] == features.meta["analysis_sample_rate"] == 22050


@pytest.mark.parametrize("sample_rate,band,expected", [
    (22050, AIR, "band 'Air' reaches 16000 Hz, but '{path}' is sampled at 22050 Hz and holds frequencies "
                 "up to 11025 Hz only"),
    (44100, Band("Ultra", 20000.0, 24000.0), "reaches 24000 Hz, but '{path}' is sampled at 44100 Hz and holds "
                                             "frequencies up to 22050 Hz only"),
])
def test_a_band_above_what_the_file_holds_is_refused_naming_both_figures(tmp_path, sample_rate, band, expected):
    path = _tone_song(tmp_path, 1000.0, sample_rate)
    with pytest.raises(LatentWalkError) as error:
        pipeline.analyze(path, 30, bands=[MIDS, band])
    assert expected.format(path=path) in str(error.value)


@pytest.mark.parametrize("fps,fps_base", [(24, 1.0), (30, 1.001), (60, 1.0)])
def test_hats_peak_on_their_own_frames_in_a_full_range_band(tmp_path, fps, fps_base):
    rate = fps / fps_base
    frames = np.arange(int(rate * 0.5), int(rate * 9.5), int(rate * 0.37))
    fractions = np.random.default_rng(7).uniform(0, 0.9, len(frames))
    times = synth.click_times_on_frames(rate, frames, fractions)
    song = synth.hats(times, 44100, 10.0) + 0.001 * np.random.default_rng(0).standard_normal(441000).astype(np.float32)
    path = synth.write(tmp_path / "hats.wav", song, 44100)
    air = pipeline.analyze(path, fps, fps_base, bands=[AIR, MIDS]).band("Air")
    peaks = [frame - 1 + int(np.argmax(air[frame - 1 : frame + 6])) for frame in frames]
    assert peaks == list(frames)
