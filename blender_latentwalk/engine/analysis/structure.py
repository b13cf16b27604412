"""The music's structure: bars (downbeats), sections with labels, and drops, from the analysis already made.

An artist cuts a music video on the song's form: the picture changes character at the chorus, explodes at the
drop and comes back with the verse. This module reads that form from per-video-frame values the pipeline has
anyway (band levels, chroma, loudness, onset strength) and the beats, in four steps:

1. Beat features: each beat's chroma, band levels (dB) and loudness, averaged over the beat.
2. Bars: the meter (4 or 3 beats) and the downbeat's phase whose beats most often start something new:
   a chord change, a bass note, a louder hit (`downbeats`).
3. Sections: a bar-by-bar self-similarity matrix; a checkerboard kernel along its diagonal (Foote's novelty)
   peaks where what came before differs from what comes after; boundaries fall on bar lines. Sections whose
   bars repeat one another (bar k of one like bar k of the other) share a label: A, B, A, C.
4. Drops: a boundary where the level surges (loudness, and above all the low bands) from the bars before to
   the bars after, into the song's loud part: the release after a build or a breakdown.

Then the curves the bake writes: beat and bar pulses (1 on the beat, falling to 0 at the next), the section's
label number held over the section, and a drop pulse over the drop's bar.
"""

import string
from dataclasses import dataclass

import numpy as np

BEATS_PER_BAR_CHOICES = (4, 3)
# What makes a beat the first of its bar, by weight: a chord change, a change of timbre, the bass rising, a hit.
# A hit weighs least: in a backbeat the snare on 2 and 4 hits as hard as the kick on 1 and 3.
NEWNESS_WEIGHTS = np.array([2.0, 1.0, 2.0, 0.5])
TRIPLE_METER_MARGIN = 1.25  # 3/4 is chosen only when its downbeats stand out this much more than 4/4's
NOVELTY_HALF_WIDTH_BARS = 4  # the checkerboard compares 4 bars before with 4 bars after: a phrase
MIN_SECTION_BARS = 4  # no section shorter than a phrase: boundaries closer than this are one boundary
NOVELTY_THRESHOLD = 0.15  # a novelty peak (in similarity units, 0..1) that starts a section
NOVELTY_PEAK_BARS = 2  # a boundary is the highest novelty within this many bars either side
SAME_SECTION_SIMILARITY = 0.75  # bar-by-bar similarity (0..1) at which two sections share a label
DROP_RISE_DB = 6.0  # the loudness rise from the bars before a boundary to the bars after that makes a drop
DROP_LOW_RISE_DB = 9.0  # or this rise in the low bands (the kick and bass come back)
DROP_LOUD_QUANTILE = 0.6  # and the bars after are at least this loud among the song's bars
DROP_BARS = 2  # bars compared on each side of a boundary
LEVEL_FLOOR = 1e-10  # mean square below which a level counts as silence (-100 dB)
LOW_BANDS_HIGH_HZ = 250.0  # bands ending at or below this are the low bands (kick and bass)


@dataclass(frozen=True)
class Structure:
    """The song's form in video frame indices (from the song's first frame).

    downbeats : shape (n_bars,), int64; section_starts : shape (n_sections,), int64, the first is 0;
    section_labels : list of str; drops : shape (n_drops,), int64; beats_per_bar : int;
    beat, bar, section, drop : shape (n_frames,), float32 (see `features.Features`).
    """

    downbeats: np.ndarray
    section_starts: np.ndarray
    section_labels: list
    drops: np.ndarray
    beats_per_bar: int
    beat: np.ndarray
    bar: np.ndarray
    section: np.ndarray
    drop: np.ndarray


def _db(mean_square):
    return 10.0 * np.log10(np.maximum(mean_square, LEVEL_FLOOR))


def _standardised(values):
    """Each column to mean 0, standard deviation 1 over the rows (a constant column to 0); shape kept."""
    spread = values.std(axis=0)
    return (values - values.mean(axis=0)) / np.where(spread > 0, spread, 1.0)


def beat_features(levels, onset_strength, beats, band_high_hz):
    """Per beat: (chroma (n_beats, 12), band levels in dB (n_beats, n_bands), loudness dB (n_beats,),
    low-band dB (n_beats,), onset (n_beats,)), each averaged over the beat (up to the next beat).

    levels : shape (n_frames, n_bands + 1 + 12), mean squares per video frame (bands, total, chroma)
    onset_strength : shape (n_frames,); beats : shape (n_beats,), int64 frames, increasing
    band_high_hz : shape (n_bands,), each band's top, to find the low bands
    """
    n_bands = len(band_high_hz)
    edges = np.append(beats, len(levels))
    means = np.add.reduceat(levels, beats, axis=0) / np.maximum(np.diff(edges), 1)[:, None]
    chroma = means[:, n_bands + 1:]
    chroma = chroma / np.maximum(chroma.max(axis=1, keepdims=True), LEVEL_FLOOR)
    low = np.asarray(band_high_hz) <= LOW_BANDS_HIGH_HZ
    low_level = means[:, :n_bands][:, low].sum(axis=1) if low.any() else means[:, 0]
    onset = np.maximum.reduceat(onset_strength, beats) if len(beats) else np.zeros(0)
    return chroma, _db(means[:, :n_bands]), _db(means[:, n_bands]), _db(low_level), onset


def bar_phase(chroma, band_db, low_db, onset):
    """``(beats_per_bar, phase)``: the meter and which beat (0-based, mod the meter) starts a bar.

    chroma : shape (n_beats, 12); band_db : shape (n_beats, n_bands); low_db, onset : shape (n_beats,)

    A downbeat is where things change: the chord (chroma), the bass (low bands rise), the hit (onset). Each
    beat's "newness" is the sum of the three, standardised; the (meter, phase) whose beats are the newest
    against the other beats wins, 4/4 unless 3/4 stands out by `TRIPLE_METER_MARGIN`.
    """
    n_beats = len(onset)
    if n_beats < 8:
        return 4, 0
    chord_change = np.concatenate([[0.0], 1.0 - np.sum(chroma[1:] * chroma[:-1], axis=1) / np.maximum(
        np.linalg.norm(chroma[1:], axis=1) * np.linalg.norm(chroma[:-1], axis=1), LEVEL_FLOOR)])
    timbre_change = np.concatenate([[0.0], np.linalg.norm(np.diff(band_db, axis=0), axis=1)])
    bass_rise = np.concatenate([[0.0], np.maximum(np.diff(low_db), 0.0)])
    newness = _standardised(np.stack([chord_change, timbre_change, bass_rise, onset], axis=1)) @ NEWNESS_WEIGHTS
    best = {}
    for meter in BEATS_PER_BAR_CHOICES:
        scores = [newness[phase::meter].mean() - np.delete(newness, np.arange(phase, n_beats, meter)).mean()
                  for phase in range(meter)]
        best[meter] = (max(scores), int(np.argmax(scores)))
    meter = 3 if best[3][0] > TRIPLE_METER_MARGIN * max(best[4][0], 0.0) and best[3][0] > 0 else 4
    return meter, best[meter][1]


TEMPO_STEP_RATIO = 1.07  # beats this much further apart (or closer) for a while: a new tempo, counted afresh
TEMPO_SMOOTHING_BEATS = 9  # the beat gap is a running mean over this many gaps
# Beats are whole frames: a beat of 12.5 frames is gaps of 12 and 13. A mean over several gaps holds 12.5, and
# a change of tempo must also move the mean gap by more than this many frames.
TEMPO_STEP_MIN_FRAMES = 1.0


def tempo_stretches(beats):
    """Runs of beats at one tempo, as ``[(first, stop), ...]`` beat indices covering all beats in order: the
    bars are counted afresh in each (a song that changes tempo often changes where its bars start).
    beats : shape (n_beats,), int64 frames."""
    n_beats = len(beats)
    if n_beats < 2 * TEMPO_SMOOTHING_BEATS:
        return [(0, n_beats)]
    gaps = np.diff(beats).astype(np.float64)
    half = TEMPO_SMOOTHING_BEATS // 2
    cumulative = np.concatenate([[0.0], np.cumsum(gaps)])
    lows = np.maximum(np.arange(len(gaps)) - half, 0)
    highs = np.minimum(np.arange(len(gaps)) + half + 1, len(gaps))
    smooth = (cumulative[highs] - cumulative[lows]) / (highs - lows)
    cuts, reference, i = [], smooth[half], half
    while i < len(smooth) - half:
        ratio = max(smooth[i] / reference, reference / smooth[i])
        if ratio >= TEMPO_STEP_RATIO and abs(smooth[i] - reference) > TEMPO_STEP_MIN_FRAMES:
            # The change itself: the gap where the mean of the gaps before differs most from those after.
            around = range(max(half, i - half), min(len(gaps) - half, i + half + 1))
            change = max(around, key=lambda j: abs(gaps[j - half:j].mean() - gaps[j:j + half].mean()))
            cuts.append(change + 1)  # the first beat after the first gap of the new tempo
            i = change + 2 * half  # past the change, so the old tempo's gaps leave the mean
            reference = smooth[min(i, len(smooth) - 1)]
        i += 1
    edges = [0] + sorted(set(cuts)) + [n_beats]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def novelty(similarity, half_width):
    """Foote's novelty at each bar of a (n, n) similarity matrix (values 0..1): shape (n,), in the matrix's
    units: how much more alike the bars are within the ``half_width`` bars before and within those after
    than across the two. Near the song's ends the blocks shrink (at least one bar each); no mirroring, which
    would invent a repeat."""
    n = len(similarity)
    values = np.zeros(n)
    for bar in range(1, n):
        before, after = slice(max(0, bar - half_width), bar), slice(bar, min(n, bar + half_width))
        within = 0.5 * (similarity[before, before].mean() + similarity[after, after].mean())
        values[bar] = within - similarity[before, after].mean()
    return np.maximum(values, 0.0)


def _similarity(bar_vectors):
    """Cosine similarity of standardised bar vectors, mapped to 0..1: shape (n_bars, n_bars)."""
    vectors = _standardised(bar_vectors)
    norms = np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), LEVEL_FLOOR)
    unit = vectors / norms
    return 0.5 * (1.0 + unit @ unit.T)


def section_boundaries(similarity, loud_bars, low_bars):
    """Bar indices where sections start (the first is 0), shape (n_sections,), int64.

    similarity : shape (n_bars, n_bars); loud_bars, low_bars : shape (n_bars,), dB. Novelty peaks above
    `NOVELTY_THRESHOLD`, and surges of a drop (which outrank any novelty peak), at least `MIN_SECTION_BARS`
    apart and from both ends of the song (the stronger wins).
    """
    n_bars = len(similarity)
    if n_bars < 2 * MIN_SECTION_BARS:
        return np.zeros(1, np.int64)
    values = novelty(similarity, min(NOVELTY_HALF_WIDTH_BARS, n_bars // 2))
    candidates = {}
    for bar in range(MIN_SECTION_BARS, n_bars - MIN_SECTION_BARS + 1):
        window = values[max(0, bar - NOVELTY_PEAK_BARS): bar + NOVELTY_PEAK_BARS + 1]
        if values[bar] >= NOVELTY_THRESHOLD and values[bar] == window.max():
            candidates[bar] = values[bar]
    for bar, rise in surges(loud_bars, low_bars).items():
        if MIN_SECTION_BARS <= bar:
            candidates[bar] = 1.0 + rise  # a drop always starts a section, whatever the build before it
    chosen = []
    for bar in sorted(candidates, key=lambda b: (-candidates[b], b)):
        if all(abs(bar - other) >= MIN_SECTION_BARS for other in chosen):
            chosen.append(bar)
    return np.array([0] + sorted(chosen), np.int64)


def surges(loud_bars, low_bars):
    """Bars where the level surges into the song's loud part (drop candidates): {bar index: rise}, the rise
    in units of the thresholds (>= 1).

    A bar surges when it is `DROP_RISE_DB` louder (or its low bands `DROP_LOW_RISE_DB` louder) than the mean
    of the `DROP_BARS` bars before it, and among the song's loud bars; of surges within a phrase, the
    steepest. loud_bars, low_bars : shape (n_bars,), dB."""
    if len(loud_bars) <= DROP_BARS:
        return {}
    loud_enough = np.quantile(loud_bars, DROP_LOUD_QUANTILE)
    rise = np.zeros(len(loud_bars))
    for bar in range(DROP_BARS, len(loud_bars)):
        before = slice(bar - DROP_BARS, bar)
        if loud_bars[bar] >= loud_enough:
            rise[bar] = max((loud_bars[bar] - loud_bars[before].mean()) / DROP_RISE_DB,
                            (low_bars[bar] - low_bars[before].mean()) / DROP_LOW_RISE_DB)
    half = MIN_SECTION_BARS // 2
    return {bar: float(rise[bar]) for bar in range(len(rise))
            if rise[bar] >= 1.0 and rise[bar] == rise[max(0, bar - half): bar + half + 1].max()}


def section_labels(similarity, starts):
    """A label per section (similarity : shape (n_bars, n_bars); starts : shape (n_sections,), bar indices;
    returns a list of n_sections str): a section takes the label of the earlier section its bars repeat most (bar k
    of one against bar k of the other from their starts or from their ends, mean similarity >=
    `SAME_SECTION_SIMILARITY`), else the next letter."""
    n_bars = len(similarity)
    ends = np.append(starts[1:], n_bars)
    labels = []
    for i, (start, end) in enumerate(zip(starts, ends)):
        best, best_label = SAME_SECTION_SIMILARITY, None
        for j in range(i):
            length = min(end - start, ends[j] - starts[j])
            # Aligned at their starts, or at their ends (a first section may begin before its first bar line).
            score = max(np.mean([similarity[start + k, starts[j] + k] for k in range(length)]),
                        np.mean([similarity[end - 1 - k, ends[j] - 1 - k] for k in range(length)]))
            if score >= best:
                best, best_label = score, labels[j]
        labels.append(best_label or _next_label(labels))
    return labels


def label_name(index):
    """The ``index``-th section label (0-based): A .. Z, then AA, AB .. ZZ, AAA ..., as spreadsheet columns."""
    name = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, len(string.ascii_uppercase))
        name = string.ascii_uppercase[remainder] + name
    return name


def _next_label(labels):
    return label_name(len(set(labels)))


PULSE_LONGEST_GAPS = 2.0  # a pulse falls over at most this many typical gaps (a long silence is not one beat)


def pulse(event_frames, n_frames, until=None):
    """1 on each event's frame, falling linearly to 0 at the next event (or at the next entry of ``until``
    after it, when given), over at most `PULSE_LONGEST_GAPS` median gaps: shape (n_frames,), float32.
    Before the first event, 0; after the last, it falls over the median gap."""
    curve = np.zeros(n_frames, np.float32)
    events = np.asarray(event_frames, np.int64)
    if not len(events):
        return curve
    ends_from = np.asarray(until if until is not None else events, np.int64)
    median_gap = max(int(np.median(np.diff(ends_from))) if len(ends_from) > 1 else n_frames, 1)
    for frame in events:
        later = ends_from[ends_from > frame]
        end = min(int(later[0]) if len(later) else frame + median_gap, frame + int(PULSE_LONGEST_GAPS * median_gap))
        span = np.arange(frame, min(end, n_frames))
        curve[span] = np.maximum(curve[span], 1.0 - (span - frame) / max(end - frame, 1))
    return curve


def analyse(levels, onset_strength, beats, band_high_hz):
    """The song's `Structure`.

    levels : shape (n_frames, n_bands + 1 + 12), mean squares per video frame (bands, total, chroma:
        `aggregate.levels_per_video_frame`)
    onset_strength : shape (n_frames,); beats : shape (n_beats,), int64 video frames, increasing
    band_high_hz : shape (n_bands,)
    """
    n_frames = len(levels)
    beats = np.asarray(beats, np.int64)
    beats = beats[(beats >= 0) & (beats < n_frames)]
    section = np.zeros(n_frames, np.float32)
    if len(beats) < 2:
        return Structure(np.zeros(0, np.int64), np.zeros(1, np.int64), ["A"], np.zeros(0, np.int64), 4,
                         pulse(beats, n_frames), np.zeros(n_frames, np.float32), section,
                         np.zeros(n_frames, np.float32))
    chroma, band_db, loud_db, low_db, onset = beat_features(levels, onset_strength, beats, band_high_hz)
    first_beats, meters = [], []
    for first, stop in tempo_stretches(beats):
        meter, phase = bar_phase(*(values[first:stop] for values in (chroma, band_db, low_db, onset)))
        first_beats.append(np.arange(first + phase, stop, meter))
        meters.append((stop - first, meter))
    first_beats = np.concatenate(first_beats).astype(np.int64)
    meter = max(meters)[1]  # the meter of the longest stretch
    downbeats = beats[first_beats]
    # Bar vectors: the bar's chroma and band levels (standardised in `_similarity`), its loudness and low level.
    bar_edges = np.append(first_beats, len(beats))
    bar_of_beat = np.searchsorted(first_beats, np.arange(len(beats)), side="right") - 1
    in_bar = bar_of_beat >= 0
    n_bars = len(downbeats)

    def bar_mean(values):
        sums = np.zeros((n_bars,) + values.shape[1:])
        np.add.at(sums, bar_of_beat[in_bar], values[in_bar])
        return sums / np.maximum(np.diff(bar_edges), 1).reshape((-1,) + (1,) * (values.ndim - 1))

    loud_bars, low_bars = bar_mean(loud_db), bar_mean(low_db)
    bar_vectors = np.concatenate([bar_mean(chroma), bar_mean(band_db), loud_bars[:, None]], axis=1)
    similarity = _similarity(bar_vectors) if n_bars else np.zeros((0, 0))
    start_bars = section_boundaries(similarity, loud_bars, low_bars) if n_bars else np.zeros(1, np.int64)
    labels = section_labels(similarity, start_bars) if n_bars else ["A"]
    section_starts = np.array([0] + [int(downbeats[b]) for b in start_bars[1:]], np.int64)
    surging = set(surges(loud_bars, low_bars))
    drop_bars = [b for b in start_bars[1:] if b in surging]
    drops = np.array([int(downbeats[b]) for b in drop_bars], np.int64)
    letters = sorted(set(labels), key=labels.index)
    for start, label in zip(section_starts, labels):
        section[start:] = letters.index(label)
    return Structure(downbeats=downbeats, section_starts=section_starts, section_labels=labels, drops=drops,
                     beats_per_bar=meter, beat=pulse(beats, n_frames), bar=pulse(downbeats, n_frames),
                     section=section, drop=pulse(drops, n_frames, until=downbeats))
