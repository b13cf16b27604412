"""The timing rule of the level curves, on synthesised songs with known truth: frame k of a band curve (and
of the loudness) is the level of frame k's own samples, so a sound steps up on the frame its first sample
falls in and down after the frame its last sample falls in, and a hit peaks on its own frame, at 24, 29.97,
30 and 60 fps, from the 20-60 Hz band to the top one, wherever in its frame the sound starts. With shaping
off the curves follow a zero-phase band-pass's mean square over each frame's own samples at lag 0; the
default shaping only smooths and scales. The onset rests near 0 between hits at 60 fps, and its peaks rise
with the hits' loudness."""

import numpy as np
import pytest
import scipy.signal
from scipy.stats import spearmanr

import synth
from blender_latentwalk.engine.analysis import levels
from blender_latentwalk.engine.analysis import pipeline
from blender_latentwalk.engine.analysis.bands import ANALYSIS_SAMPLE_RATE, DEFAULT_BANDS
from blender_latentwalk.engine.analysis.shaping import BAND_SHAPE, ShapeSettings

SR = 44100
FRAME_RATES = [(24, 1.0), (30, 1.001), (30, 1.0), (60, 1.0)]
SHAPING_OFF = ShapeSettings(attack_ms=0.0, release_ms=0.0)
BANDS = {band.name: band for band in DEFAULT_BANDS}


def _off(bands):
    return [SHAPING_OFF] * len(bands)


def _centre_hz(band):
    return float(np.sqrt(band.low_hz * band.high_hz))


def _frame_times(rate, n_events, first_s, spacing_s, seed):
    """``(frames, fractions, times)`` of events at random positions within frames, one every ``spacing_s``
    (from ``first_s`` on); the first few at a frame's first sample, middle and last tenth."""
    frames = (first_s + spacing_s * np.arange(n_events)) * rate
    frames = frames.astype(int)
    fractions = np.random.default_rng(seed).uniform(0.0, 1.0, n_events)
    fractions[:4] = [0.0, 0.5, 0.85, 0.95]
    return frames, fractions, synth.click_times_on_frames(rate, frames, fractions)


NOTE_FADE_S = 0.005


def _burst(kind, band, length_s, rng):
    """A sound held ``length_s`` in ``band``: a sine at the band's centre faded in and out over
    `NOTE_FADE_S` (as a played note starts and stops: no click of its own, which would sound in every
    band), or band-limited noise, which starts and stops abruptly."""
    n = int(round(length_s * SR))
    if kind == "sine":
        fade = 0.5 - 0.5 * np.cos(np.pi * np.arange(int(NOTE_FADE_S * SR)) / (NOTE_FADE_S * SR))
        envelope = np.ones(n)
        envelope[: len(fade)], envelope[n - len(fade) :] = fade, fade[::-1]
        return 0.5 * np.sin(2 * np.pi * _centre_hz(band) * np.arange(n) / SR) * envelope
    sos = scipy.signal.butter(4, [band.low_hz, min(band.high_hz, 0.45 * SR)], "bandpass", fs=SR, output="sos")
    noise = scipy.signal.sosfilt(sos, rng.standard_normal(n + SR // 10))[SR // 10 :]
    return 0.5 * noise / np.sqrt(np.mean(noise**2) * 2)


def _place(events, times_s, duration_s):
    song = 0.0005 * np.random.default_rng(9).standard_normal(int(duration_s * SR))  # a faint noise floor
    for event, start_s in zip(events, times_s):
        start = int(np.ceil(start_s * SR))
        song[start : start + len(event)] += event[: len(song) - start]
    return song.astype(np.float32)


def _gate_delay_s(band):
    """How long the band's causal gate takes to open (and its anti-causal one closes before a sound's end)."""
    step = levels.envelope_step(ANALYSIS_SAMPLE_RATE)
    return levels.band_filters(((band.low_hz, band.high_hz),), ANALYSIS_SAMPLE_RATE, step * levels.LEVEL_BLOCK_STEPS,
                               step)[0].gate_delay_s


@pytest.mark.parametrize("fps,fps_base", FRAME_RATES)
@pytest.mark.parametrize("band_name,kind", [("Sub", "sine"), ("Bass", "sine"), ("Low Mids", "noise"),
                                            ("Mids", "sine"), ("High Mids", "noise"), ("Brilliance", "noise")])
def test_a_held_sound_steps_up_and_down_on_the_frames_that_hold_its_first_and_last_samples(
        tmp_path, fps, fps_base, band_name, kind):
    band, rate = BANDS[band_name], fps / fps_base
    # A sound's last frame shows it when the sound reaches a tenth into it, or further than its fade-out and
    # the time the band's gates take (about 22 ms at 20-60 Hz, 12 ms at 60-250 Hz, 3-5 ms above).
    end_allowance = max(0.1, (_gate_delay_s(band) + (NOTE_FADE_S if kind == "sine" else 0.0)) * rate)
    length_s, spacing_s = 0.3, 0.6
    frames, fractions, times = _frame_times(rate, 14, 0.5, spacing_s, seed=int(rate * 10) + len(band_name))
    rng = np.random.default_rng(3)
    bursts = [_burst(kind, band, length_s, rng) for _ in times]
    ends = np.ceil(times * SR) / SR + np.array([len(burst) for burst in bursts]) / SR  # the first sample after
    path = synth.write(tmp_path / "held.wav", _place(bursts, times, 0.5 + spacing_s * 15), SR)
    curve = pipeline.analyze(path, fps, fps_base, bands=[band], band_shapes=[SHAPING_OFF]).band(band_name)

    for frame, fraction, end_s in zip(frames, fractions, ends):
        plateau = np.median(curve[frame + 3 : frame + int(0.2 * rate)])
        window = np.round(curve[frame - 2 : frame + 3], 2)
        assert plateau > 0.8, (frame, window)
        # Up on the frame of its first sample (on the next only from the frame's last tenth) ...
        first_up = frame - 2 + int(np.argmax(curve[frame - 2 :] >= 0.5 * plateau))
        assert first_up in ({frame, frame + 1} if fraction >= 0.9 else {frame}), (frame, fraction, window)
        assert curve[frame - 1] < 0.1, (frame, fraction, window)  # never before
        # ... down on the frame after its last sample's (after the one before, when the sound reaches
        # little into its last frame).
        position = end_s * rate
        last_frame = int(np.floor(position - 1.0 / SR * rate + 1e-9))
        last_up = last_frame - 1 + int(np.argmax(curve[last_frame - 1 : last_frame + 3] < 0.5 * plateau)) - 1
        after = np.round(curve[last_frame - 1 : last_frame + 3], 2)
        allowed = {last_frame - 1, last_frame} if position - last_frame < end_allowance else {last_frame}
        assert last_up in allowed, (last_frame, position - last_frame, after)


@pytest.mark.parametrize("fps,fps_base", FRAME_RATES)
def test_a_hit_peaks_on_its_own_frame_in_its_band_and_never_rises_before_it(tmp_path, fps, fps_base):
    # Short decaying hits (a sine for the low bands, noise for the high ones) of known level, anywhere in
    # their frame, each band in turn.
    rate = fps / fps_base
    names = ["Sub", "Bass", "Low Mids", "Mids", "High Mids", "Presence", "Brilliance"]
    frames, fractions, times = _frame_times(rate, 28, 0.5, 0.45, seed=int(rate * 7))
    rng = np.random.default_rng(4)
    hits = []
    for i, start_s in enumerate(times):
        band = BANDS[names[i % len(names)]]
        kind = "sine" if band.high_hz <= 500 else "noise"
        burst = _burst(kind, band, 0.25, rng)
        hits.append(burst * np.exp(-np.arange(len(burst)) / (0.04 * SR)))
    path = synth.write(tmp_path / "hits.wav", _place(hits, times, 0.5 + 0.45 * 29), SR)
    features = pipeline.analyze(path, fps, fps_base, band_shapes=_off(DEFAULT_BANDS))

    for i, (frame, fraction) in enumerate(zip(frames, fractions)):
        curve = features.band(names[i % len(names)])
        window = np.round(curve[frame - 2 : frame + 4], 2)
        peak = frame - 1 + int(np.argmax(curve[frame - 1 : frame + 4]))
        assert peak in ({frame, frame + 1} if fraction >= 0.9 else {frame}), (names[i % 7], frame, fraction, window)
        assert curve[peak] > 0.8, (names[i % 7], frame, window)
        assert curve[frame - 1] <= curve[frame - 2] + 0.02, (names[i % 7], frame, window)


@pytest.mark.parametrize("fps", [24, 60])
def test_a_sound_inside_one_frame_shows_on_that_frame_only(tmp_path, fps):
    # Bursts of 6 ms, each wholly inside one frame (anywhere, from its first sample on, but ending 2 ms
    # before the next frame: the resampler to the analysis rate rings about 1.5 ms after an abrupt end):
    # the mids, the top band and the loudness show them on that frame and on no other.
    frames = np.arange(int(0.5 * fps), int(9.5 * fps), int(0.4 * fps))
    inside = np.random.default_rng(fps).uniform(0.0, 1.0 - 0.008 * fps, len(frames))
    inside[0] = 0.0
    times = synth.click_times_on_frames(fps, frames, inside)
    rng = np.random.default_rng(5)
    bursts = [_burst("noise", BANDS["Mids"], 0.006, rng) + _burst("noise", BANDS["Brilliance"], 0.006, rng)
              for _ in times]
    path = synth.write(tmp_path / "inside.wav", _place(bursts, times, 10.0), SR)
    features = pipeline.analyze(path, fps, band_shapes=_off(DEFAULT_BANDS))
    for curve in (features.band("Mids"), features.band("Brilliance"), features.rms):
        assert np.all(curve[frames] > 0.8), curve[frames]
        assert np.all(curve[frames - 1] < 0.1), curve[frames - 1]
        assert np.all(curve[frames + 1] < 0.1), curve[frames + 1]


def _reference_levels(samples, band, n_frames, rate):
    """A zero-phase band-pass (Butterworth, order 4 each way) mean square over each frame's own samples."""
    sos = scipy.signal.butter(4, [band.low_hz, band.high_hz], "bandpass", fs=SR, output="sos")
    filtered = scipy.signal.sosfiltfilt(sos, samples.astype(np.float64))
    edges = np.minimum(np.ceil(np.arange(n_frames + 1) / rate * SR - 1e-9).astype(int), len(samples))
    cumulative = np.concatenate([[0.0], np.cumsum(filtered**2)])
    return (cumulative[edges[1:]] - cumulative[edges[:-1]]) / np.maximum(np.diff(edges), 1)


def _busy_song(duration_s, seed):
    """Kicks, hats, stabs, held notes and a swelling noise bed, all at random times and levels."""
    rng = np.random.default_rng(seed)
    song = synth.kicks(np.sort(rng.uniform(0, duration_s - 1, 30)), SR, duration_s, 0.6)
    song += synth.hats(np.sort(rng.uniform(0, duration_s - 1, 60)), SR, duration_s, 0.3)
    song += synth.stabs(np.sort(rng.uniform(0, duration_s - 1, 25)), SR, duration_s, 0.15)
    t = np.arange(len(song)) / SR
    for _ in range(40):
        start, length = rng.uniform(0, duration_s - 2), rng.uniform(0.05, 1.0)
        held = (t >= start) & (t < start + length)
        song[held] += (10 ** rng.uniform(-2, -0.3) * np.sin(2 * np.pi * np.exp(rng.uniform(np.log(25), np.log(9000)))
                                                            * t[held])).astype(np.float32)
    song += (0.02 * (1 + np.sin(2 * np.pi * t / 7)) * rng.standard_normal(len(t))).astype(np.float32)
    return song


@pytest.fixture(scope="module")
def busy_song(tmp_path_factory):
    song = _busy_song(30.0, seed=0)
    return song, synth.write(tmp_path_factory.mktemp("busy") / "busy.wav", song, SR)


def _rank_correlation_at(ours, reference, lag):
    """Spearman's rho of ``ours[t + lag]`` against ``reference[t]``."""
    n = min(len(ours), len(reference))
    if lag >= 0:
        return spearmanr(ours[lag:n], reference[: n - lag])[0]
    return spearmanr(ours[: n + lag], reference[-lag:n])[0]


@pytest.mark.parametrize("fps,fps_base", FRAME_RATES)
def test_with_shaping_off_the_bands_follow_each_frame_s_own_mean_square_at_lag_0(busy_song, fps, fps_base):
    samples, path = busy_song
    rate = fps / fps_base
    features = pipeline.analyze(path, fps, fps_base, band_shapes=_off(DEFAULT_BANDS))
    for band in DEFAULT_BANDS:
        reference = _reference_levels(samples, band, features.n_frames, rate)
        ours = features.band(band.name)
        correlations = {lag: _rank_correlation_at(ours, reference, lag) for lag in range(-3, 4)}
        # Measured 0.91-0.99 (two independent references agree at 0.94-0.99 on real music; before the
        # frame-own levels, 0.77-0.97 here, trailing by 1 frame at 24-30 fps and up to 3 at 60 fps).
        assert correlations[0] > 0.88, (band.name, correlations)
        assert max(correlations, key=correlations.get) == 0, (band.name, correlations)


def test_the_default_shaping_only_smooths_and_scales(busy_song):
    # The default band shape (attack 0, a release) rises with the unshaped curve on the very same frames
    # and only holds it up as it falls: never earlier, never above a level the curve reached before.
    _, path = busy_song
    shaped = pipeline.analyze(path, 60).bands
    unshaped = pipeline.analyze(path, 60, band_shapes=_off(DEFAULT_BANDS)).bands
    assert BAND_SHAPE.attack_ms == 0.0 and BAND_SHAPE.release_ms > 0.0
    rising = np.diff(unshaped, axis=1, prepend=0.0) > 0
    assert np.allclose(shaped[rising & (unshaped >= shaped)], unshaped[rising & (unshaped >= shaped)])
    assert np.all(shaped >= unshaped - 1e-6)
    running_peak = np.maximum.accumulate(unshaped, axis=1)
    assert np.all(shaped <= running_peak + 1e-6)
    assert np.abs(shaped - unshaped).max() > 0.1  # (it does smooth)


def _hits(kinds_and_levels, rate, seed, background=1.0):
    """Hits (kind 0: kick, 1: hat, 2: click) at the given levels (dB), one every 0.5 s at random positions in
    their frames, over a held chord, a bass and a noise floor (``background`` times as loud; 0: silence):
    ``(song, frames)``."""
    n_hits = len(kinds_and_levels)
    duration_s = 2.0 + 0.5 * n_hits
    frames = ((1.0 + 0.5 * np.arange(n_hits)) * rate).astype(int)
    fractions = np.random.default_rng(seed).uniform(0.0, 0.9, n_hits)
    times = synth.click_times_on_frames(rate, frames, fractions)
    song = np.zeros(int(duration_s * SR), np.float32)
    for time_s, (kind, level_db) in zip(times, kinds_and_levels):
        hit = (synth.kicks, synth.hats, synth.clicks)[kind]([time_s], SR, duration_s)
        song += (10 ** (level_db / 20) * hit).astype(np.float32)
    if background:
        t = np.arange(len(song)) / SR
        song += background * (0.05 * sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6))
                 + 0.1 * np.sin(2 * np.pi * 55 * t) + 0.01 * np.random.default_rng(1).standard_normal(len(t))
                 ).astype(np.float32)
    return song, frames


def _peaks(onset, frames):
    """Each hit's onset peak: the highest of its frame, the one before and the one after (a kick's or a
    hat's flux may peak a frame after it starts, at 60 fps)."""
    return np.array([onset[frame - 1 : frame + 2].max() for frame in frames])


@pytest.mark.parametrize("fps,fps_base", [(60, 1.0), (24, 1.0)])
def test_between_hits_the_onset_rests_near_0_and_each_hit_stands_out(tmp_path, fps, fps_base):
    rate = fps / fps_base
    hits = [(kind, level) for level in (-6.0, 0.0) for kind in (0, 1, 2)] * 3
    song, frames = _hits(hits, rate, seed=fps)
    onset = pipeline.analyze(synth.write(tmp_path / "hits.wav", song, SR), fps, fps_base).onset
    between = np.ones(len(onset), dtype=bool)
    between[: frames[0]] = False
    for frame in frames:  # a hit's frame, the one before and after it, and its decay (a kick rings 0.3 s)
        between[frame - 1 : frame + int(0.3 * rate)] = False
    # Measured 0.001 at most at both rates (before the floor: a median of 0.10-0.12 and peaks to 0.17-0.18,
    # with 68-184 local peaks of 0.1 or more between 18 hits).
    assert onset[between].max() < 0.03, np.round(np.sort(onset[between])[-5:], 3)
    kinds = np.array([kind for kind, _ in hits])
    peaks = _peaks(onset, frames)
    # Hats and clicks stand out (a kick's flux is weak over a bass: 1-2 of the 24 mel bands rise).
    assert peaks[kinds > 0].min() > 0.3, np.round(peaks, 2)
    clicks = frames[kinds == 2]
    assert all(frame - 1 + int(np.argmax(onset[frame - 1 : frame + 2])) == frame for frame in clicks)


@pytest.mark.parametrize("fps,fps_base", [(60, 1.0), (30, 1.001), (24, 1.0)])
@pytest.mark.parametrize("background", [0.1, 0.0])
def test_onset_peaks_rise_with_the_hit_s_level(tmp_path, fps, fps_base, background):
    # The same hits at rising levels, three of each, anywhere in their frames: over a held chord 20 dB
    # under the loud hits (hats and clicks), or in silence (kicks too): each kind's peaks rise with its level.
    rate = fps / fps_base
    levels_db = [-18.0, -12.0, -6.0, 0.0]
    kinds = [1, 2] if background else [0, 1, 2]
    hits = [(kind, level) for _ in range(3) for level in levels_db for kind in kinds]
    song, frames = _hits(hits, rate, seed=int(rate), background=background)
    onset = pipeline.analyze(synth.write(tmp_path / "levels.wav", song, SR), fps, fps_base).onset
    peaks = _peaks(onset, frames)
    for kind in kinds:
        by_level = [np.median([peak for peak, hit in zip(peaks, hits) if hit == (kind, level)]) for level in levels_db]
        assert np.all(np.diff(by_level) > 0), (kind, np.round(by_level, 3))
