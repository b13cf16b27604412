"""Onsets: the spectral flux on onset hops, and the times hits begin.

The flux is the mean rise, in dB, of `ONSET_N_MELS` mel bands from one onset hop
(`spectra.ONSET_HOP`, 0.73 ms) to the next; the fresh rise (`fresh_rise`), above their highest of the
few hops before, tells hits from a steady sound's flicker. A hit enters an onset window half a window
after the window's centre (at its end), and the flux peaks on that first hop, so a
hop's flux belongs to its window's end (`spectra.window_end_s`): never early.
"""

import numpy as np

from . import filterbanks
from . import shaping
from . import spectra
from .spectra import ONSET_HOP, ONSET_N_FFT

ONSET_N_MELS = 24
ONSET_FLOOR_DB = -150.0
# The fresh rise counts above a band's highest of this many hops before (11.6 ms: an onset window; a
# held chord's partials beat faster than that).
ONSET_MAX_FILTER_HOPS = 16
# Hits for anchoring band levels: flux peaks of at least 1 dB mean rise per hop, 50 ms
# apart; a hit begins where the flux first passes half its peak (within 6 ms): lower, the
# resampler's pre-ringing (under a millisecond) would place hits early.
ONSET_PEAK_DB = 1.0
ONSET_MIN_GAP_S = 0.050
ONSET_RISE_S = 0.006
ONSET_RISE_FRACTION = 0.5
# `onset_times` places a hit up to this much after its first sample (a 12 ms window on 0.73 ms hops), never
# before it.
ONSET_TIME_LATE_S = 0.0015
ONSET_PEAK_SEGMENT_HOPS = 1 << 18  # peaks are searched 190 s at a time (memory flat with song length)


def mel_db(power, mel_bank):
    """power: shape (m, n_bins), float32 -> mel band levels in dB (floored), shape (m, n_mels), float32."""
    levels_db = 10.0 * np.log10(np.maximum(power @ mel_bank.T, 1e-15))
    return np.maximum(levels_db, ONSET_FLOOR_DB)


def spectral_flux(mel_levels_db, previous_db):
    """Mean rise (dB) of the mel bands per hop, shape (m,), float32.

    mel_levels_db : shape (m, n_mels); previous_db : shape (n_mels,), the hop before the first
    """
    rises = np.diff(np.vstack([previous_db[None, :], mel_levels_db]), axis=0)
    return np.maximum(rises, 0.0).mean(axis=1)


def fresh_rise(mel_levels_db, earlier_db):
    """Mean rise (dB) of the mel bands per hop above their highest of the `ONSET_MAX_FILTER_HOPS` hops
    before, shape (m,), float32.

    mel_levels_db : shape (m, n_mels); earlier_db : shape (ONSET_MAX_FILTER_HOPS, n_mels), the hops before
    the first. A band rising steadily (a hit's attack) rises above each of them as it does above the last
    hop alone; a band that only flickers (noise, a noisy sound's decay, beating partials) seldom passes its
    own recent highest, and then by little: between hits this is near 0 where the flux is not.
    """
    history = np.vstack([earlier_db, mel_levels_db])
    recent = history[: len(mel_levels_db)].copy()
    for back in range(1, len(earlier_db)):
        np.maximum(recent, history[back : back + len(mel_levels_db)], out=recent)
    return np.maximum(mel_levels_db - recent, 0.0).mean(axis=1)


class OnsetFlux:
    """The spectral flux of a stream of samples at ``sample_rate`` Hz, onset hop by onset hop.

    `push` blocks of samples in any split; `curve` then gives the whole song's flux, `fresh_rise_curve`
    its rise above each band's recent highest (`fresh_rise`).
    """

    def __init__(self, sample_rate):
        self.sample_rate = sample_rate
        self.framer = spectra.StftFramer(ONSET_N_FFT, ONSET_HOP)
        self.spectrum = spectra.PowerSpectrum(ONSET_N_FFT)
        self.mel_bank = filterbanks.mel(sample_rate, ONSET_N_FFT, ONSET_N_MELS)
        self.earlier_db = np.full((ONSET_MAX_FILTER_HOPS, ONSET_N_MELS), ONSET_FLOOR_DB, dtype=np.float32)
        self.chunks, self.fresh_chunks = [], []  # the flux and fresh rise of consecutive hops, float32

    def push(self, samples, final=False):
        """samples : shape (n,), float32; ``final`` on the stream's end (pads its last windows)."""
        _, stft_frames = self.framer.push(samples, final)
        for _, chunk in spectra.in_chunks(stft_frames):
            levels_db = mel_db(self.spectrum.power(self.spectrum.spectra(chunk)), self.mel_bank)
            self.chunks.append(spectral_flux(levels_db, self.earlier_db[-1]).astype(np.float32))
            self.fresh_chunks.append(fresh_rise(levels_db, self.earlier_db).astype(np.float32))
            self.earlier_db = np.vstack([self.earlier_db, levels_db])[-ONSET_MAX_FILTER_HOPS:]

    def curve(self):
        """The flux of every onset hop so far, shape (n_hops,), float32 (its chunks are let go)."""
        flux = np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.float32)
        self.chunks = []  # one copy of the hop-level curve (the largest per-hop output) from here on
        return flux

    def fresh_rise_curve(self):
        """The fresh rise (`fresh_rise`) of every onset hop so far, shape (n_hops,), float32 (let go, as `curve`)."""
        rise = np.concatenate(self.fresh_chunks) if self.fresh_chunks else np.zeros(0, np.float32)
        self.fresh_chunks = []
        return rise


def onset_times(flux, sample_rate):
    """Times (s) where hits begin, from the hop-level onset flux.

    flux : np.ndarray, shape (n_hops,), mean dB rise per `ONSET_HOP` (window-end time)
    Returns np.ndarray, shape (n_onsets,), increasing.

    A hit is a peak of the flux (at least ``ONSET_MIN_GAP_S`` from a stronger one);
    its time is where the flux's rise into that peak begins, so a hit over a
    background (whose flux climbs over a few hops) is not placed late.
    """
    if len(flux) < 3:
        return np.zeros(0, dtype=np.float64)
    peaks = _flux_peaks(flux, max(1, int(ONSET_MIN_GAP_S * sample_rate / ONSET_HOP)))
    starts = _rise_starts(flux, peaks, int(ONSET_RISE_S * sample_rate / ONSET_HOP))
    return spectra.window_end_s(np.unique(starts), ONSET_N_FFT, ONSET_HOP, sample_rate)


def _flux_peaks(flux, gap_hops):
    """Hops, shape (n_peaks,), where the flux is the highest within ``gap_hops`` either side,
    entered by a rise and at least `ONSET_PEAK_DB`. (scipy.signal's find_peaks would do,
    but importing scipy.signal costs a second in every new process.)"""
    peaks = []
    for first in range(0, len(flux), ONSET_PEAK_SEGMENT_HOPS):  # a segment at a time: bounded temporaries
        stop = min(first + ONSET_PEAK_SEGMENT_HOPS, len(flux))
        low, high = max(0, first - gap_hops), min(len(flux), stop + gap_hops)  # each core hop's neighbourhood
        piece = flux[low:high]
        highest = shaping.running_max(piece, 2 * gap_hops + 1)
        rising = np.r_[False, piece[1:] > piece[:-1]]
        is_peak = (piece >= highest) & rising & (piece >= ONSET_PEAK_DB)
        peaks.append(np.flatnonzero(is_peak[first - low : stop - low]) + first)
    return np.concatenate(peaks)


def _rise_starts(flux, peaks, lookback_hops):
    """For each peak hop, the hop its rise begins: after the last hop (within ``lookback_hops``)
    below `ONSET_RISE_FRACTION` of the peak; where none is (a hit over a background whose flux stays
    high), after the lowest hop within them, not at their start (which could be before the hit:
    `anchoring.credit_hits` credits a hit's frame). Shape (n_peaks,), int64."""
    starts = np.empty(len(peaks), dtype=np.int64)
    for i, peak in enumerate(peaks):
        low = max(0, peak - lookback_hops)
        below = np.flatnonzero(flux[low:peak] < ONSET_RISE_FRACTION * flux[peak])
        if len(below):
            starts[i] = low + below[-1] + 1
        else:
            starts[i] = low + int(np.argmin(flux[low : peak + 1])) if peak > low else peak
    return starts
