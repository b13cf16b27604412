"""Frame-exact timing: clicks, kicks, hats and stabs land on their own frames at every common frame rate,
in the onset curve and in every band curve."""

import numpy as np
import pytest

import synth
from blender_latentwalk.engine.analysis import pipeline
from blender_latentwalk.engine.analysis import timing
from blender_latentwalk.engine.errors import LatentWalkError
from blender_latentwalk.engine.analysis.bands import Band

FRAME_RATES = [(24, 1.0), (30, 1.001), (30, 1.0), (60, 1.0)]


@pytest.mark.parametrize("fps,fps_base", FRAME_RATES)
@pytest.mark.parametrize("sample_rate", [44100, 48000])
def test_each_click_peaks_on_its_own_frame(tmp_path, fps, fps_base, sample_rate):
    rate = fps / fps_base
    frames = np.arange(6, int(12 * rate), int(rate * 0.37))
    # Everywhere in the frame, including its first sample and its last 10 %.
    fractions = np.random.default_rng(fps).uniform(0, 1, len(frames))
    fractions[:6] = [0.0, 0.01, 0.5, 0.85, 0.89, 0.97]
    times = synth.click_times_on_frames(rate, frames, fractions)
    path = synth.write(tmp_path / "clicks.wav", synth.clicks(times, sample_rate, 13.0), sample_rate)

    onset = pipeline.analyze(path, fps, fps_base).onset

    for frame, fraction in zip(frames, fractions):
        window = onset[frame - 3 : frame + 4]
        peak = frame - 3 + int(np.argmax(window))
        allowed = {frame, frame + 1} if fraction >= 0.9 else {frame}
        assert peak in allowed, f"click at frame {frame} + {fraction:.2f} peaked on frame {peak}: {window}"
        assert onset[peak] > 0.5


def _peak_frame(curve, frame):
    """The first frame at the curve's highest value from the frame before ``frame`` on."""
    return frame - 1 + int(np.argmax(curve[frame - 1 : frame + 6]))


@pytest.mark.parametrize("fps,fps_base", FRAME_RATES)
def test_kicks_hats_and_stabs_peak_on_their_own_frames_in_every_band_curve(tmp_path, fps, fps_base):
    # One song: kicks, hats and chord stabs take turns, each at a random point of its
    # frame (first sample and last 10 % included), over a quiet noise floor.
    sample_rate, duration_s = 44100, 20.0
    rate = fps / fps_base
    frames = np.arange(int(rate * 0.5), int(rate * (duration_s - 0.5)), int(rate * 0.31))
    fractions = np.random.default_rng(int(rate * 100)).uniform(0, 1, len(frames))
    fractions[:9] = [0.0, 0.0, 0.0, 0.5, 0.5, 0.5, 0.89, 0.88, 0.86]
    times = synth.click_times_on_frames(rate, frames, fractions)
    kinds = np.arange(len(frames)) % 3
    song = (synth.kicks(times[kinds == 0], sample_rate, duration_s)
            + synth.hats(times[kinds == 1], sample_rate, duration_s)
            + synth.stabs(times[kinds == 2], sample_rate, duration_s)
            + 0.001 * np.random.default_rng(0).standard_normal(int(duration_s * sample_rate)).astype(np.float32))
    features = pipeline.analyze(synth.write(tmp_path / "beat.wav", song, sample_rate), fps, fps_base)

    band_of_kind = {0: "Bass", 1: "Brilliance", 2: "Mids"}
    for frame, fraction, kind in zip(frames, fractions, kinds):
        allowed = {frame, frame + 1} if fraction >= 0.9 else {frame}
        for name, curve in ((band_of_kind[kind], features.band(band_of_kind[kind])), ("loudness", features.rms)):
            peak = _peak_frame(curve, frame)
            window = np.round(curve[frame - 3 : frame + 6], 2)
            assert peak in allowed, f"{name}: event at frame {frame} + {fraction:.2f} peaked on {peak}: {window}"
            assert curve[peak] > 0.5, (name, frame, window)
            # Never early: nothing rises in the frame before the event's.
            assert curve[frame - 1] <= curve[frame - 2] + 0.02, f"{name} rose before frame {frame}: {window}"


@pytest.mark.parametrize("fps,fps_base", FRAME_RATES)
def test_a_hat_just_after_a_kick_is_not_pulled_onto_the_kick(tmp_path, fps, fps_base):
    # The kick's window reaches the hat 55 ms later; the hat still counts from its own frame.
    rate = fps / fps_base
    kick_frames = np.arange(12, int(rate * 9), int(rate * 0.5))
    kick_times = synth.click_times_on_frames(rate, kick_frames, 0.2)
    hat_times = kick_times + 0.055
    hat_frames = np.floor(hat_times * rate + 1e-9).astype(int)
    late_in_frame = hat_times * rate - hat_frames >= 0.9
    song = synth.kicks(kick_times, 44100, 10.0) + synth.hats(hat_times, 44100, 10.0)
    features = pipeline.analyze(synth.write(tmp_path / "kick_hat.wav", song, 44100), fps, fps_base)
    for kick_frame, hat_frame, late in zip(kick_frames, hat_frames, late_in_frame):
        high = features.band("Brilliance")  # (falling from the previous hat until this one)
        assert np.all(np.diff(high[kick_frame - 2 : hat_frame]) <= 0.0), high[kick_frame - 2 : hat_frame + 2]
        assert _peak_frame(high, hat_frame) in ({hat_frame, hat_frame + 1} if late else {hat_frame})
        assert _peak_frame(features.band("Bass"), kick_frame) == kick_frame


@pytest.mark.parametrize("sample_rate", [44100, 48000])
def test_hits_on_a_frame_s_first_sample_in_silence_are_not_credited_to_the_frame_before(tmp_path, sample_rate):
    # Resampling to the analysis rate rings a little before a sharp hit: under a
    # millisecond, but enough to cross a frame boundary if taken for the hit.
    frames = np.arange(10, 280, 9)
    times = synth.click_times_on_frames(30, frames, 0.0)
    song = synth.clicks(times, sample_rate, 10.0) + synth.hats(times, sample_rate, 10.0)
    features = pipeline.analyze(synth.write(tmp_path / "edges.wav", song, sample_rate), 30)
    for curve in (features.band("Brilliance"), features.band("Presence"), features.rms):
        assert np.all(curve[frames - 1] <= curve[frames - 2]), curve[frames - 2] - curve[frames - 1]
        assert np.all(curve[frames] > curve[frames - 1] + 0.3)


@pytest.mark.parametrize("fps", [24, 30, 60])
def test_the_demo_song_s_kicks_and_hats_land_on_the_beat(tmp_path, fps):
    # Kick and hat on every beat (every 0.5 s, on a frame's first sample), a held bass
    # and chords: the bass band and the high band peak on the beat's frame.
    from demo_song import synthesise_song

    path = str(tmp_path / "demo.wav")
    synthesise_song(path, 12.0)
    features = pipeline.analyze(path, fps)
    beat_frames = (np.arange(1.0, 11.5, 0.5) * fps).round().astype(int)
    for name in ("Bass", "Brilliance"):
        curve = features.band(name)
        peaks = [frame - 1 + int(np.argmax(curve[frame - 1 : frame + fps // 5])) for frame in beat_frames]
        assert peaks == list(beat_frames), (name, np.array(peaks) - beat_frames)


@pytest.mark.parametrize("fps", [24, 60])
def test_anchoring_to_hits_does_not_make_steady_noise_jumpier(tmp_path, monkeypatch, fps):
    noise = 0.1 * np.random.default_rng(5).standard_normal(20 * 44100).astype(np.float32)
    path = synth.write(tmp_path / "noise.wav", noise, 44100)
    steady = slice(2 * fps, 18 * fps)
    hit_times = []
    monkeypatch.setattr(pipeline.aggregate, "credit_hits", _recording(pipeline.aggregate.credit_hits, hit_times))
    anchored = pipeline.analyze(path, fps).bands[:, steady]
    assert len(hit_times[0]) >= 1  # noise does hold a hit that a band could be credited with
    monkeypatch.setattr(pipeline, "ANCHOR_RISE_RATIO", np.inf)  # no band is ever anchored
    plain = pipeline.analyze(path, fps).bands[:, steady]
    # Frame-to-frame changes: at most 15 % larger, band by band, and no new jumps.
    ratio = np.diff(anchored, axis=1).std(axis=1) / np.diff(plain, axis=1).std(axis=1)
    assert ratio.max() < 1.15, ratio
    assert np.abs(np.diff(anchored, axis=1)).max() < 1.3 * np.abs(np.diff(plain, axis=1)).max()
    assert abs(anchored.mean() - plain.mean()) < 0.02


def _recording(function, calls):
    """``function``, recording the hit times (its second argument) of each call in ``calls``."""

    def record(per_frame, hit_times_s, *args, **kwargs):
        calls.append(np.asarray(hit_times_s))
        return function(per_frame, hit_times_s, *args, **kwargs)

    return record


@pytest.mark.parametrize("fps,fps_base", [(30, 1.001), (24, 1.001)])
def test_ten_minute_song_has_exact_frame_count_and_no_drift(tmp_path, fps, fps_base):
    sample_rate = 8000
    duration_s = 600.0
    rate = fps / fps_base
    last_frame = int((duration_s - 0.5) * rate)  # a click half a second before the end
    times = synth.click_times_on_frames(rate, [10, last_frame], [0.0, 0.02])
    path = synth.write(tmp_path / "long.flac", synth.clicks(times, sample_rate, duration_s), sample_rate)

    features = pipeline.analyze(path, fps, fps_base, bands=[Band("Bass", 60.0, 250.0)])  # the file holds < 4 kHz

    assert features.n_frames == int(np.ceil(duration_s * rate)) == timing.frame_count(duration_s, fps, fps_base)
    assert int(np.argmax(features.onset[last_frame - 5 :])) + last_frame - 5 == last_frame
    assert int(np.argmax(features.onset[:100])) == 10


def test_latency_offset_shifts_curves_by_whole_milliseconds(tmp_path):
    times = synth.click_times_on_frames(30, [30, 60, 90], [0.1, 0.1, 0.1])
    path = synth.write(tmp_path / "c.wav", synth.clicks(times, 44100, 4.0), 44100)
    plain = pipeline.analyze(path, 30).onset
    later = pipeline.analyze(path, 30, offset_ms=100.0).onset  # 3 frames at 30 fps
    assert [int(np.argmax(plain[f - 2 : f + 3])) + f - 2 for f in (30, 60, 90)] == [30, 60, 90]
    assert [int(np.argmax(later[f + 1 : f + 6])) + f + 1 for f in (30, 60, 90)] == [33, 63, 93]


def test_frame_index_arithmetic_is_exact_at_ntsc_rates():
    # Frame k starts at k * 1.001 / 30 s; the start of every frame maps to itself.
    k = np.arange(0, 30 * 600)
    assert np.array_equal(timing.frames_of_times(k * 1.001 / 30, 30, 1.001), k)
    assert timing.frame_count(1.001, 30, 1.001) == 30


def test_quiet_clicks_also_land_on_their_frames_at_60_fps(tmp_path):
    frames = np.arange(10, 1100, 12)
    fractions = np.linspace(0.0, 0.9, len(frames))
    times = synth.click_times_on_frames(60, frames, fractions)
    path = synth.write(tmp_path / "quiet.wav", synth.clicks(times, 44100, 20.0, amplitude=0.03), 44100)
    onset = pipeline.analyze(path, 60).onset
    peaks = [frame - 3 + int(np.argmax(onset[frame - 3 : frame + 4])) for frame in frames]
    assert peaks == list(frames)


@pytest.mark.parametrize("text, fps, fps_base", [
    ("24", 24, 1.0), ("29.97", 30, 1.001), ("23.976", 24, 1.001), ("23.98", 24, 1.001), ("59.94", 60, 1.001),
    ("30000/1001", 30, 1.001), ("24000/1001", 24, 1.001), ("12.5", 12, 0.96), ("25/2", 12, 0.96),
])
def test_typed_frame_rates_become_blenders_fps_and_base(text, fps, fps_base):
    # As Blender's own presets set them: 29.97 is fps 30 with base 1.001, and a click
    # 10 minutes in still lands on the frame that rate puts it on.
    got_fps, got_base = timing.blender_frame_rate(text)
    assert (got_fps, got_base) == (fps, pytest.approx(fps_base, abs=1e-12))
    assert isinstance(got_fps, int)
    ten_minutes = timing.frames_of_times([600.0], got_fps, got_base)[0]
    assert ten_minutes == int(600 * fps / fps_base + 1e-9)


@pytest.mark.parametrize("text", ["0", "-24", "fast", "30/0", ""])
def test_unusable_frame_rates_are_refused_saying_what_to_give(text):
    with pytest.raises(LatentWalkError, match="is not a positive number: give e.g. 24, 29.97"):
        timing.blender_frame_rate(text)
