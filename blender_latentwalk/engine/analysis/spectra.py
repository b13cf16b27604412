"""Short-time power spectra of a stream of samples (librosa's ``stft(center=True)``, block by block).

Two analyses read spectra: band levels and chroma on 93 ms windows every 11.6 ms (the
"band hop"), onsets on 12 ms windows every 0.73 ms (the "onset hop"). A hop index ``j``
names the STFT frame centred on sample ``j * hop``; video frames are another thing
(`timing`), and are never called hops.
"""

import numpy as np
import scipy.fft

from .bands import ANALYSIS_SAMPLE_RATE

# Band energies, RMS, chroma: a 93 ms window resolves bass notes; 11.6 ms hops (at 22050 Hz).
BAND_N_FFT = 2048
BAND_HOP = 256
# Onsets: a 12 ms window on 0.73 ms hops places a hit within about 1.5 ms, late, never early.
ONSET_N_FFT = 256
ONSET_HOP = 16

# Spectra are taken a few hundred hops at a time: the STFT frames, their spectra and powers
# (about 2 MB each) then stay in the CPU's cache from the FFT to the last product; whole
# 20 s blocks (tens of MB per step) made the same work about twice as slow.
CHUNK_BYTES = 1 << 21


def band_fft_size(band_rate):
    """``(n_fft, hop)`` in samples for band levels at ``band_rate`` Hz: `BAND_N_FFT` and `BAND_HOP`
    at `ANALYSIS_SAMPLE_RATE`, the same durations (93 ms, 11.6 ms) at other rates."""
    if band_rate == ANALYSIS_SAMPLE_RATE:
        return BAND_N_FFT, BAND_HOP
    scale = band_rate / ANALYSIS_SAMPLE_RATE
    return scipy.fft.next_fast_len(int(round(BAND_N_FFT * scale))), int(round(BAND_HOP * scale))


def window_end_s(hops, n_fft, hop, sample_rate):
    """The time (s) each hop's window ends, where a sound entering it is first measured.

    hops : np.ndarray, shape (n,), hop indices -> np.ndarray, shape (n,), float64
    """
    return hops * (hop / sample_rate) + (n_fft // 2) / sample_rate


class StftFramer:
    """Cuts a stream of sample blocks into centred STFT frames.

    STFT frame ``j`` (hop ``j``) is centred on sample ``j * hop`` (librosa's ``center=True``
    with zero padding), so the result does not depend on how the stream was split.
    """

    def __init__(self, n_fft, hop):
        self.n_fft = n_fft
        self.hop = hop
        self.buffer = np.zeros(n_fft // 2, dtype=np.float32)
        self.buffer_start = 0  # index in the padded stream of buffer[0]
        self.next_hop = 0

    def push(self, samples, final=False):
        """Add samples, shape (n,), float32; ``final`` pads the stream's end.

        Returns ``(first_hop, stft_frames)``: the STFT frames now complete, shape (m, n_fft).
        """
        parts = [self.buffer, samples]
        if final:
            parts.append(np.zeros(self.n_fft // 2, dtype=np.float32))
        self.buffer = np.concatenate(parts)
        offset = self.next_hop * self.hop - self.buffer_start
        available = len(self.buffer) - offset - self.n_fft
        if available < 0:
            return self.next_hop, np.zeros((0, self.n_fft), dtype=np.float32)
        count = available // self.hop + 1
        windows = np.lib.stride_tricks.sliding_window_view(self.buffer[offset:], self.n_fft)
        stft_frames = windows[:: self.hop][:count]  # a view: the spectrum multiplies it into a new array
        first_hop = self.next_hop
        self.next_hop += count
        drop = self.next_hop * self.hop - self.buffer_start
        self.buffer = self.buffer[drop:]
        self.buffer_start += drop
        return first_hop, stft_frames


def in_chunks(stft_frames):
    """Yield ``(offset, stft_frames[offset:offset + k])`` over ``stft_frames`` (shape (m, n_fft)),
    k rows of about `CHUNK_BYTES`."""
    rows = max(1, CHUNK_BYTES // (4 * max(1, stft_frames.shape[1])))
    for start in range(0, len(stft_frames), rows):
        yield start, stft_frames[start : start + rows]


class PowerSpectrum:
    """Windowed spectra and power spectra, scaled so a signal's total power equals its mean square."""

    def __init__(self, n_fft):
        self.window = np.hanning(n_fft + 1)[:-1].astype(np.float32)  # periodic Hann, as librosa uses
        # Parseval: sum over one-sided bins of |X|^2 * 2 / (n_fft * sum(w^2)) ~ mean square.
        self.scale = np.float32(2.0 / (n_fft * float(np.sum(self.window**2))))

    def spectra(self, stft_frames):
        """stft_frames: shape (m, n_fft) -> their windowed spectra, shape (m, n_fft // 2 + 1), complex64."""
        return scipy.fft.rfft(stft_frames * self.window, axis=1)

    def power(self, spectra):
        """spectra: shape (m, n_bins), complex64 -> power per bin, same shape, float32."""
        power = spectra.real**2
        power += spectra.imag**2
        power *= self.scale
        return power
