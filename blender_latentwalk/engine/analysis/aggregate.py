"""From hops to video frames: each video frame's share of the measurements.

A video frame covers its own time window (`timing.frames_of_times`). The mix's band levels and
the overall level are measured on each frame's own samples (`levels.FrameLevels`), each hit's
level also on the frame it starts in (`anchoring.credit_hits`). Bands on a part of the mix or a
stem, and chroma, are averaged over the band hops whose windows end in the frame, after anchoring
to hits (`anchoring.anchor_to_onsets`); the onset flux takes the maximum over the onset hops whose
windows end in it, so a hit lands on its own video frame.
"""

import numpy as np

from . import spectra
from . import timing
from .anchoring import ANCHOR_RISE_RATIO, anchor_to_onsets, credit_hits
from .levels import RESAMPLER_RING_S
from .onsets import ONSET_TIME_LATE_S
from .spectra import ONSET_HOP, ONSET_N_FFT

ONSET_SEGMENT_HOPS = 1 << 18  # the flux is placed on video frames 190 s at a time: bounded temporaries


def _runs(video_frame_of_hop):
    """Where runs of equal video frames start, and their lengths: shape (n_runs,) each.

    video_frame_of_hop : np.ndarray, shape (n_hops,), non-decreasing, n_hops > 0
    """
    starts = np.concatenate([[0], np.flatnonzero(np.diff(video_frame_of_hop)) + 1])
    return starts, np.diff(np.append(starts, len(video_frame_of_hop)))


def mean_per_video_frame(values, video_frame_of_hop, n_frames, fill_gaps=False):
    """The mean of the hops' values in each video frame, shape (n_frames, width), float64.

    values : np.ndarray, shape (n_hops, width)
    video_frame_of_hop : np.ndarray, shape (n_hops,), non-decreasing
    fill_gaps : video frames no hop falls in (shorter than a hop, above ~86 fps) are
        interpolated between their neighbours; otherwise 0
    """
    width = values.shape[1]
    total = np.zeros((n_frames, width), dtype=np.float64)
    counts = np.zeros(n_frames, dtype=np.int64)
    if len(video_frame_of_hop):
        starts, run_lengths = _runs(video_frame_of_hop)
        sums = np.add.reduceat(values, starts, axis=0)
        index = video_frame_of_hop[starts]
        keep = (index >= 0) & (index < n_frames)
        np.add.at(total, index[keep], sums[keep])
        np.add.at(counts, index[keep], run_lengths[keep])
    total /= np.maximum(counts, 1)[:, None]
    filled = np.flatnonzero(counts)
    if fill_gaps and len(filled) > 1:
        inside = np.arange(filled[0], filled[-1] + 1)
        gaps = inside[counts[inside] == 0]
        for column in range(width):
            total[gaps, column] = np.interp(gaps, filled, total[filled, column])
    return total


def max_into_video_frames(strongest, values, video_frame_of_hop):
    """Raise ``strongest`` (shape (n_frames,)) to the largest of the hops' values in each video frame.

    values : np.ndarray, shape (n_hops,); video_frame_of_hop : shape (n_hops,), non-decreasing.
    Hops outside ``0 .. n_frames - 1`` are left out.
    """
    if len(video_frame_of_hop) == 0:
        return
    starts, _ = _runs(video_frame_of_hop)
    maxima = np.maximum.reduceat(values, starts, axis=0)
    index = video_frame_of_hop[starts]
    keep = (index >= 0) & (index < len(strongest))
    np.maximum.at(strongest, index[keep], maxima[keep])


def onset_per_video_frame(flux, sample_rate, fps, fps_base, offset_ms, n_frames):
    """The strongest onset flux in each video frame, shape (n_frames,), float64 (0 where none).

    flux : np.ndarray, shape (n_onset_hops,), from `onsets.OnsetFlux.curve`, at ``sample_rate`` Hz
    """
    strongest = np.zeros(n_frames, dtype=np.float64)
    for first in range(0, len(flux), ONSET_SEGMENT_HOPS):
        piece = flux[first : first + ONSET_SEGMENT_HOPS]
        times_s = spectra.window_end_s(first + np.arange(len(piece)), ONSET_N_FFT, ONSET_HOP, sample_rate)
        max_into_video_frames(strongest, piece, timing.frames_of_times(times_s, fps, fps_base, offset_ms))
    return strongest


def levels_per_video_frame(levels, onset_times_s, sample_rate, n_fft, hop, fps, fps_base, offset_ms, n_frames,
                           rise_ratio=ANCHOR_RISE_RATIO, frame_levels=None, frame_columns=()):
    """Per-video-frame band, overall and chroma mean squares, shape (n_frames, width), float64.

    levels : np.ndarray, shape (n_hops, width), float64, one row per band hop (held in place)
    onset_times_s : np.ndarray, shape (n_onsets,), where hits begin (`onsets.onset_times`)
    sample_rate, n_fft, hop : of the band analysis
    rise_ratio : how much a level must rise after a hit to be anchored to it (`anchor_to_onsets`)
    frame_levels : None, or the `levels.FrameLevels` of the same song, whose columns (its bands, then the
        total) are ``frame_columns`` here: measured on each video frame's own samples, each hit's level also
        on the frame the hit starts in (`anchoring.credit_hits`). The other columns come from the hops.

    From the hops: each video frame is the mean of the levels whose windows end in it, anchored to the
    hits (`anchor_to_onsets`); a hit's level also counts as that of the video frame the hit falls in, so a
    hit late in a video frame still peaks on that video frame.
    """
    frame_columns = list(frame_columns) if frame_levels is not None else []
    hop_columns = [column for column in range(levels.shape[1]) if column not in set(frame_columns)]
    per_video_frame = np.zeros((n_frames, levels.shape[1]))
    if frame_columns:
        own_samples, before_ring = frame_levels.result(n_frames)
        per_video_frame[:, frame_columns] = credit_hits(
            own_samples, onset_times_s, frame_levels.reach_s, fps, fps_base, offset_ms, rise_ratio, before_ring,
            RESAMPLER_RING_S + ONSET_TIME_LATE_S,  # the ring before the hit's first sample, which may be that early
            frame_levels.gate_delay_s)
    if hop_columns:
        hop_levels = levels if len(hop_columns) == levels.shape[1] else levels[:, hop_columns]
        per_video_frame[:, hop_columns] = _hop_levels_per_video_frame(
            hop_levels, onset_times_s, sample_rate, n_fft, hop, fps, fps_base, offset_ms, n_frames, rise_ratio)
    return per_video_frame


def _hop_levels_per_video_frame(levels, onset_times_s, sample_rate, n_fft, hop, fps, fps_base, offset_ms, n_frames,
                                rise_ratio):
    """`levels_per_video_frame` of hop-level columns: shape (n_frames, width), float64."""
    # A window's energy belongs to its end: a note counts from the video frame it
    # starts in, never earlier (the 93 ms window would otherwise anticipate it).
    hop_times_s = spectra.window_end_s(np.arange(len(levels)), n_fft, hop, sample_rate)
    held, hit_times_s, hit_rows, hit_levels = anchor_to_onsets(
        levels, hop_times_s, onset_times_s, n_fft / sample_rate, rise_ratio, in_place=True)
    video_frame_of_hop = timing.frames_of_times(hop_times_s, fps, fps_base, offset_ms)
    per_video_frame = mean_per_video_frame(held, video_frame_of_hop, n_frames, fill_gaps=True)
    hit_video_frames = timing.frames_of_times(hit_times_s, fps, fps_base, offset_ms)
    inside = (hit_video_frames >= 0) & (hit_video_frames < n_frames)
    np.maximum.at(per_video_frame, (hit_video_frames[inside], hit_rows[inside]), hit_levels[inside])
    return per_video_frame
