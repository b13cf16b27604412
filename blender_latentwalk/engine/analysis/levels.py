"""Band levels on band hops: the mean square of each band, the overall mean square and 12 chroma values.

They are products of the band power spectra (`spectra`) with a filter bank: a band's mean
square is the sum of its bins' power and the overall mean square the spectrum's total
(Parseval), chroma librosa's chroma bank. Bands on a part of the mix come from
`separation.Splitter`, bands on a stem from `stems`. The hop-level array has one row per
band hop and these columns: the bands (in the bands' order), the total, then chroma.
"""

import functools
from dataclasses import dataclass

import numpy as np
import scipy.fft

from . import timing

N_CHROMA = 12


def level_matrix(band_bins, chroma_bank):
    """One product per block: shape (n_bins, n_band_rows + 1 + 12), float32, C-contiguous.

    band_bins : shape (n_band_rows, n_bins), `filterbanks.band_bins` of the bands measured here
    chroma_bank : shape (12, n_bins), `filterbanks.chroma`
    """
    total = np.ones((1, band_bins.shape[1]), np.float32)
    return np.concatenate([band_bins, total, chroma_bank], axis=0).T.copy()


def total_column(n_bands):
    """The hop-level array's column of the overall mean square."""
    return n_bands


def chroma_columns(n_bands):
    """The hop-level array's 12 chroma columns, a list."""
    return list(range(n_bands + 1, n_bands + 1 + N_CHROMA))


def fill_blocks(hop_levels, blocks, columns):
    """Write blocks into ``hop_levels[:, columns]``, emptying ``blocks``.

    hop_levels : shape (n_hops, width); blocks : list of ``(first hop, values (m, len(columns)))``
    """
    while blocks:
        first_hop, values = blocks.pop(0)
        stop = min(first_hop + len(values), len(hop_levels))
        if stop > first_hop:
            hop_levels[first_hop:stop, columns] = values[: stop - first_hop]


def stack_blocks(blocks, width):
    """Concatenate ``(first hop, values (m, width))`` blocks, in order: shape (n_hops, width), float64."""
    if not blocks:
        return np.zeros((0, width))
    return np.concatenate([values for _, values in blocks]).astype(np.float64)


# ---------------------------------------------------------------------------------------------------------
# Band levels on each video frame's own samples (the mix's bands and the overall level).
#
# A band is heard through three filters of the same band, applied block by block in the frequency domain:
# a zero-phase band-pass (no delay, so no lag; but it spreads a sound a little both ways in time), and a
# causal and an anti-causal "gate" whose pass band holds the band's (a minimum-phase filter and its time
# reverse: nothing before, or after, what they hear). A frame's level is the smallest of the three, each the
# highest mean square over a short window inside the frame: where the band sounds, the zero-phase level; in
# the frames before a sound starts and after it stops, nothing.
# ---------------------------------------------------------------------------------------------------------

# Edges of the zero-phase band: raised-cosine (sin^2) transitions centred on the band's edges, half power at
# the edge, 3/8 octave either side (adjacent bands sum to the whole spectrum's power; a quarter octave rang
# long enough at 60 Hz to show a kick 20 ms early, 37 dB down), but no wider than 500 Hz (a 500 Hz transition
# rings for about 2 ms: high edges need not be softer than that) and no narrower than 5 Hz (the filters ring
# for up to 1/5 s: `LEVEL_MARGIN_S` covers it).
LEVEL_EDGE_OCTAVES = 0.75
LEVEL_EDGE_MAX_HZ = 500.0
LEVEL_EDGE_MIN_HZ = 5.0
# The gates are flat over the band and fall to nothing an octave outside it (above it, over 180 Hz where
# that is wider): wide enough to open within a few milliseconds of a note (a 20-60 Hz gate falling within
# an octave above would take 24 ms for half its energy), narrow enough that a neighbour band's sound seldom
# opens them before a note of their own.
GATE_EDGE_OCTAVES = 1.0
GATE_EDGE_MIN_HZ = 180.0
GATE_HEADROOM = 2.0  # a gate shaped as its band passes it 3 dB louder: where the band sounds, the zero phase shows
# A linear-phase resampler (soxr, to the band rate) rings before a sharp hit; this far before it, the ring is
# 42-55 dB under the hit (the loudest 2 ms window before against the hit's, for clicks and hats resampled
# from 32, 44.1 and 48 kHz; 35-52 dB at 1 ms). The frame before a hit that starts this close to its frame's
# start takes its level from before then (`anchoring.credit_hits`), so it stays at silence on a 40 dB range.
RESAMPLER_RING_S = 0.0015
# A frame's level is the highest mean square over this long a window inside the frame (a frame shorter than
# that: the whole frame): a short hit counts at its own level whatever the frame rate, and a sound that
# reaches a tenth into a 60 fps frame (1.7 ms) shows there in full.
LEVEL_WINDOW_S = 0.0015
# The filtered signals are read at about this rate (the band rate's divisor nearest to it): 0.73 ms steps.
LEVEL_ENVELOPE_RATE_HZ = 1378.125
LEVEL_BLOCK_STEPS = 1 << 14  # envelope steps per FFT block (12 s at 22050 Hz): a few MB of temporaries
LEVEL_MARGIN_S = 0.5  # each block reads this far past its ends: longer than the filters ring
_MIN_PHASE_FLOOR = 1e-5  # -100 dB: a minimum-phase design needs a finite log magnitude everywhere
_DIVISORS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)  # envelope steps (FFT sizes stay products of 2 and 3)


def _rise(position):
    """0 below 0, sin^2 from 0 to 1, 1 above 1: shape (n,)."""
    return np.sin(0.5 * np.pi * np.clip(position, 0.0, 1.0)) ** 2


def band_power_response(freqs_hz, low_hz, high_hz, nyquist_hz):
    """The zero-phase band's power response at ``freqs_hz`` (shape (n,)), 0..1, half power at each edge.

    An edge at 0 Hz or at the Nyquist frequency (or whose transition would cross it) is open: the band
    reaches DC or the top of the spectrum.
    """
    freqs_hz = np.asarray(freqs_hz, dtype=np.float64)
    response = np.ones(len(freqs_hz))
    for edge_hz, rising in ((low_hz, True), (high_hz, False)):
        width_hz = float(np.clip(edge_hz * (2.0 ** (LEVEL_EDGE_OCTAVES / 2) - 2.0 ** (-LEVEL_EDGE_OCTAVES / 2)),
                                 LEVEL_EDGE_MIN_HZ, LEVEL_EDGE_MAX_HZ))
        if rising and edge_hz <= 0.0:
            continue
        if not rising and edge_hz + width_hz / 2 >= nyquist_hz:
            continue
        position = (freqs_hz - (edge_hz - width_hz / 2)) / width_hz
        response *= _rise(position) if rising else 1.0 - _rise(position)
    return response


def gate_power_response(freqs_hz, low_hz, high_hz):
    """The gates' power response (shape (n,)): 1 over ``[low_hz, high_hz]``, falling (sin^2) to 0 over
    `GATE_EDGE_OCTAVES` below and above (above: over `GATE_EDGE_MIN_HZ` where that is wider)."""
    freqs_hz = np.asarray(freqs_hz, dtype=np.float64)
    response = np.ones(len(freqs_hz))
    if low_hz > 0.0:  # (never down to 0 Hz: the analytic signal of a response reaching DC rings before a note)
        width_hz = low_hz * (1.0 - 2.0 ** -GATE_EDGE_OCTAVES)
        response *= _rise((freqs_hz - (low_hz - width_hz)) / width_hz)
    width_hz = max(high_hz * (2.0 ** GATE_EDGE_OCTAVES - 1.0), GATE_EDGE_MIN_HZ)
    response *= 1.0 - _rise((freqs_hz - high_hz) / width_hz)
    return response


def minimum_phase(magnitude):
    """The minimum-phase response with ``magnitude`` (shape (n_fft // 2 + 1,), on an rfft grid): complex,
    same shape. Cepstral construction: fold the real cepstrum of log|H| onto positive times."""
    n_fft = 2 * (len(magnitude) - 1)
    cepstrum = scipy.fft.irfft(np.log(np.maximum(magnitude, _MIN_PHASE_FLOOR)), n_fft)
    cepstrum[1 : n_fft // 2] *= 2.0
    cepstrum[n_fft // 2 + 1 :] = 0.0
    return np.exp(scipy.fft.rfft(cepstrum))


def envelope_step(sample_rate):
    """Samples per envelope step at ``sample_rate``: the divisor in `_DIVISORS` nearest `LEVEL_ENVELOPE_RATE_HZ`."""
    return min(_DIVISORS, key=lambda d: abs(np.log(sample_rate / d / LEVEL_ENVELOPE_RATE_HZ)))


@dataclass(frozen=True)
class _BandFilter:
    """One band's filters on the block's rfft bins ``first .. first + len(zero_phase) - 1`` (and
    ``gate_first ..`` for the gates): the zero-phase amplitude (real), and the causal gate (complex; its
    conjugate, ``anti_gate``, is the anti-causal one).
    ``reach_s``: how long after a hit the band's level may still be rising because of the filters (their
    spread and the gate's delay), and ``gate_delay_s`` how long its causal gate takes to open (90 % of its
    response's energy), for `anchoring.credit_hits`. A band wider than the envelope steps' rate
    swings faster than one sample a step follows; it is also read half a step earlier
    (``half_step_earlier``), and each step holds the mean of the two."""

    first: int
    zero_phase: np.ndarray
    gate_first: int
    gate: np.ndarray
    anti_gate: np.ndarray
    reach_s: float
    gate_delay_s: float
    half_step_earlier: np.ndarray = None  # for a band wider than the steps' rate: ``zero_phase`` half a step earlier


def _support(response, floor):
    """``(first, stop)`` indices where ``response`` exceeds ``floor`` (``(0, 0)`` when nowhere)."""
    inside = np.flatnonzero(response > floor)
    if not len(inside):
        return 0, 0
    return int(inside[0]), int(inside[-1]) + 1


def _bins(support_hz, sample_rate, n_fft):
    """``(first, stop)`` rfft bins of ``n_fft`` points from ``support_hz = (low, high)`` (DC left out: 1 at least)."""
    bin_hz = sample_rate / n_fft
    first = max(1, int(np.floor(support_hz[0] / bin_hz)))
    return first, max(first, min(n_fft // 2 + 1, int(np.ceil(support_hz[1] / bin_hz)) + 1))


def _energy_time_s(impulse, sample_rate, share, centred=False):
    """When ``share`` of the impulse response's energy has passed (s); ``centred``: from the middle, of the
    response's both halves folded together (a zero-phase response)."""
    energy = impulse.astype(np.float64) ** 2
    if centred:
        half = len(energy) // 2
        energy = np.fft.fftshift(energy)
        energy = energy[half:] + np.r_[energy[: half][::-1], 0.0][: len(energy) - half]
    cumulative = np.cumsum(energy) / max(energy.sum(), 1e-30)
    return float(np.searchsorted(cumulative, share)) / sample_rate


@functools.lru_cache(maxsize=8)  # a re-bake in the same process designs them once (about 50 ms)
def band_filters(bands_hz, sample_rate, n_fft, step=1):
    """The bands' filters on an rfft grid of ``n_fft`` points at ``sample_rate`` Hz: a tuple of `_BandFilter`
    (shared: not to be changed).

    bands_hz : tuple of ``(low_hz, high_hz)``; step : samples per envelope step
    """
    nyquist_hz = sample_rate / 2.0
    # Responses are designed on a grid of about 1.5 s (0.7 Hz steps, under the narrowest edge's 5 Hz; the
    # filters' responses last well under `LEVEL_MARGIN_S`) and evaluated on the block's grid only where
    # they pass anything.
    n_design = min(n_fft, 1 << int(np.ceil(np.log2(1.4 * sample_rate))))  # a power of 2: fast FFTs
    design_hz = np.fft.rfftfreq(n_design, 1.0 / sample_rate)
    step_hz = sample_rate / n_design
    filters = []
    for low_hz, high_hz in bands_hz:
        design_power = band_power_response(design_hz, low_hz, high_hz, nyquist_hz)
        spread_s = _energy_time_s(scipy.fft.irfft(np.sqrt(design_power), n_design), sample_rate, 0.99, centred=True)
        low, high = _support(design_power, 0.0)
        first, stop = _bins(((low - 1) * step_hz, high * step_hz), sample_rate, n_fft)
        block_hz = np.arange(first, stop) * (sample_rate / n_fft)
        zero_phase = np.sqrt(band_power_response(block_hz, low_hz, high_hz, nyquist_hz)).astype(np.float32)
        # A band that spreads a sound by `RESAMPLER_RING_S` or more (a low one) needs gates wider than
        # itself to open in time (`gate_power_response`); a wider band's own response, made minimum-phase,
        # opens within a millisecond or two, and is given `GATE_HEADROOM` so that it seldom shows less than
        # the zero-phase level where the band sounds steadily.
        slow = spread_s >= RESAMPLER_RING_S
        gate_power = gate_power_response(design_hz, low_hz, high_hz) if slow else GATE_HEADROOM * design_power
        gate_impulse = scipy.fft.irfft(minimum_phase(np.sqrt(gate_power)), n_design)
        # The design grid's second half is the (tiny: -37 dB for 60-250 Hz) part of the response that the
        # finite grid folds round from negative times; on the block's grid it would sound as an echo 1.5 s
        # later: the gate keeps its causal half only.
        gate_impulse[n_design // 2 :] = 0.0
        low, high = _support(gate_power, _MIN_PHASE_FLOOR**2 if slow else 0.0)
        gate_first, gate_stop = _bins(((low - 1) * step_hz, high * step_hz), sample_rate, n_fft)
        gate = scipy.fft.rfft(gate_impulse[: n_design // 2].astype(np.float32), n_fft)[gate_first:gate_stop]
        anti_gate = np.conj(gate)
        gate_delay_s = _energy_time_s(gate_impulse, sample_rate, 0.9)
        reach_s = spread_s + gate_delay_s
        half_step_earlier = None
        if step > 1 and (stop - first) * (sample_rate / n_fft) > sample_rate / step:
            # The signal delayed by half a step: read on each step, it is the signal half a step before.
            delay = np.exp(-1j * np.pi * step * np.arange(first, stop) / n_fft)
            half_step_earlier = (zero_phase * delay).astype(np.complex64)
        filters.append(_BandFilter(first, zero_phase, gate_first, gate, anti_gate, reach_s, gate_delay_s,
                                   half_step_earlier))
    return tuple(filters)


def _folded(spectrum, first, length):
    """Sum ``spectrum`` (bins ``first ..``) modulo ``length`` bins: the spectrum of the signal's every
    ``n_fft // length``-th sample (shape (length,), complex64)."""
    offset = first % length
    total = offset + len(spectrum)
    padded = np.zeros(-(-total // length) * length, dtype=np.complex64)
    padded[offset:total] = spectrum
    return padded.reshape(-1, length).sum(axis=0)


class FrameLevels:
    """Each video frame's band levels and overall level, measured on the frame's own samples, streamed.

    Frame ``k`` holds, for each band, the highest mean square over a `LEVEL_WINDOW_S` window inside the
    frame's own samples (`timing.frames_of_times`) of the band's zero-phase band-pass, but no more than its
    causal gate (which has heard nothing of a sound that starts after the frame) and its anti-causal one
    (nothing of a sound that stopped before it) show there; the overall level likewise, unfiltered. `push`
    blocks of samples at ``sample_rate`` in any split, then `result`.

    bands_hz : sequence of ``(low_hz, high_hz)``
    """

    def __init__(self, bands_hz, sample_rate, fps, fps_base=1.0, offset_ms=0.0):
        self.sample_rate, self.fps, self.fps_base, self.offset_ms = sample_rate, fps, fps_base, offset_ms
        self.step = envelope_step(sample_rate)
        self.n_fft = self.step * LEVEL_BLOCK_STEPS
        self.margin_steps = int(np.ceil(LEVEL_MARGIN_S * sample_rate / self.step))
        self.filters = band_filters(tuple((float(low), float(high)) for low, high in bands_hz), sample_rate, self.n_fft,
                                    self.step)
        frame_steps = int(np.floor(sample_rate * fps_base / fps / self.step))  # whole steps in the shortest frame
        self.window_steps = max(1, min(int(round(LEVEL_WINDOW_S * sample_rate / self.step)), frame_steps - 1))
        # (In frames too short for a window and the ring after it, high above 100 fps, as much as fits.)
        self.ring_steps = max(0, min(int(np.ceil(RESAMPLER_RING_S * sample_rate / self.step)),
                                     frame_steps - 1 - self.window_steps))
        # Per band: the zero-phase level, its causal gate and its anti-causal one; then the total.
        self.n_signals = 3 * len(self.filters) + 1
        # The filtered spectra each block takes, ``(first bin, response)``, and the signal each adds to
        # (with its weight: a wide band's zero-phase level is the mean of two readings, `_BandFilter`).
        self.spectra_rows, signals, weights = [], [], []
        signal = 0
        for band in self.filters:
            readings = [band.zero_phase] + ([band.half_step_earlier] if band.half_step_earlier is not None else [])
            for response in readings:
                self.spectra_rows.append((band.first, response))
                signals.append(signal)
                weights.append(1.0 / len(readings))
            for response in (band.gate, band.anti_gate):
                signal += 1
                self.spectra_rows.append((band.gate_first, response))
                signals.append(signal)
                weights.append(1.0)
            signal += 1
        self.spectra_weight = np.array(weights, dtype=np.float32)
        self.spectra_starts = np.flatnonzero(np.diff(np.r_[-1, signals]))  # each signal's first spectrum
        self.second_rows = np.setdiff1d(np.arange(len(signals)), self.spectra_starts)
        self.second_signals = np.asarray(signals, dtype=np.int64)[self.second_rows]
        margin = self.margin_steps * self.step
        self.buffer = np.zeros(margin, dtype=np.float32)  # the song starts after silence
        self.buffer_start = -margin  # sample index of buffer[0]
        self.carry = np.zeros((self.n_signals, 0), dtype=np.float32)  # the last envelope steps of the block before
        # Per frame (growing): the highest window of each signal, and the highest of those that end
        # `RESAMPLER_RING_S` or more before the frame does.
        self.maxima = np.zeros((2, self.n_signals, 0), dtype=np.float32)  # (float32: an hour at 60 fps, 38 MB)
        self.n_samples = 0

    @property
    def gate_delay_s(self):
        """How long each band's causal gate (and the total: none) takes to open: shape (n_bands + 1,)."""
        return np.array([f.gate_delay_s for f in self.filters] + [0.0])

    @property
    def reach_s(self):
        """How long after a hit each band, and the total, may still be rising because of how they are
        measured: shape (n_bands + 1,) (`_BandFilter.reach_s`; the total: nothing)."""
        return np.array([f.reach_s for f in self.filters] + [0.0])

    def push(self, samples, final=False):
        """samples : shape (n,), float32 at ``sample_rate``; ``final`` at the stream's end."""
        self.n_samples += len(samples)
        self.buffer = np.concatenate([self.buffer, np.asarray(samples, dtype=np.float32)])
        core = self.n_fft - 2 * self.margin_steps * self.step
        while len(self.buffer) >= self.n_fft:
            self._block(self.buffer[: self.n_fft], core)
            self.buffer = self.buffer[core:]
            self.buffer_start += core
        if final:  # the rest, and enough silence after it to close its last frame
            left = self.n_samples - (self.buffer_start + self.margin_steps * self.step)
            while left > 0:
                block = np.zeros(self.n_fft, dtype=np.float32)
                block[: len(self.buffer)] = self.buffer[: self.n_fft]
                self._block(block, core)
                self.buffer = self.buffer[core:]
                self.buffer_start += core
                left -= core

    def _block(self, block, core):
        """Measure one FFT block (shape (n_fft,)); its middle ``core`` samples are new."""
        margin, step = self.margin_steps, self.step
        n_steps = core // step
        spectrum = scipy.fft.rfft(block)
        # Each filtered signal's spectrum folded onto the steps: one inverse FFT gives it on every step-th
        # sample; |analytic signal|^2 / 2 is its mean square.
        folded = np.empty((len(self.spectra_rows), LEVEL_BLOCK_STEPS), dtype=np.complex64)
        for row, (first, response) in enumerate(self.spectra_rows):
            folded[row] = _folded(spectrum[first : first + len(response)] * response, first, LEVEL_BLOCK_STEPS)
        analytic = scipy.fft.ifft(folded, axis=1, overwrite_x=True)[:, margin : margin + n_steps]
        power = (2.0 / step**2) * (analytic.real**2 + analytic.imag**2)
        power *= self.spectra_weight[:, None]
        envelopes = np.empty((self.n_signals, n_steps), dtype=np.float32)
        envelopes[:-1] = power[self.spectra_starts]
        envelopes[self.second_signals] += power[self.second_rows]  # a wide band's second reading
        # The overall level, unfiltered: the mean square of each step's own samples.
        core_samples = block[margin * step : (margin + n_steps) * step].reshape(-1, step)
        envelopes[-1] = np.einsum("ij,ij->i", core_samples, core_samples) / step
        self._frame_maxima(envelopes, (self.buffer_start + margin * step) // step)

    def _frame_maxima(self, envelopes, first_step):
        """Raise each frame's maxima by the windows inside it. envelopes: shape (n_signals, n_steps) from
        envelope step ``first_step`` on (the steps of the block before are carried). The bands' envelopes
        are read on each step's sample; the total's last row is the mean square of the step's own samples,
        so its windows reach a step further (and must end inside the frame too)."""
        joined = np.concatenate([self.carry, envelopes], axis=1)
        first = first_step - self.carry.shape[1]
        width, ring = self.window_steps, self.ring_steps
        keep = width + ring  # a window's last step, the one after it and the ring must be known
        self.carry = joined[:, max(0, joined.shape[1] - keep) :]
        n_windows = joined.shape[1] - keep
        if n_windows <= 0:
            return
        windows = joined[:, :n_windows].copy()  # window i: the mean of steps i .. i + width - 1
        for offset in range(1, width):
            windows += joined[:, offset : offset + n_windows]
        windows /= width
        steps = first + np.arange(joined.shape[1])
        frames = timing.frames_of_times(steps * (self.step / self.sample_rate), self.fps, self.fps_base,
                                        self.offset_ms)
        # The frame of each step's last sample: the step before the next one's.
        last_frames = timing.frames_of_times((steps[1:] * self.step - 1) / self.sample_rate, self.fps,
                                             self.fps_base, self.offset_ms)
        start_frames = frames[:n_windows]
        for which, end in enumerate((width - 1, width - 1 + ring)):  # the windows, and those a ring before the end
            for rows, end_frames in ((slice(0, -1), frames[end : end + n_windows]),
                                     (slice(-1, None), last_frames[end : end + n_windows])):
                inside = np.flatnonzero((start_frames == end_frames) & (start_frames >= 0))
                if not len(inside):
                    continue
                frame_of_window = start_frames[inside]
                starts = np.concatenate([[0], np.flatnonzero(np.diff(frame_of_window)) + 1])
                maxima = np.maximum.reduceat(windows[rows][:, inside], starts, axis=1)
                frames_here = frame_of_window[starts]
                if frames_here[-1] >= self.maxima.shape[2]:
                    grown = np.zeros((2, self.n_signals, max(frames_here[-1] + 1, 2 * self.maxima.shape[2])),
                                     dtype=np.float32)
                    grown[:, :, : self.maxima.shape[2]] = self.maxima
                    self.maxima = grown
                self.maxima[which][rows, frames_here] = np.maximum(self.maxima[which][rows, frames_here], maxima)

    def result(self, n_frames):
        """Mean squares per video frame: ``(levels, before_ring)``, shape (n_frames, n_bands + 1) each,
        float64, the bands then the total: each frame's level, and its level from the windows that end
        `RESAMPLER_RING_S` or more before the frame does (for the frame before a hit on its start)."""
        n_bands, width = len(self.filters), min(n_frames, self.maxima.shape[2])
        out = []
        for maxima in self.maxima[:, :, :width]:
            levels = np.zeros((n_frames, n_bands + 1))
            levels[:width, :n_bands] = maxima[: 3 * n_bands].reshape(n_bands, 3, width).min(axis=1).T
            levels[:width, n_bands] = maxima[3 * n_bands]
            out.append(levels)
        return tuple(out)
