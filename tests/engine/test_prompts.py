"""The prompt schedule from timeline markers."""

import numpy as np
import pytest

from blender_latentwalk.engine.walk import prompts


def test_marker_names():
    assert prompts.marker_prompt("prompt: a city at night ") == "a city at night"
    assert prompts.marker_prompt("Prompt:fog") == "fog"
    assert prompts.marker_prompt("beat") is None


def test_schedule_switches_on_the_marker_frame_without_blend():
    texts, weights = prompts.schedule("sea", [(11, "fire")], frame_start=1, n_frames=20, fps=30, blend_ms=0)
    assert texts == ["sea", "fire"]
    assert weights.shape == (20, 2)
    np.testing.assert_array_equal(weights[:10], [[1, 0]] * 10)  # frames 1..10
    np.testing.assert_array_equal(weights[10:], [[0, 1]] * 10)  # frame 11 on


def test_schedule_blends_over_blend_ms_and_rows_sum_to_one():
    # 30 fps, 300 ms: the new prompt reaches 1 ten frames after its marker.
    texts, weights = prompts.schedule("sea", [(31, "fire"), (11, "sand"), (61, "sea")], frame_start=1,
                                      n_frames=90, fps=30, blend_ms=300)
    assert texts == ["sea", "sand", "fire"]
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-6)
    sand = weights[:, 1]
    assert sand[9] == 0 and 0 < sand[10] < sand[15] < 1 and sand[20] == pytest.approx(1.0)
    assert weights[40, 2] == pytest.approx(1.0)  # fire fully in by frame 41
    assert weights[89, 0] == pytest.approx(1.0)  # back to the sea prompt, the same index


@pytest.mark.parametrize("fps, fps_base", [(24, 1.0), (30000, 1001), (60, 1.0)])
def test_blend_takes_the_same_time_in_seconds_at_any_frame_rate(fps, fps_base):
    # A marker at 2.0 s, blending over 1500 ms: the new prompt is half in at 2.75 s and fully in at 3.5 s.
    rate = fps / fps_base
    marker_frame = 1 + int(round(2.0 * rate))
    _, weights = prompts.schedule("sea", [(marker_frame, "fire")], frame_start=1, n_frames=int(5 * rate), fps=fps,
                                  fps_base=fps_base, blend_ms=1500)
    fire = weights[:, 1]
    seconds_after_marker = (np.arange(len(fire)) + 1 - marker_frame) / rate
    assert np.all(fire[seconds_after_marker < 0] == 0) and np.all(np.diff(fire) >= 0)
    half_in = seconds_after_marker[np.argmax(fire >= 0.5)]
    fully_in = seconds_after_marker[np.argmax(fire >= 1.0 - 1e-6)]
    assert half_in == pytest.approx(0.75, abs=1.0 / rate) and fully_in == pytest.approx(1.5, abs=1.0 / rate)
