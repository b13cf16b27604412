"""Frame-exact timing: clicks land on their own frames at every common frame rate."""

import numpy as np
import pytest

import synth
from blender_latentwalk.engine import analysis, timing
from blender_latentwalk.engine.errors import LatentWalkError

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

    onset = analysis.analyze(path, fps, fps_base).onset

    for frame, fraction in zip(frames, fractions):
        window = onset[frame - 3 : frame + 4]
        peak = frame - 3 + int(np.argmax(window))
        allowed = {frame, frame + 1} if fraction >= 0.9 else {frame}
        assert peak in allowed, f"click at frame {frame} + {fraction:.2f} peaked on frame {peak}: {window}"
        assert onset[peak] > 0.5


@pytest.mark.parametrize("fps,fps_base", [(30, 1.001), (24, 1.001)])
def test_ten_minute_song_has_exact_frame_count_and_no_drift(tmp_path, fps, fps_base):
    sample_rate = 8000
    duration_s = 600.0
    rate = fps / fps_base
    last_frame = int((duration_s - 0.5) * rate)  # a click half a second before the end
    times = synth.click_times_on_frames(rate, [10, last_frame], [0.0, 0.02])
    path = synth.write(tmp_path / "long.flac", synth.clicks(times, sample_rate, duration_s), sample_rate)

    features = analysis.analyze(path, fps, fps_base)

    assert features.n_frames == int(np.ceil(duration_s * rate)) == timing.frame_count(duration_s, fps, fps_base)
    assert int(np.argmax(features.onset[last_frame - 5 :])) + last_frame - 5 == last_frame
    assert int(np.argmax(features.onset[:100])) == 10


def test_latency_offset_shifts_curves_by_whole_milliseconds(tmp_path):
    times = synth.click_times_on_frames(30, [30, 60, 90], [0.1, 0.1, 0.1])
    path = synth.write(tmp_path / "c.wav", synth.clicks(times, 44100, 4.0), 44100)
    plain = analysis.analyze(path, 30).onset
    later = analysis.analyze(path, 30, offset_ms=100.0).onset  # 3 frames at 30 fps
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
    onset = analysis.analyze(path, 60).onset
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
