"""The percussive and harmonic parts of the mix, for the bands, chroma and onset that listen to one of them.

librosa.decompose.hpss's method (Fitzgerald, 2010): what is sustained in time is
harmonic (a median over time), what is spread over frequency is percussive (a median
over frequency); soft masks with power 2 then split every spectrum between the two.
It runs here on the band analysis's own power spectra, block by block with a bounded
context (memory stays flat with song length), and on a coarser grid than librosa's so
that it costs a fraction of the analysis: log-spaced frequency groups of a twelfth of
an octave, and 46 ms steps for the harmonic median (over 0.7 s, as librosa's 31
hops of 512 samples at 22050 Hz).

`PartSignal` turns the masks back into a signal (an inverse STFT), for an onset curve that
listens to one part.
"""

import numpy as np
import scipy.fft

from . import audio
from .bands import PERCUSSIVE

GROUPS_PER_OCTAVE = 12
LOWEST_GROUP_HZ = 30.0
PERCUSSIVE_KERNEL_GROUPS = 13  # an octave of groups
HARMONIC_STEP_HOPS = 4  # band hops per step of the harmonic median
HARMONIC_KERNEL_STEPS = 15


def group_matrix(sample_rate, n_fft):
    """np.ndarray, shape (n_fft // 2 + 1, n_groups), float32: 1 where a bin lies in a group.

    Groups are log-spaced (`GROUPS_PER_OCTAVE` per octave from `LOWEST_GROUP_HZ`, all
    lower bins in one group), and each holds at least one bin.
    """
    bin_hz = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)
    octaves = np.log2(np.maximum(bin_hz, 1e-9) / LOWEST_GROUP_HZ)
    group_of_bin = np.where(bin_hz < LOWEST_GROUP_HZ, 0, 1 + np.floor(octaves * GROUPS_PER_OCTAVE)).astype(int)
    _, group_of_bin = np.unique(group_of_bin, return_inverse=True)  # drop groups no bin falls in
    matrix = np.zeros((len(bin_hz), group_of_bin.max() + 1), dtype=np.float32)
    matrix[np.arange(len(bin_hz)), group_of_bin] = 1.0
    return matrix


def _median_windows(values, size, axis):
    """Median over ``size`` consecutive entries along ``axis`` of an edge-padded array."""
    windows = np.lib.stride_tricks.sliding_window_view(values, size, axis=axis)
    return np.partition(windows, size // 2, axis=-1)[..., size // 2]


def _contiguous_ranges(matrix):
    """(first, stop) of the nonzero columns of each row of a 0/1 matrix whose rows are contiguous."""
    ranges = []
    for row in matrix:
        inside = np.flatnonzero(row)
        if len(inside) != inside[-1] - inside[0] + 1:
            raise ValueError("a band or group is not a contiguous range of bins")
        ranges.append((int(inside[0]), int(inside[-1]) + 1))
    return ranges


class Splitter:
    """Band powers of the percussive or harmonic part of a stream of power spectra.

    Parameters
    ----------
    band_matrix : np.ndarray, shape (n_bands, n_bins): 1 where a bin lies in a band
    parts : sequence of `bands.PERCUSSIVE` or `bands.HARMONIC`, one per band
    sample_rate, n_fft : of the spectra

    chroma_matrix : np.ndarray, shape (12, n_bins), or None: also the chroma of the harmonic part
    signal_part : `bands.PERCUSSIVE`, `bands.HARMONIC` or None: also that part's mask for
        every bin, to resynthesise the part as a signal (the onset curve listens to it)

    `push` takes consecutive blocks of spectra and returns band powers (then the 12
    chroma values) for the hops whose context is complete: the output lags the input
    by under a second. Only the frequency groups the bands (and the chroma) cover, and
    their neighbours for the percussive median, are filtered (all groups for a signal).
    """

    def __init__(self, band_matrix, parts, sample_rate, n_fft, chroma_matrix=None, signal_part=None):
        groups = group_matrix(sample_rate, n_fft)
        self.n_groups = groups.shape[1]
        self.group_starts = np.array([first for first, _ in _contiguous_ranges(groups.T)])
        group_of_bin = np.argmax(groups, axis=1)
        self.signal_part = signal_part
        self.group_of_bin = group_of_bin
        self.bands = []  # per band: bin range, its groups' range, bin offsets of those groups inside the band
        for first, stop in _contiguous_ranges(band_matrix):
            g0, g1 = int(group_of_bin[first]), int(group_of_bin[stop - 1]) + 1
            starts = np.maximum(self.group_starts[g0:g1], first) - first
            self.bands.append((first, stop, g0, g1, starts))
        self.percussive = [part == PERCUSSIVE for part in parts]
        self.chroma = None
        if chroma_matrix is not None:  # over the bins where the chroma filters weigh anything
            weight = chroma_matrix.sum(axis=0)
            inside = np.flatnonzero(weight > 0.01 * weight.max())
            first, stop = int(inside[0]), int(inside[-1]) + 1
            g0, g1 = int(group_of_bin[first]), int(group_of_bin[stop - 1]) + 1
            self.chroma = (first, stop, g0, g1, group_of_bin[first:stop] - g0,
                           np.asarray(chroma_matrix[:, first:stop].T, dtype=np.float64))
            self.chroma_power = np.zeros((0, stop - first))
        self.step = HARMONIC_STEP_HOPS
        self.half = HARMONIC_KERNEL_STEPS // 2
        self.group_power = np.zeros((0, self.n_groups))
        self.band_power = [np.zeros((0, g1 - g0)) for _, _, g0, g1, _ in self.bands]
        self.buffer_first = 0  # hop index of the buffers' first row (a multiple of step)
        self.next_step = 0  # the first step not output yet

    def push(self, power, final=False):
        """power: shape (m, n_bins), the next m hops.

        Returns ``(first hop, values (k, n_bands [+ 12]), masks)``: masks is None, or with a
        ``signal_part`` that part's magnitude mask per bin, shape (k, n_bins), for the same hops.
        """
        if len(power):
            self._buffer(np.asarray(power, dtype=np.float64))
        n_hops = len(self.group_power)
        n_steps = -(-n_hops // self.step) if final else n_hops // self.step
        first_step = self.buffer_first // self.step
        last_ready = first_step + n_steps - 1 - (0 if final else self.half)
        width = len(self.bands) + (12 if self.chroma is not None else 0)
        if n_steps == 0 or last_ready < self.next_step:
            no_masks = None if self.signal_part is None else np.zeros((0, len(self.group_of_bin)))
            return self.next_step * self.step, np.zeros((0, width)), no_masks
        start = self.next_step * self.step - self.buffer_first
        stop = min((last_ready + 1) * self.step - self.buffer_first, n_hops)
        # Mean group power per step; the last step may be partial at the end of the song.
        sums = np.add.reduceat(self.group_power, np.arange(0, n_hops, self.step), axis=0)[:n_steps]
        steps = sums / np.minimum(self.step, n_hops - np.arange(n_steps) * self.step)[:, None]
        around = np.clip(np.arange(self.next_step - self.half, last_ready + self.half + 1) - first_step,
                         0, n_steps - 1)
        step_of_hop = (np.arange(start, stop) + self.buffer_first) // self.step - self.next_step
        mask = _SoftMasks(steps[around], step_of_hop, self.group_power[start:stop], self.half)
        values = self._part_values(mask, start, stop, width)
        masks = None
        if self.signal_part is not None:
            masks = mask(0, self.n_groups, self.signal_part == PERCUSSIVE)[:, self.group_of_bin]
        first_hop = self.next_step * self.step
        self.next_step = last_ready + 1
        self._drop_used()
        return first_hop, values, masks

    def _buffer(self, power):
        """Keep the power of the next hops (shape (m, n_bins), float64) per group, band group and chroma bin."""
        self.group_power = np.concatenate([self.group_power, np.add.reduceat(power, self.group_starts, axis=1)])
        for i, (first, stop, _, _, starts) in enumerate(self.bands):
            inside = np.add.reduceat(power[:, first:stop], starts, axis=1)
            self.band_power[i] = np.concatenate([self.band_power[i], inside])
        if self.chroma is not None:
            self.chroma_power = np.concatenate([self.chroma_power, power[:, self.chroma[0]:self.chroma[1]]])

    def _part_values(self, mask, start, stop, width):
        """The parts' band powers (then chroma) of buffered hops ``start:stop``, shape (k, width)."""
        values = np.zeros((stop - start, width))
        for i, (_, _, g0, g1, _) in enumerate(self.bands):
            part = mask(g0, g1, self.percussive[i])
            values[:, i] = np.einsum("hg,hg->h", self.band_power[i][start:stop], part * part)  # |mask|^2 of the power
        if self.chroma is not None:
            _, _, g0, g1, group_of_bin, weights = self.chroma
            part = mask(g0, g1, False)[:, group_of_bin]
            values[:, len(self.bands):] = (self.chroma_power[start:stop] * part * part) @ weights
        return values

    def _drop_used(self):
        """Keep what the next medians need: the steps of the harmonic context."""
        drop = max(0, (self.next_step - self.half) * self.step - self.buffer_first)
        self.group_power = self.group_power[drop:]
        self.band_power = [power_in_groups[drop:] for power_in_groups in self.band_power]
        if self.chroma is not None:
            self.chroma_power = self.chroma_power[drop:]
        self.buffer_first += drop


class _SoftMasks:
    """The soft masks of the percussive or harmonic part over the hops being output.

    steps_around : shape (n_context_steps, n_groups), mean group power per step, with the
        harmonic median's context either side (edges repeated)
    step_of_hop : shape (k,), each hop's step in the output
    hop_group_power : shape (k, n_groups), the output hops' power per group
    half : steps either side in the harmonic median
    """

    def __init__(self, steps_around, step_of_hop, hop_group_power, half):
        self.steps_around, self.step_of_hop = steps_around, step_of_hop
        self.hop_group_power, self.half = hop_group_power, half

    def __call__(self, g0, g1, percussive_part):
        """shape (k, g1 - g0): the soft mask of the part, per hop and group ``g0..g1``."""
        # Harmonic: median over time of the steps around each (edges repeated).
        harmonic = _median_windows(self.steps_around[:, g0:g1], 2 * self.half + 1, axis=0)[self.step_of_hop]
        # Percussive: median over the frequency groups around each (edges repeated).
        pad = PERCUSSIVE_KERNEL_GROUPS // 2
        neighbours = np.clip(np.arange(g0 - pad, g1 + pad), 0, self.hop_group_power.shape[1] - 1)
        percussive = _median_windows(self.hop_group_power[:, neighbours], PERCUSSIVE_KERNEL_GROUPS, axis=1)
        # Soft masks with power 2 on magnitudes: a power ratio.
        total = percussive + harmonic
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, (percussive if percussive_part else harmonic) / total, 0.5)


class PartSignal:
    """The percussive or harmonic part of the mix as a signal, for the onset curve to listen to.

    The band analysis's own spectra (`add`) times the `Splitter`'s mask per bin (`take`),
    back to samples by overlap-adding the STFT frames (an inverse STFT: synthesis by the
    same Hann window, divided by the windows' summed squares), then resampled to the
    onset analysis's rate. The masks are real (zero phase), so a hit stays at its own time.
    Spectra wait only until the Splitter's output reaches them: memory stays bounded.
    """

    def __init__(self, n_fft, hop, band_rate, onset_rate):
        self.n_fft, self.hop = n_fft, hop
        self.window = np.hanning(n_fft + 1)[:-1]  # as `spectra.PowerSpectrum`'s
        self.pending = np.zeros((0, n_fft // 2 + 1), dtype=np.complex64)
        self.pending_first_hop = 0  # hop index of pending[0]
        self.signal = np.zeros(0)  # overlap-added STFT frames, from sample `signal_start` on
        self.weight = np.zeros(0)  # the summed squared windows over the same samples
        self.signal_start = -(n_fft // 2)  # hop 0 is centred on sample 0
        self.emitted = 0  # samples (at the band rate) handed on so far
        self.resampler = audio.Resampler(band_rate, onset_rate)

    def add(self, spectra):
        """spectra: shape (m, n_bins), the next hops' `spectra.PowerSpectrum.spectra`."""
        self.pending = np.concatenate([self.pending, spectra])

    def take(self, first_hop, masks):
        """Resynthesise hops ``first_hop..`` under masks (shape (k, n_bins)); returns the samples
        now complete, at the onset rate, shape (n,), float32."""
        if len(masks):
            offset = first_hop - self.pending_first_hop
            spectra = self.pending[offset : offset + len(masks)] * masks
            self.pending = self.pending[offset + len(masks):]
            self.pending_first_hop = first_hop + len(masks)
            self._overlap_add(first_hop, scipy.fft.irfft(spectra, n=self.n_fft, axis=1) * self.window)
        # Samples before the next STFT frame's first one are complete.
        return self._emit(self.pending_first_hop * self.hop - self.n_fft // 2, last=False)

    def finish(self, n_samples):
        """The rest of the part up to the song's ``n_samples`` (at the band rate), resampler flushed."""
        return self._emit(n_samples, last=True, stop_at=n_samples)

    def _overlap_add(self, first_hop, stft_frames):
        """Add windowed STFT frames (shape (k, n_fft)) of hops ``first_hop..`` into the signal."""
        end = (first_hop + len(stft_frames) - 1) * self.hop + self.n_fft - self.n_fft // 2 - self.signal_start
        if end > len(self.signal):
            self.signal = np.concatenate([self.signal, np.zeros(end - len(self.signal))])
            self.weight = np.concatenate([self.weight, np.zeros(end - len(self.weight))])
        squared = self.window**2
        for i, stft_frame in enumerate(stft_frames):
            start = (first_hop + i) * self.hop - self.n_fft // 2 - self.signal_start
            self.signal[start : start + self.n_fft] += stft_frame
            self.weight[start : start + self.n_fft] += squared

    def _emit(self, until, last, stop_at=None):
        """The signal's complete samples before sample ``until``, normalised and resampled."""
        count = max(0, min(until - self.signal_start, len(self.signal)))
        done = self.signal[:count] / np.maximum(self.weight[:count], 1e-8)
        done[self.weight[:count] < 1e-8] = 0.0
        self.signal, self.weight = self.signal[count:], self.weight[count:]
        first = self.signal_start
        self.signal_start += count
        done = done[max(0, -first):]  # nothing before the song's first sample
        if stop_at is not None:
            done = np.concatenate([done, np.zeros(max(0, stop_at - self.emitted - len(done)))])[: stop_at - self.emitted]
        self.emitted += len(done)
        return self.resampler(done.astype(np.float32), last)
