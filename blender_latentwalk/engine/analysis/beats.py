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


def beat_times(flux, sample_rate):
    """Beat times in seconds from the audio's start, shape (n_beats,), float64, increasing.

    flux : np.ndarray, shape (n_onset_hops,), the onset flux (`onsets.OnsetFlux.curve`)
    sample_rate : of the onset analysis, Hz

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
    segment, context = int(BEAT_SEGMENT_S * envelope_rate), int(BEAT_CONTEXT_S * envelope_rate)
    found = []
    for core_start in range(0, len(envelope), segment):
        core_end = min(core_start + segment, len(envelope))
        start, end = max(0, core_start - context), min(len(envelope), core_end + context)
        piece = envelope[start:end]
        if not np.any(piece > 0):
            continue
        beats = track(piece, envelope_rate, fine_envelope[start * 4 : end * 4], envelope_rate * 4) + start
        beats = beats[(beats >= core_start) & (beats < core_end)]
        found.append(_snap_to_onsets(beats, flux, group, sample_rate))
    if not found:
        return np.zeros(0, dtype=np.float64)
    delay_s = (ONSET_N_FFT // 2) / sample_rate  # a hop's flux belongs to its window's end
    return np.concatenate(found) + delay_s


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
