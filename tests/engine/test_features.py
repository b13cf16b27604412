"""What the curves mean: bands follow their own frequencies, shaping is in ms,
silence is zero, every format and channel layout reads the same."""

import numpy as np
import pytest

import synth
from blender_latentwalk.engine.analysis import pipeline
from blender_latentwalk.engine.analysis import shaping
from blender_latentwalk.engine.analysis.bands import DEFAULT_BANDS, Band

BAND_NAMES = [b.name for b in DEFAULT_BANDS]


def _tone_song(tmp_path, frequency_hz, sample_rate=44100):
    # 2 s silence, 4 s tone, 2 s silence.
    signal = np.concatenate([np.zeros(2 * sample_rate), synth.tone(frequency_hz, sample_rate, 4.0),
                             np.zeros(2 * sample_rate)]).astype(np.float32)
    return synth.write(tmp_path / f"tone{frequency_hz}.wav", signal, sample_rate)


@pytest.mark.parametrize("frequency_hz,band", [(100.0, "Bass"), (1000.0, "Mids"), (8000.0, "Brilliance")])
def test_tone_raises_its_band_and_not_the_far_bands(tmp_path, frequency_hz, band):
    features = pipeline.analyze(_tone_song(tmp_path, frequency_hz), 30)
    during, before = slice(75, 165), slice(0, 55)
    own = BAND_NAMES.index(band)
    assert features.bands[own][during].mean() > 0.9
    assert features.bands[own][before].max() == 0.0
    for index in range(len(BAND_NAMES)):
        if abs(index - own) >= 2:  # far bands: not even a neighbour
            assert features.bands[index].max() < 0.05, (BAND_NAMES[index], features.bands[index].max())


def test_chroma_follows_the_pitch_class(tmp_path):
    features = pipeline.analyze(_tone_song(tmp_path, 440.0), 30)  # A4
    during = features.chroma[75:165]
    assert np.all(np.argmax(during, axis=1) == 9)  # C=0 ... A=9
    assert features.chroma[:55].max() == 0.0


def test_pure_silence_gives_all_zero_curves_without_nan(tmp_path):
    path = synth.write(tmp_path / "silence.wav", np.zeros(44100 * 3, np.float32), 44100)
    features = pipeline.analyze(path, 24)
    for curve in (features.bands, features.onset, features.rms, features.chroma):
        assert np.all(np.isfinite(curve)) and np.all(curve == 0.0)
    assert len(features.beats) == 0


@pytest.mark.parametrize("suffix", ["wav", "flac", "ogg", "mp3"])
def test_formats_channels_and_rates_agree(tmp_path, suffix):
    sample_rate = 32000 if suffix != "mp3" else 44100  # mp3 encoders support fewer rates
    # Clicks a third into frames 15, 30, 45: lossy codecs smear a hit by a few ms.
    mono = synth.clicks([15.3 / 30, 30.3 / 30, 45.3 / 30], sample_rate, 2.0) + synth.tone(200, sample_rate, 2.0, 0.2)
    reference = pipeline.analyze(synth.write(tmp_path / "ref.wav", mono, sample_rate), 30)
    stereo = np.stack([mono, mono], axis=1)
    path = synth.write(tmp_path / f"song.{suffix}", stereo, sample_rate)
    features = pipeline.analyze(path, 30)
    assert features.n_frames == reference.n_frames == 60
    assert [int(np.argmax(features.onset[f - 3: f + 4])) + f - 3 for f in (15, 30, 45)] == [15, 30, 45]
    assert np.abs(features.band("Bass") - reference.band("Bass")).max() < 0.1


def test_multichannel_and_odd_sample_rate(tmp_path):
    sample_rate = 11025
    signal = synth.tone(150, sample_rate, 2.0)
    six_channels = np.stack([signal] + [np.zeros_like(signal)] * 5, axis=1)
    path = synth.write(tmp_path / "surround.wav", six_channels, sample_rate)
    # The file holds frequencies up to 5512 Hz: bands above that are refused (test_full_range_bands).
    features = pipeline.analyze(path, 25, bands=[b for b in DEFAULT_BANDS if b.high_hz <= sample_rate / 2])
    assert features.n_frames == 50
    assert features.band("Bass")[10:40].mean() > 0.9


def test_one_spike_does_not_flatten_the_rest(tmp_path):
    sample_rate = 22050
    rng = np.random.default_rng(0)
    beat = synth.clicks(np.arange(0.25, 20, 0.5), sample_rate, 20.0, amplitude=0.3)
    beat += 0.01 * rng.standard_normal(len(beat)).astype(np.float32)
    spiky = beat.copy()
    spiky[int(10.1 * sample_rate)] = 1.0  # one huge single-sample spike
    normal = pipeline.analyze(synth.write(tmp_path / "a.wav", beat, sample_rate), 30).onset
    spiked = pipeline.analyze(synth.write(tmp_path / "b.wav", spiky, sample_rate), 30).onset
    hits = [int(t * 30) for t in np.arange(0.25, 20, 0.5)]
    assert np.median(spiked[hits]) > 0.8 * np.median(normal[hits])


def test_envelope_is_the_same_in_milliseconds_at_any_fps():
    # A unit step that ends: time to fall below half must be the same in ms.
    def half_life_ms(frames_per_s):
        step = np.r_[np.ones(int(frames_per_s)), np.zeros(int(frames_per_s))]
        out = shaping.envelope(step, attack_ms=0.0, release_ms=200.0, frames_per_s=frames_per_s)
        return (np.argmax(out[int(frames_per_s):] < 0.5) + 1) * 1000.0 / frames_per_s

    assert abs(half_life_ms(24) - half_life_ms(120)) <= 1000.0 / 24
    assert 100 < half_life_ms(120) < 170  # 200 ms * ln 2 = 139 ms


def test_gain_and_threshold():
    values = np.linspace(0, 1, 11)
    shaped = shaping.shape(values, shaping.ShapeSettings(gain=2.0, threshold=0.5, attack_ms=0, release_ms=0), 30)
    assert np.allclose(shaped[:6], 0.0) and np.allclose(shaped[8:], 1.0)


def test_custom_bands_are_keyed_by_name(tmp_path):
    path = _tone_song(tmp_path, 100.0)
    features = pipeline.analyze(path, 30, bands=[Band("kick", 40, 160), Band("hats", 6000, 11000)])
    assert features.band_names == ["kick", "hats"]
    assert features.band("kick").max() > 0.9 and features.band("hats").max() < 0.05


def test_high_frame_rates_have_no_empty_frames(tmp_path):
    path = synth.write(tmp_path / "steady.wav", synth.tone(440, 22050, 3.0), 22050)
    for fps in (120, 240):
        features = pipeline.analyze(path, fps)
        steady = slice(int(0.3 * fps), int(2.7 * fps))
        assert features.rms[steady].min() > 0.9, fps
        assert features.band("Low Mids")[steady].min() > 0.9, fps
        assert np.all(features.chroma[steady].max(axis=1) > 0.9), fps


def test_band_energy_never_anticipates_a_note(tmp_path):
    sample_rate = 22050
    start_frame = 30
    silence = np.zeros(int(start_frame / 30 * sample_rate), np.float32)
    note = synth.tone(100, sample_rate, 2.0, fade_s=0.0)
    path = synth.write(tmp_path / "note.wav", np.concatenate([silence, note]), sample_rate)
    features = pipeline.analyze(path, 30, band_shapes=[shaping.ShapeSettings(attack_ms=0, release_ms=0)] * 7)
    assert features.band("Bass")[: start_frame].max() == 0.0
    assert features.rms[: start_frame].max() == 0.0
    assert features.band("Bass")[start_frame + 3] > 0.9


def test_beats_land_on_the_hits(tmp_path):
    rate = 30
    frames = np.arange(15, 15 * 38, 15)  # 120 BPM
    for fraction in (0.05, 0.5):
        times = synth.click_times_on_frames(rate, frames, np.full(len(frames), fraction))
        path = synth.write(tmp_path / f"beat{fraction}.wav", synth.clicks(times, 44100, 20.0), 44100)
        beats = pipeline.analyze(path, rate).beats
        on_hit = np.isin(beats, frames)
        assert len(beats) >= 30 and on_hit.mean() >= 0.95, (fraction, beats)


def test_band_names_cannot_shadow_file_keys():
    with pytest.raises(Exception, match="reserved"):
        pipeline.analyze("unused.wav", 30, bands=[Band("chroma.npy", 1, 2)])
    with pytest.raises(Exception, match="reserved"):
        pipeline.analyze("unused.wav", 30, bands=[Band("bands", 1, 2)])


def test_filter_banks_are_librosas_and_cached(tmp_path, monkeypatch):
    import librosa

    from blender_latentwalk.engine.analysis import filterbanks

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = filterbanks.chroma(22050, 2048)
    np.testing.assert_allclose(first, librosa.filters.chroma(sr=22050, n_fft=2048, tuning=0.0, norm=None), rtol=1e-6)
    cached = list((tmp_path / "blender_latentwalk" / "filterbanks").iterdir())
    assert len(cached) == 1 and "librosa" in cached[0].name
    np.testing.assert_array_equal(filterbanks.chroma(22050, 2048), first)
    mel = filterbanks.mel(22050, 256, 24)
    np.testing.assert_allclose(mel, librosa.filters.mel(sr=22050, n_fft=256, n_mels=24), rtol=1e-6)
