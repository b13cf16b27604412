"""Modulation: a render setting that follows a baked curve, without a driver.

A driver on ``scene.latentwalk.diffusion.strength`` that reads
``scene.latentwalk.bands[0].value`` reads its own ID, and Blender reports a
dependency cycle on every update. Modulation does the same arithmetic when the
plan is sampled instead, so nothing in the scene depends on itself::

    value[k] = clip(base[k] + sum_j amount_j[k] * curve_j[k], low, high)

``base`` is the setting as animated (keys, modifiers, drivers included), ``amount``
is animatable too, and several modulations of one setting add up.
"""

from dataclasses import dataclass

import numpy as np

# Plan arrays a modulation may change. Curves it may follow: the onset, the
# loudness, the structure's pulses (beat, bar, drop: 1 on the event, decaying to 0)
# or a band, named by its title.
TARGETS = ("strength", "guidance", "steps", "truncation", "pulse", "speed", "jitter",
           "noise_strength", "rotation_deg", "translate_x", "translate_y")  # the last four: StyleGAN only
WHOLE_NUMBER_TARGETS = ("steps",)
ONSET, LOUDNESS, BAND_PREFIX = "onset", "rms", "band:"
BEAT, BAR, DROP = "beat", "bar", "drop"


@dataclass(frozen=True)
class Range:
    """The values a setting accepts: what Blender's property allows (its hard limits)."""

    low: float
    high: float


def curve_key_for_band(title):
    return BAND_PREFIX + title


def band_title(curve_key):
    """The band title a curve key names, or None for the onset, loudness, beat, bar and drop."""
    return curve_key[len(BAND_PREFIX):] if curve_key.startswith(BAND_PREFIX) else None


def apply(base, offsets, value_range, whole_numbers=False):
    """The modulated setting.

    base : np.ndarray, shape (n_frames,), the setting as animated
    offsets : np.ndarray, shape (n_frames,), the sum of amount x curve over its modulations
    Returns float32 of shape (n_frames,), inside ``value_range`` (rounded first for whole numbers).
    """
    value = np.asarray(base, np.float64) + np.asarray(offsets, np.float64)
    if whole_numbers:
        value = np.round(value)
    return np.clip(value, value_range.low, value_range.high).astype(np.float32)
