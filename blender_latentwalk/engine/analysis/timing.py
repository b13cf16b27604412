"""Video-frame timing.

Frame ``k`` covers ``[k, k + 1) * fps_base / fps`` seconds after the audio starts,
shifted by a latency offset. Everything here is float64 arithmetic on absolute
times (never an accumulated step), so a 10-minute song drifts by zero frames at
29.97 or 23.976 fps.
"""

import math

import numpy as np

from ..errors import LatentWalkError

# Guards floor() against products like 2.9999999999999996 that are exactly 3 in
# rational arithmetic (a click placed on a frame boundary must stay on it).
_EPS_FRAMES = 1e-9


def check_fps(fps, fps_base=1.0):
    """Raise a ``LatentWalkError`` unless ``fps / fps_base`` is a usable frame rate."""
    if not (fps > 0 and math.isfinite(fps)):
        raise LatentWalkError(
            f"fps is {fps}: it must be a positive number of frames per second "
            "(e.g. 24, 30 or 60; for 29.97 use fps 30 with fps_base 1.001)."
        )
    if not (fps_base > 0 and math.isfinite(fps_base)):
        raise LatentWalkError(
            f"fps_base is {fps_base}: it must be positive (1.0, or 1.001 for 29.97 / 23.976)."
        )


def frames_per_second(fps, fps_base=1.0):
    """The effective frame rate, ``fps / fps_base`` (e.g. 30 / 1.001 = 29.97)."""
    check_fps(fps, fps_base)
    return fps / fps_base


def frame_count(duration_s, fps, fps_base=1.0):
    """Number of video frames that cover ``duration_s``: ``ceil(duration * fps / fps_base)``."""
    rate = frames_per_second(fps, fps_base)
    return int(math.ceil(duration_s * rate - _EPS_FRAMES))


def frames_of_times(times_s, fps, fps_base=1.0, offset_ms=0.0):
    """Video frame index of each time.

    Parameters
    ----------
    times_s : np.ndarray, shape (n,)
        Times in seconds from the start of the audio.
    offset_ms : float
        Latency offset; positive values make the curves react later.

    Returns
    -------
    np.ndarray, shape (n,), int64
    """
    rate = frames_per_second(fps, fps_base)
    shifted = (np.asarray(times_s, dtype=np.float64) + offset_ms / 1000.0) * rate
    return np.floor(shifted + _EPS_FRAMES).astype(np.int64)


# NTSC rates: Blender writes 29.97 as fps 30 with fps_base 1.001 (and 23.976, 59.94 alike).
_NTSC_BASE = 1.001
_NTSC_TOLERANCE_FPS = 0.005  # "23.98" and "23.976" both mean 24 / 1.001, as in Blender's presets


def blender_frame_rate(text):
    """A frame rate as typed ("30", "29.97", "23.976", "30000/1001", "12.5") -> ``(fps, fps_base)``.

    Returns Blender's pair: an integer ``fps`` and a float ``fps_base`` with
    ``fps / fps_base`` the rate; NTSC rates get fps_base 1.001 like Blender's presets.
    """
    from fractions import Fraction

    try:
        rate = Fraction(str(text).strip())
    except (ValueError, ZeroDivisionError):
        rate = None
    if rate is None or rate <= 0:
        raise LatentWalkError(f"frame rate '{text}' is not a positive number: give e.g. 24, 29.97, 23.976, "
                              "59.94 or a fraction such as 30000/1001.")
    if rate.denominator == 1:
        return int(rate), 1.0
    ntsc_fps = round(rate * Fraction(1001, 1000))
    if ntsc_fps >= 1 and abs(rate - Fraction(ntsc_fps * 1000, 1001)) < _NTSC_TOLERANCE_FPS:
        return int(ntsc_fps), _NTSC_BASE
    fps = max(1, round(rate))
    return int(fps), float(fps / rate)
