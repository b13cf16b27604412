"""Beat tracking: Ellis' dynamic programme (2007), in plain numpy.

librosa implements the same algorithm, but its numba kernels compile on first use
in every new process (about 4 s here), longer than the whole rest of a bake; this
version costs milliseconds. Tempo comes from the onset envelope's autocorrelation
weighted by a log-normal prior around 120 BPM, as in librosa.
"""

import numpy as np

TEMPO_PRIOR_BPM = 120.0
TEMPO_PRIOR_OCTAVES = 1.0
MIN_BPM, MAX_BPM = 40.0, 240.0
TIGHTNESS = 100.0  # how strongly beats keep the tempo (librosa's default)


def estimate_period(envelope, envelope_rate):
    """Beat period in envelope frames, from the autocorrelation (float), or None."""
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
    """Ellis' dynamic programme: each frame's best score and the beat before it.

    local : np.ndarray, shape (n,); offsets : np.ndarray, shape (k,), increasing and negative
    (where the previous beat may lie); penalty : np.ndarray, shape (k,), for each offset.
    Returns ``(score, backlink)``, shape (n,) each; backlink -1 where no beat precedes.
    Frames up to the first above ``threshold`` start a path. A frame's candidates lie at
    least ``-offsets[-1]`` frames back, so that many frames are solved at once.
    """
    n = len(local)
    score = np.array(local, dtype=np.float64)
    backlink = np.full(n, -1, dtype=np.int64)
    above = np.flatnonzero(local > threshold)
    if not len(above):
        return score, backlink
    block = max(1, int(-offsets[-1]))
    for first in range(int(above[0]) + 1, n, block):
        frames = np.arange(first, min(first + block, n))
        candidates = frames[:, None] + offsets[None, :]
        valid = candidates >= 0
        totals = np.where(valid, score[np.maximum(candidates, 0)] + penalty, -np.inf)
        best = np.argmax(totals, axis=1)
        has_previous = valid[:, -1]
        rows = np.arange(len(frames))
        score[frames] = np.where(has_previous, local[frames] + totals[rows, best], local[frames])
        backlink[frames] = np.where(has_previous, candidates[rows, best], -1)
    return score, backlink


def track(envelope, envelope_rate, fine_envelope, fine_rate):
    """Beat positions in envelope frames.

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
