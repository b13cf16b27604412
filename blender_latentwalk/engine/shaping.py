"""Turning raw per-frame measurements into 0..1 curves an artist can use.

Order: level (dB) -> normalised 0..1 by a percentile of local peaks -> threshold
-> gain -> attack/release envelope. Times are in milliseconds so a curve looks the
same at 24 and at 60 fps.
"""

import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import maximum_filter1d

# Levels below this (dB relative to a full-scale signal's mean square) are silence.
SILENCE_DB = -70.0
# A band's 1.0 is never set more than this far below the loudest band's, so a
# band holding only leakage or faint noise is not blown up to full scale.
BAND_HEADROOM_DB = 30.0
# A releasing envelope below this, over silence, is silence.
SNAP_TO_ZERO = 1e-3
# Length of the running-max window that defines "local peaks" for normalisation.
PEAK_WINDOW_S = 0.5
PEAK_PERCENTILE = 90.0


@dataclass(frozen=True)
class ShapeSettings:
    """How one curve is shaped after normalisation.

    gain : multiplies the 0..1 curve (clipped back to 1).
    threshold : values below it become 0; the rest is stretched back to 0..1.
    attack_ms, release_ms : one-pole envelope time constants for rising and
        falling values; 0 follows the signal instantly.
    """

    gain: float = 1.0
    threshold: float = 0.0
    attack_ms: float = 10.0
    release_ms: float = 150.0


BAND_SHAPE = ShapeSettings(attack_ms=0.0)
# Onset is a pulse: keep it sharp; the walk adds its own decay.
ONSET_SHAPE = ShapeSettings(attack_ms=0.0, release_ms=0.0)


def peak_reference(values, frame_rate, silence):
    """The level that maps to 1.0: a high percentile of the running maximum.

    The running max over ``PEAK_WINDOW_S`` turns every local peak into a plateau
    about a second long, so a single spike covers too little of the song to set
    the reference. Only frames whose running max is above ``silence`` count, so
    sparse hits in silence (a click track) are measured against each other.

    Parameters
    ----------
    values : np.ndarray, shape (n_frames,)
    frame_rate : float, frames per second of ``values``
    silence : float, values at or below it are silence

    Returns
    -------
    float, or None when everything is silence
    """
    if len(values) == 0:
        return None
    window = max(1, int(round(PEAK_WINDOW_S * frame_rate)))
    local_peaks = maximum_filter1d(values, size=window, mode="nearest")
    active = local_peaks[local_peaks > silence]
    if len(active) == 0:
        return None
    return float(np.percentile(active, PEAK_PERCENTILE))


def normalise_positive(values, frame_rate):
    """Scale a non-negative measurement (e.g. onset strength) to 0..1.

    values : np.ndarray, shape (n_frames,) -> np.ndarray, shape (n_frames,), float32
    """
    values = np.asarray(values, dtype=np.float64)
    loudest = float(values.max()) if len(values) else 0.0
    # Onset strengths under a thousandth of the strongest are treated as silence.
    reference = peak_reference(values, frame_rate, silence=max(loudest * 1e-3, 1e-12))
    if reference is None:
        return np.zeros(len(values), dtype=np.float32)
    return np.clip(values / reference, 0.0, 1.0).astype(np.float32)


def level_db(mean_square):
    """Mean square -> decibels (re a full-scale signal's mean square of 1).

    mean_square : np.ndarray, shape (n_frames,) -> np.ndarray, shape (n_frames,)
    """
    return 10.0 * np.log10(np.maximum(mean_square, 1e-12))


def normalise_levels(levels_db, frame_rate, range_db=40.0):
    """Map levels in dB to 0..1, each row against its own loud passages.

    A row's 1.0 is `peak_reference` of its own level, but at least
    ``BAND_HEADROOM_DB`` below the loudest row's; 0.0 is ``range_db`` lower, and
    never below `SILENCE_DB`, so silence and near-silent bands stay at zero.

    levels_db : np.ndarray, shape (n_rows, n_frames) -> np.ndarray, same shape, float32
    """
    levels_db = np.atleast_2d(levels_db)
    references = [peak_reference(row, frame_rate, silence=SILENCE_DB) for row in levels_db]
    known = [r for r in references if r is not None]
    loudest_db = max(known) if known else None
    out = np.zeros(levels_db.shape, dtype=np.float32)
    for i, reference_db in enumerate(references):
        if reference_db is None:
            continue
        reference_db = max(reference_db, loudest_db - BAND_HEADROOM_DB)
        floor_db = max(reference_db - range_db, SILENCE_DB)
        out[i] = np.clip((levels_db[i] - floor_db) / (reference_db - floor_db), 0.0, 1.0)
    return out


def envelope(values, attack_ms, release_ms, frame_rate):
    """One-pole attack/release follower, in milliseconds (fps-independent).

    values : np.ndarray, shape (n_frames,) -> np.ndarray, shape (n_frames,), float32
    """
    frame_ms = 1000.0 / frame_rate
    rise = 1.0 if attack_ms <= 0 else 1.0 - math.exp(-frame_ms / attack_ms)
    fall = 1.0 if release_ms <= 0 else 1.0 - math.exp(-frame_ms / release_ms)
    if rise == 1.0 and fall == 1.0:
        return np.asarray(values, dtype=np.float32).copy()
    out = np.empty(len(values), dtype=np.float32)
    level = 0.0  # the song starts from silence
    for i, target in enumerate(np.asarray(values, dtype=np.float64).tolist()):
        if target > level:
            level = target if rise == 1.0 else level + rise * (target - level)  # an instant rise is exact
        else:
            level += fall * (target - level)
        if level < SNAP_TO_ZERO and target == 0.0:
            level = 0.0  # a release reaches silence instead of approaching it forever
        out[i] = level
    return out


def shape(unit_values, settings, frame_rate):
    """Apply threshold, gain and envelope to a 0..1 curve.

    unit_values : np.ndarray, shape (n_frames,) -> np.ndarray, shape (n_frames,), float32
    """
    values = np.asarray(unit_values, dtype=np.float64)
    if settings.threshold > 0.0:
        if settings.threshold >= 1.0:
            values = np.zeros_like(values)
        else:
            values = np.clip((values - settings.threshold) / (1.0 - settings.threshold), 0.0, 1.0)
    values = np.clip(values * settings.gain, 0.0, 1.0)
    return envelope(values, settings.attack_ms, settings.release_ms, frame_rate)
