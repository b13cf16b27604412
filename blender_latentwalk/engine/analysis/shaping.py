"""Turning raw per-video-frame measurements into 0..1 curves an artist can use.

Order: level (dB) -> normalised 0..1 by a percentile of local peaks -> threshold
-> gain -> attack/release envelope. Times are in milliseconds so a curve looks the
same at 24 and at 60 fps. `band_curves`, `loudness_curve`, `chroma_curve` and
`onset_curve` turn the per-video-frame measurements (`aggregate`) into the Features' curves.
"""

import math
from dataclasses import dataclass

import numpy as np

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
# Normalisation: over the whole song (quiet passages stay low: the default), or over
# a window of N seconds around each frame (each passage against its own loud moments).
NORMALISE_MODES = ("song", "window")
DEFAULT_NORMALISE = "song"
DEFAULT_NORMALISE_WINDOW_S = 10.0
MIN_NORMALISE_WINDOW_S = 1.0
LOCAL_REFERENCE_STEP_S = 0.25
# The onset: a frame pulses as loud as the song is on it, in so far as it holds a hit. Between hits a steady
# sound's flux still flickers (noise, beating partials, vibrato), each frame's strongest on a floor, higher
# the shorter the frame: the floor is `ONSET_FLOOR_RATIO` times a low percentile of the frames around
# (robust to hits in three frames of four), or of `ONSET_FLOOR_MIN_DB` where that is higher, and a frame is
# a hit by how far it rises above it; sure of it `ONSET_SURE_RISE` times that percentile higher. Measured
# on a held chord, a bass and noise with hits of -30..0 dB at 24 and 60 fps: steady frames' 95th and 99th
# percentiles at 1.7-2.0 and 2.2-2.4 times their 25th (0.15-0.19 dB a hop), the hits' median 0.67 dB.
ONSET_FLOOR_WINDOW_S = 1.0
ONSET_FLOOR_PERCENTILE = 25.0
ONSET_FLOOR_RATIO = 1.5
ONSET_FLOOR_MIN_DB = 0.25
ONSET_SURE_RISE = 1.0
# A hit is then weighed against the hits of the few seconds around it (a dense drop's hits have weaker flux
# than a sparse intro's; the whole song's, times the share, is the least reference): one at least
# `ONSET_FULL_SHARE` as strong pulses at the song's loudness on its frame, a weaker rise in proportion. A
# quarter keeps a held chord's beating (a tenth of a click's rise) low while the heights of real hits follow
# their loudness (Spearman 0.68 against essentia's RMS of the 50 ms after each onset on 8 tracks; 0.52 at a
# half; 0.22 before, each hit against the hits around without a floor).
ONSET_CONTEXT_S = 6.0
ONSET_CONTEXT_SONG_SHARE = 0.3
ONSET_FULL_SHARE = 0.25


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


def running_max(values, size):
    """The maximum of the ``size`` values around each (scipy.ndimage.maximum_filter1d, mode "nearest").

    values : np.ndarray, shape (n,) -> np.ndarray, shape (n,). Entry ``i`` is the maximum of
    ``values[i - size // 2 : i - size // 2 + size]``, the ends repeated. Van Herk / Gil-Werman:
    running maxima forward and backward within blocks of ``size``, so it costs O(n) for any
    size; written here because importing scipy.ndimage costs a tenth of a second per process.
    """
    values = np.asarray(values)
    n = len(values)
    if n == 0 or size <= 1:
        return values.copy()
    half = size // 2
    blocks = -(-(n + size - 1) // size)
    padded = np.pad(values, (half, blocks * size - n - half), mode="edge").reshape(blocks, size)
    backward = np.maximum.accumulate(padded[:, ::-1], axis=1)[:, ::-1].ravel()
    forward = np.maximum.accumulate(padded, axis=1, out=padded).ravel()  # in place: two arrays at most
    return np.maximum(backward[:n], forward[size - 1 : size - 1 + n], out=backward[:n])


def _active_local_peaks(values, frames_per_s, silence):
    """Running max over `PEAK_WINDOW_S`, NaN where it is silence. Shape (n_frames,)."""
    window = max(1, int(round(PEAK_WINDOW_S * frames_per_s)))
    local_peaks = running_max(np.asarray(values, dtype=np.float64), window)
    return np.where(local_peaks > silence, local_peaks, np.nan)


def peak_reference(values, frames_per_s, silence):
    """The level that maps to 1.0: a high percentile of the running maximum.

    The running max over ``PEAK_WINDOW_S`` turns every local peak into a plateau
    about a second long, so a single spike covers too little of the song to set
    the reference. Only frames whose running max is above ``silence`` count, so
    sparse hits in silence (a click track) are measured against each other.

    Parameters
    ----------
    values : np.ndarray, shape (n_frames,)
    frames_per_s : float, frames per second of ``values``
    silence : float, values at or below it are silence

    Returns
    -------
    float, or None when everything is silence
    """
    if len(values) == 0:
        return None
    active = _active_local_peaks(values, frames_per_s, silence)
    active = active[np.isfinite(active)]
    if len(active) == 0:
        return None
    return float(np.percentile(active, PEAK_PERCENTILE))


def local_peak_reference(values, frames_per_s, silence, window_s):
    """`peak_reference` of the ``window_s`` seconds around each frame.

    Measured every `LOCAL_REFERENCE_STEP_S` and interpolated between; a stretch
    whose whole window is silence has no reference (NaN).

    values : np.ndarray, shape (n_frames,) -> np.ndarray, shape (n_frames,), float64
    """
    n = len(values)
    if n == 0:
        return np.zeros(0)
    active = _active_local_peaks(values, frames_per_s, silence)
    half = max(1, int(round(window_s * frames_per_s / 2)))
    step = max(1, int(round(LOCAL_REFERENCE_STEP_S * frames_per_s)))
    centres = np.unique(np.append(np.arange(0, n, step), n - 1))
    padded = np.concatenate([np.full(half, np.nan), active, np.full(half, np.nan)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)
    references = np.full(len(centres), np.nan)
    for start in range(0, len(centres), 256):  # bounded memory for hour-long songs
        chunk = windows[centres[start : start + 256]]
        finite = np.isfinite(chunk)
        has_all, has_any = finite.all(axis=1), finite.any(axis=1)
        out = references[start : start + 256]
        # Whole windows in one vectorised call; nanpercentile goes row by row, for the others.
        if has_all.any():
            out[has_all] = np.percentile(chunk[has_all], PEAK_PERCENTILE, axis=1)
        partial = has_any & ~has_all
        if partial.any():
            out[partial] = np.nanpercentile(chunk[partial], PEAK_PERCENTILE, axis=1)
    known = np.isfinite(references)
    if not known.any():
        return np.full(n, np.nan)
    interpolated = np.interp(np.arange(n), centres[known], references[known])
    # Where a whole window is silent the reference is unknown, not borrowed from far away.
    nearest = np.minimum(np.round(np.arange(n) / step).astype(np.int64), len(centres) - 1)
    interpolated[~known[nearest]] = np.nan
    return interpolated


def _references(values, frames_per_s, silence, window_s):
    """Per-frame reference, shape (n_frames,): the song's (``window_s`` None) or a window's. NaN: none."""
    if window_s is None:
        reference = peak_reference(values, frames_per_s, silence)
        return np.full(len(values), np.nan if reference is None else reference)
    return local_peak_reference(values, frames_per_s, silence, window_s)


def check_normalisation(mode, window_s):
    """Raise a ``LatentWalkError`` unless ``mode`` is one of `NORMALISE_MODES` with a usable window."""
    from ..errors import LatentWalkError

    if mode not in NORMALISE_MODES:
        raise LatentWalkError(
            f"normalisation '{mode}' is unknown: use 'song' (quiet passages stay low) or 'window' "
            "(each passage against its own loudest N seconds)."
        )
    if mode == "window" and not (window_s >= MIN_NORMALISE_WINDOW_S and math.isfinite(window_s)):
        raise LatentWalkError(
            f"the normalisation window is {window_s:g} s; it must be at least {MIN_NORMALISE_WINDOW_S:g} s "
            "(e.g. 10)."
        )


def normalise_positive(values, frames_per_s, window_s=None, song_share=0.0):
    """Scale a non-negative measurement (e.g. onset strength) to 0..1.

    values : np.ndarray, shape (n_frames,) -> np.ndarray, shape (n_frames,), float32
    window_s : None to measure against the whole song, or the length of the
        window around each frame whose peaks map to 1.0
    song_share : with ``window_s``, a window's reference is at least this share of
        the whole song's, so a stretch with no real peaks is not blown up to 1.0
    """
    values = np.asarray(values, dtype=np.float64)
    loudest = float(values.max()) if len(values) else 0.0
    # Onset strengths under a thousandth of the strongest are treated as silence.
    silence = max(loudest * 1e-3, 1e-12)
    reference = _references(values, frames_per_s, silence, window_s)
    if window_s is not None and song_share > 0.0:
        song_reference = peak_reference(values, frames_per_s, silence)
        if song_reference is not None:
            reference = np.maximum(reference, song_share * song_reference)  # NaN (silence) stays NaN
    known = np.isfinite(reference)
    out = np.zeros(len(values), dtype=np.float32)
    out[known] = np.clip(values[known] / reference[known], 0.0, 1.0)
    return out


def level_db(mean_square):
    """Mean square -> decibels (re a full-scale signal's mean square of 1).

    mean_square : np.ndarray, shape (n_frames,) -> np.ndarray, shape (n_frames,)
    """
    return 10.0 * np.log10(np.maximum(mean_square, 1e-12))


def normalise_levels(levels_db, frames_per_s, range_db=40.0, window_s=None):
    """Map levels in dB to 0..1, each row against its own loud passages.

    A row's 1.0 is `peak_reference` of its own level (over the whole song, or with
    ``window_s`` over the window around each frame), but at least
    ``BAND_HEADROOM_DB`` below the loudest row's; 0.0 is ``range_db`` lower, and
    never below `SILENCE_DB`, so silence and near-silent bands stay at zero.

    levels_db : np.ndarray, shape (n_rows, n_frames) -> np.ndarray, same shape, float32
    """
    levels_db = np.atleast_2d(levels_db)
    references = np.stack([_references(row, frames_per_s, SILENCE_DB, window_s) for row in levels_db]) \
        if len(levels_db) else np.zeros(levels_db.shape)
    with np.errstate(invalid="ignore"):
        known = np.isfinite(references)
        loudest_db = np.where(known.any(axis=0), np.nanmax(np.where(known, references, -np.inf), axis=0), np.nan)
        reference_db = np.maximum(references, loudest_db[None, :] - BAND_HEADROOM_DB)
        floor_db = np.maximum(reference_db - range_db, SILENCE_DB)
        unit = (levels_db - floor_db) / (reference_db - floor_db)
    return np.where(known, np.clip(unit, 0.0, 1.0), 0.0).astype(np.float32)


def envelope(values, attack_ms, release_ms, frames_per_s):
    """One-pole attack/release follower, in milliseconds (fps-independent).

    values : np.ndarray, shape (n_frames,) -> np.ndarray, shape (n_frames,), float32
    """
    frame_ms = 1000.0 / frames_per_s
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


def shape(unit_values, settings, frames_per_s):
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
    return envelope(values, settings.attack_ms, settings.release_ms, frames_per_s)


def band_curves(band_levels, band_shapes, frames_per_s, range_db=40.0, window_s=None):
    """The bands' curves, shape (n_bands, n_frames), float32 in 0..1.

    band_levels : np.ndarray, shape (n_frames, n_bands), mean squares per video frame
    band_shapes : sequence of `ShapeSettings`, one per band
    window_s : None to normalise against the whole song, else the window around each frame
    """
    units = normalise_levels(level_db(band_levels.T), frames_per_s, range_db, window_s)
    return np.stack([shape(units[i], band_shapes[i], frames_per_s) for i in range(len(band_shapes))])


def loudness_curve(total_levels, frames_per_s, range_db=40.0, window_s=None):
    """The overall loudness (the "rms" curve), shape (n_frames,), float32 in 0..1, unshaped.

    total_levels : np.ndarray, shape (n_frames,), the overall mean square per video frame
    """
    return normalise_levels(level_db(total_levels), frames_per_s, range_db, window_s)[0]


def chroma_curve(chroma_levels, loudness):
    """Chroma against its loudest pitch class, shape (n_frames, 12), float32; 0 where silent.

    chroma_levels : np.ndarray, shape (n_frames, 12); loudness : shape (n_frames,), `loudness_curve`
    """
    chroma_peak = chroma_levels.max(axis=1, keepdims=True)
    audible = (loudness > 0.0)[:, None] & (chroma_peak > 1e-12)
    return np.where(audible, chroma_levels / np.maximum(chroma_peak, 1e-12), 0.0).astype(np.float32)


def running_percentile(values, size, percentile):
    """The ``percentile`` of the ``size`` values around each (the ends repeated): shape (n,), float64.

    values : np.ndarray, shape (n,); computed a few thousand values at a time (bounded memory)
    """
    values = np.asarray(values, dtype=np.float64)
    n, half = len(values), size // 2
    if n == 0:
        return np.zeros(0)
    padded = np.pad(values, (half, size - 1 - half), mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, size)
    out = np.empty(n)
    rows = max(1, (1 << 21) // (8 * size))  # about 2 MB of windows at a time
    for start in range(0, n, rows):
        out[start : start + rows] = np.percentile(windows[start : start + rows], percentile, axis=1)
    return out


def onset_above_floor(onset_strength, frames_per_s):
    """Each frame's flux (or fresh rise) above the floor of the frames around it, and how surely that is a
    hit (0..1):
    ``(above, sure)``, shape (n_frames,) each.

    The floor is `ONSET_FLOOR_RATIO` times the frames' `ONSET_FLOOR_PERCENTILE` (at least
    `ONSET_FLOOR_MIN_DB`); a frame is sure to hold a hit once it rises `ONSET_SURE_RISE` times that
    percentile above the floor.

    onset_strength : np.ndarray, shape (n_frames,), the strongest flux (or fresh rise) per video frame
    """
    onset_strength = np.asarray(onset_strength, dtype=np.float64)
    size = max(1, int(round(ONSET_FLOOR_WINDOW_S * frames_per_s)))
    typical = np.maximum(running_percentile(onset_strength, size, ONSET_FLOOR_PERCENTILE), ONSET_FLOOR_MIN_DB)
    above = np.maximum(onset_strength - ONSET_FLOOR_RATIO * typical, 0.0)
    return above, np.clip(above / (ONSET_SURE_RISE * typical), 0.0, 1.0)


def onset_curve(onset_strength, onset_rise, loudness, settings, frames_per_s):
    """The onset pulse, shape (n_frames,), float32 in 0..1.

    onset_strength : np.ndarray, shape (n_frames,), the strongest flux per video frame
    onset_rise : np.ndarray, shape (n_frames,), the strongest fresh rise per video frame (`onsets.fresh_rise`)
    loudness : shape (n_frames,), `loudness_curve`

    A frame pulses as loud as the song is on it (a hit as high as it is loud: a quiet intro low, a loud
    drop high), in so far as it surely holds a hit (`onset_above_floor` of the fresh rise, which reaches a
    hit's full rise a few milliseconds after the flux peaks: on a flux peak's frame, that of the frame or
    the next; nothing between hits) at least `ONSET_FULL_SHARE` as strong as the hits of the few seconds
    around (`ONSET_CONTEXT_S`; a weaker rise pulses in proportion). A hit pulses on the frame of its
    strongest flux (the flux peaks as the hit enters the onset window: on the hit's own frame); a neighbour
    frame in proportion to its own.
    """
    strength = np.asarray(onset_strength, dtype=np.float64)
    rise = np.asarray(onset_rise, dtype=np.float64)
    # A hit's fresh rise may complete in the frame after its flux peak: that frame's counts for it.
    next_strength, next_rise = np.append(strength[1:], 0.0), np.append(rise[1:], 0.0)
    rise = np.where(strength >= next_strength, np.maximum(rise, next_rise), rise)
    above, sure = onset_above_floor(rise, frames_per_s)
    against_hits = normalise_positive(above, frames_per_s, ONSET_CONTEXT_S, ONSET_CONTEXT_SONG_SHARE)
    padded = np.pad(strength, 1, mode="edge")
    neighbourhood = np.maximum(np.maximum(padded[:-2], padded[1:-1]), padded[2:])
    strongest_near = np.where(neighbourhood > 0.0, strength / np.maximum(neighbourhood, 1e-12), 0.0)
    hit = sure * np.minimum(against_hits / ONSET_FULL_SHARE, 1.0) * strongest_near
    return shape(hit * np.asarray(loudness, dtype=np.float64), settings, frames_per_s)
