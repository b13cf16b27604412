"""Beat tracking: Ellis' dynamic programme (2007), in plain numpy.

librosa implements the same algorithm, but its numba kernels compile on first use
in every new process (about 4 s here), longer than the whole rest of a bake; this
version costs milliseconds. Tempo comes from the onset envelope's autocorrelation
weighted by a log-normal prior around 120 BPM, as in librosa. `beat_video_frames` runs it
over a song's onset flux (`onsets`) and places each beat on its video frame.
"""

import numpy as np

from . import timing
from .spectra import ONSET_HOP, ONSET_N_FFT

TEMPO_PRIOR_BPM = 120.0
TEMPO_PRIOR_OCTAVES = 1.0
MIN_BPM, MAX_BPM = 40.0, 240.0
TIGHTNESS = 100.0  # how strongly beats keep the tempo (librosa's default)
# Beat tracking works on the onset flux at librosa's usual 512-sample hop.
BEAT_HOP = 512
BEAT_SEGMENT_S = 120.0  # beat tracking runs on segments so memory stays bounded
BEAT_CONTEXT_S = 8.0  # each segment sees this much more on both sides
# Tempo changes: the tempo is measured on windows this long, this far apart; a stretch whose tempo differs
# from the one before by more than TEMPO_CHANGE_OCTAVES (5%, and not a doubling or halving, which is the
# same pulse) in two windows running starts a new region, tracked on its own.
TEMPO_WINDOW_S, TEMPO_WINDOW_HOP_S = 12.0, 4.0
TEMPO_CHANGE_OCTAVES = 0.07
TEMPO_STEADY_WINDOWS = 3  # windows that must agree on each side of a change
# On real music the windows' tempo flips between metrical levels of one pulse (x2, x3/2, x4/3): those ratios
# (in octaves) are no change of tempo. So a song that really moves to 4/3 of its tempo is not followed.
METRICAL_OCTAVES = np.log2([1.0, 4.0 / 3.0, 1.5, 2.0])


def estimate_period(envelope, envelope_rate):
    """Beat period in envelope hops, from the autocorrelation (float), or None."""
    centred = envelope - envelope.mean()
    if not np.any(centred):
        return None
    size = len(centred)
    spectrum = np.fft.rfft(centred, n=2 * size)
    autocorrelation = np.fft.irfft(spectrum * np.conj(spectrum))[:size]
    lags = np.arange(size, dtype=np.float64)
    bpm = np.where(lags > 0, 60.0 * envelope_rate / np.maximum(lags, 1), np.inf)
    usable = (bpm >= MIN_BPM) & (bpm <= MAX_BPM)
    if not usable.any():
        return None
    prior = np.exp(-0.5 * (np.log2(bpm[usable] / TEMPO_PRIOR_BPM) / TEMPO_PRIOR_OCTAVES) ** 2)
    best = np.argmax(autocorrelation[usable] * prior)
    return float(lags[usable][best])


def _best_paths(local, offsets, penalty, threshold):
    """Ellis' dynamic programme: each envelope hop's best score and the beat before it.

    local : np.ndarray, shape (n,); offsets : np.ndarray, shape (k,), increasing and negative
    (where the previous beat may lie); penalty : np.ndarray, shape (k,), for each offset.
    Returns ``(score, backlink)``, shape (n,) each; backlink -1 where no beat precedes.
    Hops up to the first above ``threshold`` start a path. A hop's candidates lie at
    least ``-offsets[-1]`` hops back, so that many hops are solved at once.
    """
    n = len(local)
    score = np.array(local, dtype=np.float64)
    backlink = np.full(n, -1, dtype=np.int64)
    above = np.flatnonzero(local > threshold)
    if not len(above):
        return score, backlink
    block = max(1, int(-offsets[-1]))
    for first in range(int(above[0]) + 1, n, block):
        hops = np.arange(first, min(first + block, n))
        candidates = hops[:, None] + offsets[None, :]
        valid = candidates >= 0
        totals = np.where(valid, score[np.maximum(candidates, 0)] + penalty, -np.inf)
        best = np.argmax(totals, axis=1)
        has_previous = valid[:, -1]
        rows = np.arange(len(hops))
        score[hops] = np.where(has_previous, local[hops] + totals[rows, best], local[hops])
        backlink[hops] = np.where(has_previous, candidates[rows, best], -1)
    return score, backlink


def track(envelope, envelope_rate, fine_envelope, fine_rate):
    """Beat positions in envelope hops (indices into ``envelope``).

    envelope : np.ndarray, shape (n,), onset strength at ``envelope_rate`` Hz
    fine_envelope : np.ndarray, shape (m,), the same at a higher ``fine_rate``; the
        tempo is measured on it, where a beat period falls less between two lags
    Returns np.ndarray, shape (n_beats,), int64
    """
    envelope = np.asarray(envelope, dtype=np.float64)
    fine_period = estimate_period(np.asarray(fine_envelope, dtype=np.float64), fine_rate)
    if fine_period is None:
        return np.zeros(0, dtype=np.int64)
    period = fine_period * envelope_rate / fine_rate
    scale = envelope.std()
    local = envelope / scale if scale > 0 else envelope
    # Smooth with a Gaussian a quarter-beat wide so near-misses still count.
    half = int(period)
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) * 32.0 / period) ** 2)
    local = np.convolve(local, kernel, mode="same")

    offsets = np.arange(-int(round(2 * period)), -int(round(period / 2)) + 1)
    penalty = -TIGHTNESS * np.log(-offsets / period) ** 2
    score, backlink = _best_paths(local, offsets, penalty, 0.01 * local.max())
    # The last beat: the best-scoring local maximum near the end.
    maxima = np.flatnonzero((score[1:-1] >= score[:-2]) & (score[1:-1] >= score[2:])) + 1
    if not len(maxima):
        return np.zeros(0, dtype=np.int64)
    good = maxima[score[maxima] >= 0.5 * np.median(score[maxima])]
    beat = int(good[-1])
    beats = [beat]
    while backlink[beat] >= 0:
        beat = int(backlink[beat])
        beats.append(beat)
    beats = np.array(beats[::-1], dtype=np.int64)
    # Drop leading/trailing beats where the music is silent.
    strong = local[beats] > 0.5 * np.sqrt(np.mean(local**2))
    if strong.any():
        first, last = np.flatnonzero(strong)[[0, -1]]
        beats = beats[first : last + 1]
    return beats


def beat_times(flux, sample_rate, accent=None, accent_rate=None):
    """Beat times in seconds from the audio's start, shape (n_beats,), float64, increasing.

    flux : np.ndarray, shape (n_onset_hops,), the onset flux (`onsets.OnsetFlux.curve`)
    sample_rate : of the onset analysis, Hz
    accent : None, or shape (m,) at ``accent_rate`` Hz: where the low end hits (`low_accent`). The flux hears a
        hi-hat as loudly as a kick, so on its own it often counts the eighth notes; the tempo is measured on
        the flux and this accent together, the beats placed on the flux.

    The tracker's tempo estimate needs memory proportional to its input, so long songs
    are tracked in overlapping two-minute segments, each keeping the beats in
    its own core; the tempo may drift between segments as the music does.
    """
    group = BEAT_HOP // ONSET_HOP
    usable = len(flux) // group * group
    if usable < group * 4 or not np.any(flux > 0):
        return np.zeros(0, dtype=np.float64)
    envelope = flux[:usable].reshape(-1, group).mean(axis=1)
    envelope_rate = sample_rate / BEAT_HOP
    fine_envelope = flux[:usable].reshape(-1, group // 4).mean(axis=1)
    if accent is not None and len(accent) > 1 and np.any(accent > 0):
        fine_times_s = np.arange(len(fine_envelope)) * (ONSET_HOP * group // 4) / sample_rate
        accent_on_fine = np.interp(fine_times_s, np.arange(len(accent)) / accent_rate, accent)
        fine_envelope = fine_envelope / max(fine_envelope.std(), 1e-12) + accent_on_fine / max(accent_on_fine.std(), 1e-12)
    segment, context = int(BEAT_SEGMENT_S * envelope_rate), int(BEAT_CONTEXT_S * envelope_rate)
    found = []
    for region_start, region_end in steady_tempo_regions(fine_envelope, envelope_rate * 4, 4):
        for core_start in range(region_start, region_end, segment):
            core_end = min(core_start + segment, region_end)
            start, end = max(region_start, core_start - context), min(region_end, core_end + context)
            piece = envelope[start:end]
            if not np.any(piece > 0):
                continue
            beats = track(piece, envelope_rate, fine_envelope[start * 4 : end * 4], envelope_rate * 4) + start
            beats = beats[(beats >= core_start) & (beats < core_end)]
            times_s = _snap_to_onsets(beats, flux, group, sample_rate)
            if accent is not None:
                times_s = tapped_level(times_s, flux, sample_rate / ONSET_HOP, accent, accent_rate)
            found.append(times_s)
    if not found:
        return np.zeros(0, dtype=np.float64)
    delay_s = (ONSET_N_FFT // 2) / sample_rate  # a hop's flux belongs to its window's end
    return np.concatenate(found) + delay_s


OFFBEAT_FLUX_RATIO = 0.8  # every other beat this much weaker in the flux,
OFFBEAT_ACCENT_RATIO = 0.3  # and with this little of the low end: those are off-beats (eighth notes)
MIDBEAT_FLUX_RATIO = 0.7  # hits midway between the beats this strong in the flux,
MIDBEAT_ACCENT_RATIO = 0.2  # and with this much low end (a snare's body, a bass note): the beat is twice as fast
OFFBEAT_SHIFT_ACCENT_RATIO = 3.0  # the low end this much stronger midway between the beats: they are off-beats
TAPPED_BPM_RANGE = (60.0, 200.0)  # halving and doubling stay inside this
STRENGTH_WINDOW_S = 0.05  # a beat's strength is the curve's highest within this of it


def _strength_at(times_s, curve, rate):
    """The highest value of ``curve`` (at ``rate`` Hz) within `STRENGTH_WINDOW_S` of each time, shape (n,)."""
    reach = max(1, int(STRENGTH_WINDOW_S * rate))
    centres = np.clip(np.rint(np.asarray(times_s) * rate).astype(np.int64), 0, len(curve) - 1)
    return np.array([curve[max(0, c - reach): c + reach + 1].max() for c in centres]) if len(curve) else \
        np.zeros(len(centres))


def tapped_level(times_s, flux, flux_rate, accent, accent_rate):
    """The beats a listener taps, from beats tracked at twice or half their tempo (times_s: shape (n,), s).

    Tracked on the off-beats (a hi-hat between the kicks changes the spectrum as much as a kick): the low end
    is much stronger midway between the beats: the beats move there. Tracked at the eighth notes: every
    other beat is weaker in the flux and carries almost no low end (a
    hi-hat between kicks and snares): only the strong ones are kept. Tracked at half the tempo: midway
    between the beats are hits nearly as strong with low end of their own (the snare between the kicks): the
    midpoints are added. Neither leaves `TAPPED_BPM_RANGE`."""
    if len(times_s) < 8:
        return times_s
    gap_s = float(np.median(np.diff(times_s)))
    flux_at, accent_at = _strength_at(times_s, flux, flux_rate), _strength_at(times_s, accent, accent_rate)
    parities = [(flux_at[p::2].mean(), accent_at[p::2].mean()) for p in (0, 1)]
    strong = 0 if parities[0][1] >= parities[1][1] else 1
    (strong_flux, strong_accent), (weak_flux, weak_accent) = parities[strong], parities[1 - strong]
    if (60.0 / (2 * gap_s) >= TAPPED_BPM_RANGE[0] and weak_flux < OFFBEAT_FLUX_RATIO * strong_flux
            and weak_accent < OFFBEAT_ACCENT_RATIO * strong_accent):
        return times_s[strong::2]
    middles = (times_s[:-1] + times_s[1:]) / 2
    middle_flux, middle_accent = _strength_at(middles, flux, flux_rate), _strength_at(middles, accent, accent_rate)
    if middle_accent.mean() >= OFFBEAT_SHIFT_ACCENT_RATIO * max(accent_at.mean(), 1e-12) \
            and middle_flux.mean() >= MIDBEAT_FLUX_RATIO * flux_at.mean():
        times_s = _on_hits(middles, flux, flux_rate)  # tracked on the off-beats: the kicks are between them
        flux_at, accent_at = middle_flux, middle_accent
        middles = (times_s[:-1] + times_s[1:]) / 2
        middle_flux, middle_accent = _strength_at(middles, flux, flux_rate), _strength_at(middles, accent, accent_rate)
    if (60.0 / (gap_s / 2) <= TAPPED_BPM_RANGE[1] and middle_flux.mean() >= MIDBEAT_FLUX_RATIO * flux_at.mean()
            and middle_accent.mean() >= MIDBEAT_ACCENT_RATIO * accent_at.mean()):
        return np.sort(np.concatenate([times_s, _on_hits(middles, flux, flux_rate)]))
    return times_s


def _on_hits(times_s, flux, flux_rate):
    """Each time moved to the strongest flux within `STRENGTH_WINDOW_S` of it, shape (n,)."""
    reach = max(1, int(STRENGTH_WINDOW_S * flux_rate))
    moved = []
    for time in times_s:
        centre = int(round(time * flux_rate))
        low = max(0, centre - reach)
        moved.append((low + int(np.argmax(flux[low:centre + reach + 1]))) / flux_rate)
    return np.asarray(moved)


def steady_tempo_regions(fine_envelope, fine_rate, per_hop):
    """Where the tempo holds: ``[(start, end), ...]`` in envelope hops (``per_hop`` fine hops each), covering
    the song in order. The tempo is measured on 12-second windows; where `TEMPO_STEADY_WINDOWS` windows agree
    before and as many agree after, and the two disagree, a new region starts midway between the last window
    before and the first after.

    fine_envelope : shape (m,), onset strength at ``fine_rate`` Hz
    """
    n_hops = len(fine_envelope) // per_hop
    window, hop = int(TEMPO_WINDOW_S * fine_rate), int(TEMPO_WINDOW_HOP_S * fine_rate)
    if len(fine_envelope) < window + 2 * hop:
        return [(0, n_hops)]
    starts = range(0, len(fine_envelope) - window + 1, hop)
    bpm = []
    for start in starts:
        period = estimate_period(np.asarray(fine_envelope[start:start + window], np.float64), fine_rate)
        bpm.append(60.0 * fine_rate / period if period else np.nan)
    bpm = np.asarray(bpm)

    def differs(a, b):  # by more than the tolerance, and not by a metrical ratio (the same pulse, counted again)
        octaves = abs(np.log2(a / b))
        return not np.isnan(octaves) and np.min(np.abs(octaves - METRICAL_OCTAVES)) > TEMPO_CHANGE_OCTAVES

    def steady(run):  # every window of the run agrees with every other
        return all(not differs(a, b) for a in run for b in run)

    # A change needs TEMPO_STEADY_WINDOWS windows that agree on each side, and the two sides to disagree: a
    # real song's windows flip between metrical levels (the bar, the half note) and must not cut it up.
    cuts, i, steady_run = [], TEMPO_STEADY_WINDOWS, TEMPO_STEADY_WINDOWS
    while i <= len(bpm) - steady_run:
        before, after = bpm[i - steady_run:i], bpm[i:i + steady_run]
        if steady(before) and steady(after) and differs(np.median(before), np.median(after)):
            middle = starts[i] + window // 2 - hop // 2  # between the centres of windows i - 1 and i
            cuts.append(int(middle // per_hop))
            i += steady_run
        i += 1
    edges = [0] + cuts + [n_hops]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]


LEVEL_FLOOR = 1e-10  # mean square below which a level counts as silence (-100 dB)


def low_accent(low_mean_square, floor=LEVEL_FLOOR):
    """Where the low end hits: the rise of the low bands' level in dB, half-wave rectified, shape (n_hops,).

    low_mean_square : shape (n_hops,), the low bands' summed mean square on band hops
    """
    level_db = 10.0 * np.log10(np.maximum(np.asarray(low_mean_square, np.float64), floor))
    return np.maximum(np.diff(level_db, prepend=level_db[:1]), 0.0)


def tempo_bpm(times_s):
    """The tempo of beats at ``times_s`` (shape (n_beats,)): 60 / the median gap; 0.0 without two beats."""
    if len(times_s) < 2:
        return 0.0
    return 60.0 / float(np.median(np.diff(times_s)))


def beat_video_frames(flux, sample_rate, fps, fps_base, offset_ms, n_frames, times_s=None):
    """Beat positions as video frame indices, shape (n_beats,), int64.

    flux : np.ndarray, shape (n_onset_hops,), the onset flux; sample_rate : of the onset analysis, Hz;
    n_frames : the song's number of video frames; times_s : `beat_times` when already found
    """
    times_s = beat_times(flux, sample_rate) if times_s is None else times_s
    video_frames = timing.frames_of_times(times_s, fps, fps_base, offset_ms)
    return np.unique(video_frames[(video_frames >= 0) & (video_frames < n_frames)]).astype(np.int64)


def _snap_to_onsets(beats, flux, group, sample_rate):
    """Beat times (s): each beat moved to the strongest onset within half a beat hop.

    beats : envelope indices (each covers ``group`` onset hops); returns shape (n_beats,).
    """
    times = []
    for beat in beats:
        low = max(0, beat * group - group // 2)
        high = min(len(flux), (beat + 1) * group + group // 2)
        peak = low + int(np.argmax(flux[low:high])) if high > low else beat * group
        times.append(peak * ONSET_HOP / sample_rate)
    return np.asarray(times, dtype=np.float64)
