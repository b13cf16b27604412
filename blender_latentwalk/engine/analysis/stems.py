"""Stems: a band may listen to a stem file (drums.wav, bass.wav...) instead of the mix.

A stem must lie on the song's timeline: it is resampled to the analysis rate like the
song (so another sample rate is aligned, not shifted), a shorter one is silent after
its end, and one that is longer must be silent past the song's end. A stem whose hits
line up with the song's only after a shift was exported from another start: it is
refused with the offset measured, never shifted silently.
"""

import itertools
import os

import numpy as np

from . import audio
from . import levels
from . import shaping
from . import spectra
from .bands import check_bands_fit_file
from ..errors import LatentWalkError

# Offsets are searched up to this far, over the song's first OFFSET_CHECK_S seconds, and
# refused from two band hops (23 ms) on when the shifted stem matches the song clearly
# better than the stem as it is. The match: level rises in log-spaced frequency groups
# (a note starting in the stem rises in the same groups, at the same time, in the mix).
MAX_OFFSET_S = 8.0
OFFSET_CHECK_S = 60.0
EVENT_RISE_DB = 6.0
MIN_STEM_EVENTS = 3
MIN_OFFSET_HOPS = 2
OFFSET_EVIDENCE_RATIO = 1.5


def listeners(bands, path, onset_source=None, chroma_source=None):
    """What listens to the stem ``path``, for messages: e.g. ``["band 'Kick'", "the onset"]``."""
    names = [f"band '{band.name}'" for band in bands if band.stem_path == path]
    return names + [f"the {curve}" for curve, source in (("onset", onset_source), ("chroma", chroma_source))
                    if source == path]


def probe_stems(bands, onset_source=None, chroma_source=None):
    """``{stem path: AudioInfo}`` of every stem the bands (and the onset and chroma curves,
    when their source is a file) listen to, in that order.

    Raises a ``LatentWalkError`` naming the curve for a missing or unreadable stem, or
    one whose sample rate cannot hold a band that listens to it.
    """
    paths = [band.stem_path for band in bands if band.stem_path is not None]
    paths += [source for source in (onset_source, chroma_source) if source is not None]
    files = {}
    for path in paths:
        if path in files:
            continue
        if not os.path.isfile(path):
            raise LatentWalkError(
                f"the stem of {listeners(bands, path, onset_source, chroma_source)[0]} is not found: '{path}'. "
                "Choose the stem file again, or set the source back to the mix."
            )
        info = audio.probe(path)
        check_bands_fit_file([b for b in bands if b.stem_path == path], info.sample_rate, path)
        files[path] = info
    return files


def check_hops(band_rate, hop):
    """How many band hops (``hop`` samples at ``band_rate`` Hz) the offset check looks at."""
    return int(OFFSET_CHECK_S * band_rate / hop)


def measure(path, band_bins, chroma_bank, band_rate, groups, n_check_hops):
    """A stem's levels on the same band hops as the mix, streamed once.

    band_bins : shape (k, n_bins), `filterbanks.band_bins` of the bands listening to it
    chroma_bank : shape (12, n_bins) when the chroma listens to it, else None
    groups : shape (n_bins, n_groups), `separation.group_matrix`

    Returns ``(levels, group_power)``: levels shape (n_stem_hops, k [+ 12] + 1), float64,
    the bands' mean squares (then the chroma) and the total; group_power shape
    (min(n_stem_hops, n_check_hops), n_groups), float64, for the offset check.
    """
    n_fft, hop = spectra.band_fft_size(band_rate)
    parts = [band_bins] + ([chroma_bank] if chroma_bank is not None else [])
    matrix = np.concatenate(parts + [np.ones((1, band_bins.shape[1]), np.float32)]).T.copy()
    framer, spectrum, blocks, group_blocks = spectra.StftFramer(n_fft, hop), spectra.PowerSpectrum(n_fft), [], []
    stream = audio.iter_mono(path, band_rate)
    for samples, final in itertools.chain(((b, False) for b in stream), [(np.zeros(0, np.float32), True)]):
        first_hop, stft_frames = framer.push(samples, final)
        if len(stft_frames):
            power = spectrum.power(spectrum.spectra(stft_frames))
            blocks.append((first_hop, power @ matrix))
            if first_hop < n_check_hops:
                group_blocks.append((first_hop, power[: n_check_hops - first_hop] @ groups))
    return levels.stack_blocks(blocks, matrix.shape[1]), levels.stack_blocks(group_blocks, groups.shape[1])


def _events(group_power):
    """Where a frequency group's level jumps by `EVENT_RISE_DB` within a hop (silence floored):
    shape (n - 1, n_groups), 0 or 1."""
    level = np.maximum(shaping.level_db(group_power), shaping.SILENCE_DB)
    return (np.diff(level, axis=0) >= EVENT_RISE_DB).astype(np.float64)


def measure_offset_hops(stem_groups, song_groups, max_lag_hops):
    """How many hops later the stem's notes and hits come than the song's, or None when the
    stem as it is fits (or too little happens in it to tell). Both: power per hop and
    frequency group, shape (n, n_groups)."""
    n = min(len(stem_groups), len(song_groups))
    if n < 4:
        return None
    stem, song = _events(stem_groups[:n]), _events(song_groups[:n])
    # Notes and hits: runs of events in consecutive hops count once.
    if np.count_nonzero(stem.any(axis=1)[1:] & ~stem.any(axis=1)[:-1]) < MIN_STEM_EVENTS or not song.any():
        return None
    size = 1 << int(np.ceil(np.log2(2 * len(stem))))
    spectra = np.fft.rfft(stem, size, axis=0) * np.conj(np.fft.rfft(song, size, axis=0))
    correlation = np.fft.irfft(spectra.sum(axis=1), size)
    lags = np.arange(-max_lag_hops, max_lag_hops + 1)
    scores = correlation[lags % size]  # score[lag]: stem[t + lag] against song[t]
    best = int(lags[np.argmax(scores)])
    # Against chance: how far each score stands above the typical lag's.
    chance = float(np.median(scores))
    evidence = scores.max() - chance
    if abs(best) < MIN_OFFSET_HOPS or evidence <= OFFSET_EVIDENCE_RATIO * max(correlation[0] - chance, 0.0):
        return None
    return best


def fit_to_song(stem_levels, stem_groups, song_groups, n_hops, path, curves, hop_s, window_hops):
    """The stem's band levels on the song's hops, or a ``LatentWalkError`` saying why not.

    stem_levels : np.ndarray, shape (n_stem_hops, k + 1): its curves' mean squares, then its total
    stem_groups, song_groups : np.ndarray, shape (k, n_groups): power per frequency group over the
        first `OFFSET_CHECK_S` seconds
    n_hops : the song's number of band hops
    curves : what listens to it, for messages (`listeners`)
    Returns np.ndarray, shape (n_hops, k)
    """
    which = f"stem '{path}' ({', '.join(curves)})"
    stem_total = stem_levels[:, -1]
    past_end = stem_total[n_hops + window_hops:]
    if len(past_end) and shaping.level_db(past_end.max()) > shaping.SILENCE_DB:
        extra_s = (len(stem_levels) - n_hops) * hop_s
        raise LatentWalkError(
            f"{which} is {extra_s:.2f} s longer than the song and still sounds after the song's end: it "
            "does not follow the song's timeline. Export the stem over the song's range (same start and length)."
        )
    offset = measure_offset_hops(stem_groups, song_groups, int(MAX_OFFSET_S / hop_s))
    if offset is not None:
        direction = "later" if offset > 0 else "earlier"
        raise LatentWalkError(
            f"{which} is offset from the song: its hits come {abs(offset) * hop_s:.3f} s {direction} than the "
            "same hits in the song. Export the stem from the song's first sample (the same start as the mix); "
            "stems are never shifted to fit."
        )
    fitted = np.zeros((n_hops, stem_levels.shape[1] - 1))
    shared = min(n_hops, len(stem_levels))
    fitted[:shared] = stem_levels[:shared, :-1]  # a shorter stem is silent after its end
    return fitted
