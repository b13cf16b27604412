"""The prompt schedule from timeline markers."""

import numpy as np
import pytest

from blender_latentwalk.engine import prompts


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
    # 29.97 fps: the blend length is in time, not frames.
    _, slow = prompts.schedule("a", [(1, "b")], frame_start=1, n_frames=40, fps=30000, fps_base=1001, blend_ms=1000)
    blend_frames = 30000 / 1001  # 29.97 frames in one second
    assert slow[29, 1] == pytest.approx(30 / (blend_frames + 1)) and slow[30, 1] == pytest.approx(1.0)
