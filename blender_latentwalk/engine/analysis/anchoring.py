"""Anchoring band levels to hits, so a note's level starts on the note's own time.

Levels measured on each video frame's own samples (`levels.FrameLevels`: the mix's bands and the
overall level) need only the hit's frame to hold the level its band reaches within the filters'
rise time (`credit_hits`). Levels measured on 93 ms band hops (bands on a part of the mix or a
stem, chroma) are anchored hop by hop (`anchor_to_onsets`), for the reasons below.

A 93 ms window resolves bass notes but reaches a note's level only once the note fills
it. Crediting a window's energy to its centre would anticipate every note by up to
46 ms; to its end, a kick peaks 2 video frames late at 24 fps and 4 at 60 fps. So the
energy is credited to the window's end (never early) and then anchored to hits: the
onset analysis places a hit to within a millisecond, and the level a band reaches
within one window after it is held from the hit's own time. Short windows for high
bands would have cut their lag, not removed it, and made the curves noisier; band-pass
filters with an envelope follower lag by their own rise time, which for a bass band
exceeds a 60 fps video frame.
"""

import numpy as np

from . import shaping
from . import timing

# A band is anchored to a hit when its level rises more than 3 dB after it; a second
# hit inside that rise is the same note when the level has already risen 1 dB by then.
ANCHOR_RISE_RATIO = 10.0 ** (3.0 / 10.0)
ANCHOR_FILLING_RATIO = 10.0 ** (1.0 / 10.0)


def anchor_to_onsets(levels, hop_times_s, onset_times_s, window_s, rise_ratio=ANCHOR_RISE_RATIO, in_place=False):
    """Credit the level a window reaches after a hit from the hit's own time.

    A level measured over a window ending at ``hop_times_s`` never anticipates a
    note, but reaches the note's level only once the note has filled the window
    (up to ``window_s`` later). After a hit, in every row whose level then rises
    by more than ``rise_ratio``, the highest level reached within ``window_s`` is
    held from the hit until it is reached. So a rise starts on the hit, never
    before it, and rows the hit does not raise (the bass under a hat) are left
    alone. A later hit inside that stretch takes over only when it rises more
    than ``rise_ratio`` above the held level (a new, louder note); the first one's
    hold then ends there, so no note is credited before its own hit; so does a
    later hit that comes before the level has risen at all (the first was no
    hit of this row's).

    Parameters
    ----------
    levels : np.ndarray, shape (n_hops, n_rows), mean squares (>= 0)
    hop_times_s : np.ndarray, shape (n_hops,), increasing
    onset_times_s : np.ndarray, shape (n_onsets,), increasing
    window_s : float, the measuring window's length
    in_place : hold the levels in ``levels`` itself (float64), sparing a copy

    Returns
    -------
    held : np.ndarray, shape (n_hops, n_rows), float64
    hit_times_s, hit_rows, hit_levels : np.ndarray, shape (n_hits,) each: the level
        credited to each (hit, row) at the hit's own time
    """
    levels = np.asarray(levels, dtype=np.float64)
    held = levels if in_place else levels.copy()
    n_rows = levels.shape[1] if levels.ndim == 2 else 0
    firsts = np.searchsorted(hop_times_s, onset_times_s, side="left")
    lasts = np.searchsorted(hop_times_s, onset_times_s + window_s + 1e-9, side="left")
    usable = lasts > firsts
    firsts, lasts, onset_times_s = firsts[usable], lasts[usable], np.asarray(onset_times_s)[usable]
    if not len(firsts) or not n_rows:
        return held, np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0)
    peak_hops, peaks, before, rises = _rises(levels, firsts, lasts, rise_ratio)
    hit_times, hit_rows, hit_levels = [], [], []
    for row in range(n_rows):
        hits = _row_hits(levels[:, row], firsts, onset_times_s, peak_hops[:, row], peaks[:, row], before[:, row],
                         np.flatnonzero(rises[:, row]), rise_ratio)
        for first, peak_hop, peak, _, onset_s in hits:
            held[first:peak_hop, row] = peak
            hit_times.append(onset_s)
            hit_rows.append(row)
            hit_levels.append(peak)
    return (held, np.asarray(hit_times, dtype=np.float64), np.asarray(hit_rows, dtype=np.int64),
            np.asarray(hit_levels, dtype=np.float64))


def _rises(levels, firsts, lasts, rise_ratio):
    """Each hit's rise in every row, measured as if no other hit followed.

    levels : shape (n_hops, n_rows); firsts, lasts : shape (n_hits,), the hops of each hit's window.
    Returns ``(peak_hops, peaks, before, rises)``, shape (n_hits, n_rows) each: the hop of the
    highest level in the window, that level, the level on the hop before the hit, and whether
    the level rose by more than ``rise_ratio`` (and above silence).
    """
    peak_hops = np.empty((len(firsts), levels.shape[1]), dtype=np.int64)
    for i, (first, last) in enumerate(zip(firsts, lasts)):
        peak_hops[i] = first + np.argmax(levels[first:last], axis=0)
    peaks = np.take_along_axis(levels, peak_hops, axis=0)
    before = np.where((firsts > 0)[:, None], levels[np.maximum(firsts - 1, 0)], 0.0)
    silence = 10.0 ** (shaping.SILENCE_DB / 10.0)
    rises = (peaks > before * rise_ratio) & (peaks > silence)
    return peak_hops, peaks, before, rises


def _row_hits(column, firsts, onset_times_s, peak_hops, peaks, before, rising_hits, rise_ratio):
    """The hits one row is anchored to: ``[first hop, peak hop, peak level, level before, onset time]`` each.

    column : shape (n_hops,), the row's levels; firsts, onset_times_s, peak_hops, peaks, before :
    shape (n_hits,), per hit (`_rises`, this row's); rising_hits : the hits the row rises after.
    """
    silence = 10.0 ** (shaping.SILENCE_DB / 10.0)
    kept = []
    for i in rising_hits:
        first, peak_hop, peak = int(firsts[i]), int(peak_hops[i]), float(peaks[i])
        level_before = float(before[i])
        if kept and first < kept[-1][1]:  # inside the previous hit's rise
            previous = kept[-1]
            filling = level_before > max(previous[3], silence) * ANCHOR_FILLING_RATIO
            if filling and peak <= previous[2] * rise_ratio:
                continue  # the previous hit's note, still filling the window
            # A new note (or nothing had risen since the previous hit): that hold ends here.
            if first > previous[0]:
                previous[1] = previous[0] + int(np.argmax(column[previous[0]:first]))
                previous[2] = float(column[previous[1]])
            if not (previous[2] > max(previous[3] * rise_ratio, silence)):
                kept.pop()
        kept.append([first, peak_hop, peak, level_before, float(onset_times_s[i])])
    return kept


# A hit's level may still be rising this long after the time the onset analysis gives it, on top of what
# its measurement adds (`levels._BandFilter.reach_s`): its attack (a stab's or a snare's take a few ms; a
# kick starting on a sine's zero crossing reaches its peak over a cycle at 100 Hz and more, under 10 ms).
HIT_ATTACK_S = 0.010


def credit_hits(per_frame, hit_times_s, reach_s, fps, fps_base=1.0, offset_ms=0.0, rise_ratio=ANCHOR_RISE_RATIO,
                before_ring=None, ring_s=0.0, gate_delay_s=None):
    """The level each hit reaches, also on the video frame the hit starts in.

    A level measured on each frame's own samples (`levels.FrameLevels`) peaks on the frame that holds the
    peak; a hit late in a frame, whose band still rises for its attack and the filters' spread (``reach_s``
    plus `HIT_ATTACK_S`), would peak on the next. So the frame a hit starts in takes the highest level of the
    frames until then, in every column that has begun to rise in that frame (or whose gate had no time to
    open in it: the hit came within ``gate_delay_s`` of its end) and rises more than ``rise_ratio`` above
    the frame before (the bass under a hat is left alone). Nothing moves to a frame before a hit's own
    (`onsets.onset_times` never places a hit before its first sample); and the frame before a hit that
    starts within ``ring_s`` of its frame's start keeps only its level from before then (``before_ring``):
    what a resampler rang ahead of the hit is not a sound.

    Parameters
    ----------
    per_frame : np.ndarray, shape (n_frames, n_columns), mean squares (>= 0)
    hit_times_s : np.ndarray, shape (n_hits,), where hits begin (`onsets.onset_times`)
    reach_s, gate_delay_s : np.ndarray, shape (n_columns,) (``gate_delay_s`` None: 0)
    before_ring : None, or np.ndarray, shape (n_frames, n_columns): each frame's level without its last
        ``ring_s`` (`levels.FrameLevels.result`)

    Returns
    -------
    np.ndarray, shape (n_frames, n_columns), float64: a copy with the hits' frames raised
    """
    levels = np.array(per_frame, dtype=np.float64)
    n_frames = len(levels)
    hit_times_s = np.asarray(hit_times_s, dtype=np.float64)
    hit_frames = timing.frames_of_times(hit_times_s, fps, fps_base, offset_ms)
    inside = (hit_frames >= 0) & (hit_frames < n_frames)
    hit_times_s, hit_frames = hit_times_s[inside], hit_frames[inside]
    if not len(hit_frames) or not levels.size:
        return levels
    if before_ring is not None:
        rung = hit_frames[(hit_frames > 0) & (timing.frames_of_times(hit_times_s - ring_s, fps, fps_base, offset_ms)
                                              < hit_frames)] - 1
        levels[rung] = np.asarray(before_ring, dtype=np.float64)[rung]
    credited = levels.copy()
    # The last frame each hit's rise may reach, per column: shape (n_hits, n_columns).
    last_frames = timing.frames_of_times((hit_times_s[:, None] + np.asarray(reach_s)[None, :] + HIT_ATTACK_S).ravel(),
                                         fps, fps_base, offset_ms).reshape(len(hit_frames), -1)
    last_frames = np.minimum(last_frames, n_frames - 1)
    own = levels[hit_frames]
    peaks = own.copy()
    for offset in range(1, int((last_frames - hit_frames[:, None]).max(initial=0)) + 1):
        later = levels[np.minimum(hit_frames + offset, n_frames - 1)]
        peaks = np.where(hit_frames[:, None] + offset <= last_frames, np.maximum(peaks, later), peaks)
    before = np.where((hit_frames > 0)[:, None], levels[np.maximum(hit_frames - 1, 0)], 0.0)
    silence = 10.0 ** (shaping.SILENCE_DB / 10.0)
    # Begun to rise in the hit's own frame (a sound of a later event within the reach is not credited to
    # it), and by more than `rise_ratio` by the end of its reach.
    gate_delay_s = np.zeros(levels.shape[1]) if gate_delay_s is None else np.asarray(gate_delay_s)
    too_late = timing.frames_of_times((hit_times_s[:, None] + gate_delay_s[None, :]).ravel(), fps, fps_base,
                                      offset_ms).reshape(len(hit_frames), -1) > hit_frames[:, None]
    begun = (own > before * ANCHOR_FILLING_RATIO) | too_late
    rises = begun & (peaks > before * rise_ratio) & (peaks > silence)
    rows, columns = np.nonzero(rises)
    np.maximum.at(credited, (hit_frames[rows], columns), peaks[rows, columns])
    return credited
