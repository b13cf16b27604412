"""Song -> per-video-frame features, exactly aligned to the scene's frames.

Features are measured on short hops (11.6 ms for band energies and chroma, 0.73 ms
for onsets) and then aggregated over each video frame's own time window
(`timing.frames_of_times`): band energy and chroma are averaged, onset strength
takes the window's maximum so a hit lands on its own frame. Audio is streamed
block by block, so memory does not grow with the song's length.

Timing of band levels (and loudness, chroma): a 93 ms window resolves bass notes
but reaches a note's level only once the note fills it. Crediting a window's
energy to its centre would anticipate every note by up to 46 ms; to its end, a
kick peaks 2 frames late at 24 fps and 4 at 60 fps. So the energy is credited to
the window's end (never early) and then anchored to hits (`anchor_to_onsets`):
the onset analysis places a hit to within a millisecond, and the level a band
reaches within one window after it is held from the hit's own time. Short
windows for high bands would have cut their lag, not removed it, and made the
curves noisier; band-pass filters with an envelope follower lag by their own
rise time, which for a bass band exceeds a 60 fps frame.
"""

import concurrent.futures
import functools
import itertools
import os

import numpy as np
import scipy.fft
import threadpoolctl

from . import audio
from . import filterbanks
from . import separation
from . import shaping
from . import stems
from . import timing
from . import beats as beats_module
from .bands import (ANALYSIS_SAMPLE_RATE, DEFAULT_BANDS, HARMONIC, MIX, SEPARATED_SOURCES, band_sample_rate,
                    check_bands, check_bands_fit_file)
from ..errors import LatentWalkError
from .features import FEATURES_VERSION, Features

SAMPLE_RATE = ANALYSIS_SAMPLE_RATE

# Band energies, RMS, chroma: a 93 ms window resolves bass notes; 11.6 ms hops.
BAND_N_FFT = 2048
BAND_HOP = 256
# Onsets: a 12 ms window on 0.73 ms hops places a hit within about 1.5 ms, late, never early.
ONSET_N_FFT = 256
ONSET_HOP = 16
ONSET_N_MELS = 24
ONSET_FLOOR_DB = -150.0
# Beat tracking works on the onset curve at librosa's usual 512-sample hop.
BEAT_HOP = 512
# Hits for anchoring band levels: flux peaks of at least 1 dB mean rise per hop, 50 ms
# apart; a hit begins where the flux first passes half its peak (within 6 ms): lower, the
# resampler's pre-ringing (under a millisecond) would place hits early.
ONSET_PEAK_DB = 1.0
ONSET_MIN_GAP_S = 0.050
ONSET_RISE_S = 0.006
ONSET_RISE_FRACTION = 0.5
ONSET_PEAK_SEGMENT_HOPS = 1 << 18  # peaks are searched 190 s at a time (memory flat with song length)
# A band is anchored to a hit when its level rises more than 3 dB after it; a second
# hit inside that rise is the same note when the level has already risen 1 dB by then.
ANCHOR_RISE_RATIO = 10.0 ** (3.0 / 10.0)
ANCHOR_FILLING_RATIO = 10.0 ** (1.0 / 10.0)


class _Framer:
    """Cuts a stream of sample blocks into centred STFT frames.

    Frame ``j`` is centred on sample ``j * hop`` (librosa's ``center=True`` with
    zero padding), so the result does not depend on how the stream was split.
    """

    def __init__(self, n_fft, hop):
        self.n_fft = n_fft
        self.hop = hop
        self.buffer = np.zeros(n_fft // 2, dtype=np.float32)
        self.buffer_start = 0  # index in the padded stream of buffer[0]
        self.next_frame = 0

    def push(self, samples, final=False):
        """Add samples; return ``(first_frame_index, frames)`` with frames shape (m, n_fft)."""
        parts = [self.buffer, samples]
        if final:
            parts.append(np.zeros(self.n_fft // 2, dtype=np.float32))
        self.buffer = np.concatenate(parts)
        offset = self.next_frame * self.hop - self.buffer_start
        available = len(self.buffer) - offset - self.n_fft
        if available < 0:
            return self.next_frame, np.zeros((0, self.n_fft), dtype=np.float32)
        count = available // self.hop + 1
        windows = np.lib.stride_tricks.sliding_window_view(self.buffer[offset:], self.n_fft)
        frames = windows[:: self.hop][:count]  # a view: the spectrum multiplies it into a new array
        first = self.next_frame
        self.next_frame += count
        drop = self.next_frame * self.hop - self.buffer_start
        self.buffer = self.buffer[drop:]
        self.buffer_start += drop
        return first, frames


# Spectra are taken a few hundred frames at a time: the frames, their spectra and powers
# (about 2 MB each) then stay in the CPU's cache from the FFT to the last product; whole
# 20 s blocks (tens of MB per step) made the same work about twice as slow.
CHUNK_BYTES = 1 << 21


def _in_chunks(frames):
    """Yield ``(offset, frames[offset:offset + k])`` over ``frames`` (shape (m, n_fft)), k rows of about `CHUNK_BYTES`."""
    rows = max(1, CHUNK_BYTES // (4 * max(1, frames.shape[1])))
    for start in range(0, len(frames), rows):
        yield start, frames[start : start + rows]


def band_fft_size(band_rate):
    """``(n_fft, hop)`` for band levels at ``band_rate``: `BAND_N_FFT` and `BAND_HOP` at
    `SAMPLE_RATE`, the same durations (93 ms, 11.6 ms) at other rates."""
    if band_rate == SAMPLE_RATE:
        return BAND_N_FFT, BAND_HOP
    scale = band_rate / SAMPLE_RATE
    return scipy.fft.next_fast_len(int(round(BAND_N_FFT * scale))), int(round(BAND_HOP * scale))


class _FrameAccumulator:
    """Sums (or maxima) of hop-level values per video frame, chunk by chunk."""

    def __init__(self, reduce="mean"):
        self.reduce = reduce
        self.chunks = []  # (frame indices, values (m, d)) with unique indices per chunk

    def add(self, frame_index, values):
        """frame_index: shape (m,), non-decreasing; values: shape (m, d)."""
        if len(frame_index) == 0:
            return
        starts = np.concatenate([[0], np.flatnonzero(np.diff(frame_index)) + 1])
        if self.reduce == "max":
            reduced = np.maximum.reduceat(values, starts, axis=0)
        else:
            reduced = np.add.reduceat(values, starts, axis=0)
        counts = np.diff(np.append(starts, len(frame_index)))
        self.chunks.append((frame_index[starts], reduced, counts))

    def result(self, n_frames, width, fill_gaps=False):
        """np.ndarray, shape (n_frames, width): per-frame mean or max.

        Frames no measurement fell in are 0, or with ``fill_gaps`` (frames shorter
        than the hop, above ~86 fps) interpolated between their neighbours.
        """
        total = np.zeros((n_frames, width), dtype=np.float64)
        counts = np.zeros(n_frames, dtype=np.int64)
        for index, values, count in self.chunks:
            keep = (index >= 0) & (index < n_frames)
            if self.reduce == "max":
                np.maximum.at(total, index[keep], values[keep])
            else:
                np.add.at(total, index[keep], values[keep])
            np.add.at(counts, index[keep], count[keep])
        if self.reduce == "mean":
            total /= np.maximum(counts, 1)[:, None]
        filled = np.flatnonzero(counts)
        if fill_gaps and len(filled) > 1:
            inside = np.arange(filled[0], filled[-1] + 1)
            gaps = inside[counts[inside] == 0]
            for column in range(width):
                total[gaps, column] = np.interp(gaps, filled, total[filled, column])
        return total


def _band_matrix(bands, sample_rate, n_fft):
    """shape (n_bands, n_fft // 2 + 1): 1 where an FFT bin lies in the band."""
    bin_hz = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)
    matrix = np.zeros((len(bands), len(bin_hz)), dtype=np.float32)
    for i, band in enumerate(bands):
        inside = (bin_hz >= band.low_hz) & (bin_hz < band.high_hz)
        if not inside.any():  # a band narrower than one bin still gets its nearest bin
            inside[np.argmin(np.abs(bin_hz - (band.low_hz + band.high_hz) / 2))] = True
        matrix[i, inside] = 1.0
    return matrix


class _Spectrum:
    """Windowed power spectra, scaled so a signal's total equals its mean square."""

    def __init__(self, n_fft):
        self.window = np.hanning(n_fft + 1)[:-1].astype(np.float32)  # periodic Hann, as librosa uses
        # Parseval: sum over one-sided bins of |X|^2 * 2 / (n_fft * sum(w^2)) ~ mean square.
        self.scale = np.float32(2.0 / (n_fft * float(np.sum(self.window**2))))

    def spectrum(self, frames):
        """frames: shape (m, n_fft) -> the windowed frames' spectra, shape (m, n_fft // 2 + 1), complex64."""
        return scipy.fft.rfft(frames * self.window, axis=1)

    def power(self, frames=None, spectrum=None):
        """frames: shape (m, n_fft) (or their ``spectrum``) -> shape (m, n_fft // 2 + 1), float32."""
        if spectrum is None:
            spectrum = self.spectrum(frames)
        power = spectrum.real**2
        power += spectrum.imag**2
        power *= self.scale
        return power


class _PartSignal:
    """The percussive or harmonic part of the mix as a signal, for the onset curve to listen to.

    The band analysis's own spectra (`add`) times the `separation.Splitter`'s mask per bin
    (`take`), back to samples by overlap-adding the frames (an inverse STFT: synthesis by
    the same Hann window, divided by the windows' summed squares), then resampled to the
    onset analysis's rate. The masks are real (zero phase), so a hit stays at its own time.
    Spectra wait only until the Splitter's output reaches them: memory stays bounded.
    """

    def __init__(self, n_fft, hop, band_rate, onset_rate):
        self.n_fft, self.hop = n_fft, hop
        self.window = np.hanning(n_fft + 1)[:-1]  # as `_Spectrum`'s
        self.pending = np.zeros((0, n_fft // 2 + 1), dtype=np.complex64)
        self.pending_first = 0  # hop index of pending[0]
        self.signal = np.zeros(0)  # overlap-added frames, from sample `signal_start` on
        self.weight = np.zeros(0)  # the summed squared windows over the same samples
        self.signal_start = -(n_fft // 2)  # frame 0 is centred on sample 0
        self.emitted = 0  # samples (at the band rate) handed on so far
        self.resampler = audio.Resampler(band_rate, onset_rate)

    def add(self, spectra):
        """spectra: shape (m, n_bins), the next hops' `_Spectrum.spectrum`."""
        self.pending = np.concatenate([self.pending, spectra])

    def take(self, first_hop, masks):
        """Resynthesise hops ``first_hop..`` under masks (shape (k, n_bins)); returns the samples
        now complete, at the onset rate, shape (n,), float32."""
        if len(masks):
            offset = first_hop - self.pending_first
            spectra = self.pending[offset : offset + len(masks)] * masks
            self.pending = self.pending[offset + len(masks):]
            self.pending_first = first_hop + len(masks)
            frames = scipy.fft.irfft(spectra, n=self.n_fft, axis=1) * self.window
            end = (first_hop + len(masks) - 1) * self.hop + self.n_fft - self.n_fft // 2 - self.signal_start
            if end > len(self.signal):
                self.signal = np.concatenate([self.signal, np.zeros(end - len(self.signal))])
                self.weight = np.concatenate([self.weight, np.zeros(end - len(self.weight))])
            squared = self.window**2
            for i, frame in enumerate(frames):
                start = (first_hop + i) * self.hop - self.n_fft // 2 - self.signal_start
                self.signal[start : start + self.n_fft] += frame
                self.weight[start : start + self.n_fft] += squared
        # Samples before the next frame's first one are complete.
        return self._emit(self.pending_first * self.hop - self.n_fft // 2, last=False)

    def finish(self, n_samples):
        """The rest of the part up to the song's ``n_samples`` (at the band rate), resampler flushed."""
        return self._emit(n_samples, last=True, stop_at=n_samples)

    def _emit(self, until, last, stop_at=None):
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


def _onset_times(flux, sample_rate):
    """Times (s) where hits begin, from the hop-level onset flux.

    flux : np.ndarray, shape (n_hops,), mean dB rise per `ONSET_HOP` (window-end time)
    Returns np.ndarray, shape (n_onsets,), increasing.

    A hit is a peak of the flux (at least ``ONSET_MIN_GAP_S`` from a stronger one);
    its time is where the flux's rise into that peak begins, so a hit over a
    background (whose flux climbs over a few hops) is not placed late.
    """
    if len(flux) < 3:
        return np.zeros(0, dtype=np.float64)
    # Peaks: the highest value within ONSET_MIN_GAP_S either side, entered by a rise. (scipy.signal's
    # find_peaks would do, but importing scipy.signal costs a second in every new process.)
    gap = max(1, int(ONSET_MIN_GAP_S * sample_rate / ONSET_HOP))
    peaks = []
    for first in range(0, len(flux), ONSET_PEAK_SEGMENT_HOPS):  # a segment at a time: bounded temporaries
        stop = min(first + ONSET_PEAK_SEGMENT_HOPS, len(flux))
        low, high = max(0, first - gap), min(len(flux), stop + gap)  # each core hop's whole neighbourhood
        piece = flux[low:high]
        highest = shaping.running_max(piece, 2 * gap + 1)
        rising = np.r_[False, piece[1:] > piece[:-1]]
        is_peak = (piece >= highest) & rising & (piece >= ONSET_PEAK_DB)
        peaks.append(np.flatnonzero(is_peak[first - low : stop - low]) + first)
    peaks = np.concatenate(peaks)
    lookback = int(ONSET_RISE_S * sample_rate / ONSET_HOP)
    starts = np.empty(len(peaks), dtype=np.int64)
    for i, peak in enumerate(peaks):
        low = max(0, peak - lookback)
        below = np.flatnonzero(flux[low:peak] < ONSET_RISE_FRACTION * flux[peak])
        starts[i] = low + below[-1] + 1 if len(below) else low
    return np.unique(starts) * (ONSET_HOP / sample_rate) + (ONSET_N_FFT // 2) / sample_rate


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
    # Each hit's rise in every row, measured as if no other hit followed.
    peak_hops = np.empty((len(firsts), n_rows), dtype=np.int64)
    for i, (first, last) in enumerate(zip(firsts, lasts)):
        peak_hops[i] = first + np.argmax(levels[first:last], axis=0)
    peaks = np.take_along_axis(levels, peak_hops, axis=0)
    before = np.where((firsts > 0)[:, None], levels[np.maximum(firsts - 1, 0)], 0.0)
    silence = 10.0 ** (shaping.SILENCE_DB / 10.0)
    rises = (peaks > before * rise_ratio) & (peaks > silence)

    hit_times, hit_rows, hit_levels = [], [], []
    for row in range(n_rows):
        column = levels[:, row]
        kept = []  # [first hop, peak hop, peak level, level before, onset time] of this row's hits
        for i in np.flatnonzero(rises[:, row]):
            first, peak_hop, peak = int(firsts[i]), int(peak_hops[i, row]), float(peaks[i, row])
            level_before = float(before[i, row])
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
        for first, peak_hop, peak, _, onset_s in kept:
            held[first:peak_hop, row] = peak
            hit_times.append(onset_s)
            hit_rows.append(row)
            hit_levels.append(peak)
    return (held, np.asarray(hit_times, dtype=np.float64), np.asarray(hit_rows, dtype=np.int64),
            np.asarray(hit_levels, dtype=np.float64))


def _levels_per_frame(levels, onset_times_s, sample_rate, n_fft, hop, fps, fps_base, offset_ms, n_frames):
    """Per-frame band, overall and chroma mean squares, shape (n_frames, width).

    levels : np.ndarray, shape (n_hops, width), one row per band hop.
    Each frame is the mean of the levels whose windows end in it, anchored to the
    hits (`anchor_to_onsets`); a hit's level also counts as that of the frame the
    hit falls in, so a hit late in a frame still peaks on that frame.
    """
    width = levels.shape[1]
    # A window's energy belongs to its end: a note counts from the frame it
    # starts in, never earlier (the 93 ms window would otherwise anticipate it).
    hop_times_s = np.arange(len(levels)) * (hop / sample_rate) + (n_fft // 2) / sample_rate
    held, hit_times_s, hit_rows, hit_levels = anchor_to_onsets(
        levels, hop_times_s, onset_times_s, n_fft / sample_rate, ANCHOR_RISE_RATIO, in_place=True)
    accumulator = _FrameAccumulator("mean")
    accumulator.add(timing.frames_of_times(hop_times_s, fps, fps_base, offset_ms), held)
    per_frame = accumulator.result(n_frames, width, fill_gaps=True)
    hit_frames = timing.frames_of_times(hit_times_s, fps, fps_base, offset_ms)
    inside = (hit_frames >= 0) & (hit_frames < n_frames)
    np.maximum.at(per_frame, (hit_frames[inside], hit_rows[inside]), hit_levels[inside])
    return per_frame


def _fill_blocks(levels, blocks, columns):
    """Write (first hop, values (m, len(columns))) blocks into ``levels[:, columns]``, emptying ``blocks``."""
    while blocks:
        first, values = blocks.pop(0)
        stop = min(first + len(values), len(levels))
        if stop > first:
            levels[first:stop, columns] = values[: stop - first]


def _curve_source(curve, source, parts):
    """The stem path a curve listens to, or None for the mix (or one of ``parts`` of it)."""
    if source == MIX or source in parts:
        return None
    if source in SEPARATED_SOURCES:
        allowed = ", ".join(["mix"] + list(parts) + ["a stem file"])
        raise LatentWalkError(f"the {curve} curve cannot listen to the {source} part; use {allowed}.")
    return source


def _stack_blocks(blocks, width):
    """Concatenate (first hop index, values (m, width)) blocks, in order: shape (n_hops, width), float64."""
    if not blocks:
        return np.zeros((0, width))
    return np.concatenate([values for _, values in blocks]).astype(np.float64)


def _stem_levels(bands, stem_files, band_rate, n_fft, hop, band_matrix, chroma_matrix, chroma_source, groups,
                 check_hops):
    """Yield ``(stem path, levels (n_stem_hops, k + 1), groups (n, n_groups))`` per stem: the
    mean squares of its bands (then its 12 chroma values when the chroma listens to it) and
    its total on the same hops as the mix, and its power per frequency group over the first
    ``check_hops`` (for the offset check). Each stem is streamed once."""
    for stem_path in stem_files:
        rows = [i for i, band in enumerate(bands) if band.stem_path == stem_path]
        parts = [band_matrix[rows]] + ([chroma_matrix] if chroma_source == stem_path else [])
        matrix = np.concatenate(parts + [np.ones((1, band_matrix.shape[1]), np.float32)]).T.copy()
        framer, spectrum, blocks, group_blocks = _Framer(n_fft, hop), _Spectrum(n_fft), [], []
        stream = audio.iter_mono(stem_path, band_rate)
        for samples, final in itertools.chain(((b, False) for b in stream), [(np.zeros(0, np.float32), True)]):
            first, frames = framer.push(samples, final)
            if len(frames):
                power = spectrum.power(frames)
                blocks.append((first, power @ matrix))
                if first < check_hops:
                    group_blocks.append((first, power[: check_hops - first] @ groups))
        yield stem_path, _stack_blocks(blocks, matrix.shape[1]), _stack_blocks(group_blocks, groups.shape[1])


def _one_blas_thread(function):
    """Run ``function`` with BLAS (numpy's and scipy's OpenBLAS) on one thread.

    The analysis already measures levels and onsets on two threads; its products are
    small (a few hundred spectra at a time), and BLAS threads of its own on top of
    those spun on the same cores: one BLAS thread made the products about twice as fast.
    """

    @functools.wraps(function)
    def run(*args, **kwargs):
        with threadpoolctl.threadpool_limits(1, user_api="blas"):
            return function(*args, **kwargs)

    return run


@_one_blas_thread
def analyze(
    path,
    fps,
    fps_base=1.0,
    bands=DEFAULT_BANDS,
    band_shapes=None,
    onset_shape=shaping.ONSET_SHAPE,
    offset_ms=0.0,
    range_db=40.0,
    sample_rate=SAMPLE_RATE,
    normalise=shaping.DEFAULT_NORMALISE,
    normalise_window_s=shaping.DEFAULT_NORMALISE_WINDOW_S,
    onset_source=MIX,
    chroma_source=MIX,
):
    """Analyse a song into per-frame features.

    Parameters
    ----------
    path : str, a wav, flac, ogg or mp3 file (any channels, any sample rate)
    fps, fps_base : the scene's frame rate is ``fps / fps_base``
    bands : sequence of `Band`
    band_shapes : sequence of `ShapeSettings`, one per band (default `shaping.BAND_SHAPE`)
    onset_shape : `ShapeSettings` for the onset curve
    offset_ms : latency offset; positive values make every curve react later
    range_db : level range mapped onto 0..1 for bands and RMS
    normalise : "song" (default: each curve's 1.0 is its song's loud passages, so a quiet
        intro stays low and a loud drop reaches high) or "window" (each frame against the
        loud moments of the ``normalise_window_s`` seconds around it); the onset curve
        is its hits' strength times the loudness curve, so it follows the same choice
    onset_source : "mix", "percussive" or "harmonic" (that part of the mix), or a stem file:
        whose hits make the onset curve, the beats and the times the band levels are anchored to
    chroma_source : "mix", "harmonic" (the harmonic part of the mix), or a stem file

    Returns
    -------
    Features
    """
    timing.check_fps(fps, fps_base)
    shaping.check_normalisation(normalise, normalise_window_s)
    bands = tuple(bands)
    check_bands(bands)
    band_shapes = tuple(band_shapes) if band_shapes is not None else (shaping.BAND_SHAPE,) * len(bands)
    if len(band_shapes) != len(bands):
        raise LatentWalkError(f"{len(bands)} bands but {len(band_shapes)} shape settings were given.")
    onset_stem = _curve_source("onset", onset_source, SEPARATED_SOURCES)
    onset_part = onset_source if onset_source in SEPARATED_SOURCES else None
    chroma_stem = _curve_source("chroma", chroma_source, (HARMONIC,))
    info = audio.probe(path)
    check_bands_fit_file(bands, info.sample_rate, path)
    # {stem path: AudioInfo}: every stem checked before any work.
    stem_files = stems.probe_stems(bands, onset_stem, chroma_stem)
    frame_rate = timing.frames_per_second(fps, fps_base)
    # Bands are measured at the lowest rate that holds the highest of them, with the
    # same window and hop durations at any rate; onsets and beats always at `sample_rate`.
    band_rate = band_sample_rate(bands, info.sample_rate)
    band_n_fft, band_hop = band_fft_size(band_rate)

    band_framer, onset_framer = _Framer(band_n_fft, band_hop), _Framer(ONSET_N_FFT, ONSET_HOP)
    band_spectrum, onset_spectrum = _Spectrum(band_n_fft), _Spectrum(ONSET_N_FFT)
    band_matrix = _band_matrix(bands, band_rate, band_n_fft)
    chroma_matrix = filterbanks.chroma(band_rate, band_n_fft)
    on_mix = [i for i, band in enumerate(bands) if band.source == MIX]
    on_parts = [i for i, band in enumerate(bands) if band.source in SEPARATED_SOURCES]
    # One product per block: the mix's bands, the spectrum's total (mean square), chroma.
    level_matrix = np.concatenate(
        [band_matrix[on_mix], np.ones((1, band_matrix.shape[1]), np.float32), chroma_matrix], axis=0
    ).T.copy()
    splitter = separation.Splitter(
        band_matrix[on_parts], [bands[i].source for i in on_parts], band_rate, band_n_fft,
        chroma_matrix if chroma_source == HARMONIC else None,
        onset_part) if on_parts or chroma_source == HARMONIC or onset_part else None
    # The onset curve on a part of the mix listens to that part resynthesised from the same spectra.
    part_signal = _PartSignal(band_n_fft, band_hop, band_rate, sample_rate) if onset_part else None
    band_samples = 0  # samples at the band rate so far: the part signal's length
    part_blocks = []  # (first hop index, band powers (m, len(on_parts))) of the separated parts
    # Power per frequency group over the song's start, to check that stems line up with it.
    groups = separation.group_matrix(band_rate, band_n_fft)
    check_hops = int(stems.OFFSET_CHECK_S * band_rate / band_hop)
    mix_group_blocks = []
    mel_matrix = filterbanks.mel(sample_rate, ONSET_N_FFT, ONSET_N_MELS)
    # A hit enters an onset frame's window half a window after the frame's centre (at
    # the window's end); the flux peaks on that first frame, so its time is the window's end.
    onset_delay_s = (ONSET_N_FFT // 2) / sample_rate

    level_blocks = []  # (first hop index, measures (m, n_rows)): band mean squares, overall mean square, chroma
    onsets = _FrameAccumulator("max")
    onset_curve = []  # hop-level onset strength, for beat tracking and onset times
    previous_db = np.full(ONSET_N_MELS, ONSET_FLOOR_DB, dtype=np.float32)

    def measure_levels(samples, final):
        nonlocal band_samples
        band_samples += len(samples)
        first, frames = band_framer.push(samples, final)
        for start, chunk in _in_chunks(frames):
            spectrum = band_spectrum.spectrum(chunk)
            power = band_spectrum.power(spectrum=spectrum)
            # Band energies, overall mean square (the spectrum's total, by Parseval), chroma.
            level_blocks.append((first + start, power @ level_matrix))
            if part_signal is not None:
                part_signal.add(spectrum)
            if splitter is not None:
                split(power, final=False)
            if stem_files and first + start < check_hops:
                mix_group_blocks.append((first + start, power[: check_hops - first - start] @ groups))
        if final and splitter is not None:
            split(np.zeros((0, level_matrix.shape[0]), np.float32), final=True)
            if part_signal is not None:
                measure_onsets(part_signal.finish(band_samples), final=False)
                measure_onsets(np.zeros(0, dtype=np.float32), final=True)

    def split(power, final):
        first_hop, values, masks = splitter.push(power, final)
        part_blocks.append((first_hop, values.astype(np.float32)))  # the mix's levels' precision, half the memory
        if part_signal is not None:
            measure_onsets(part_signal.take(first_hop, masks), final=False)

    def measure_onsets(samples, final):
        nonlocal previous_db
        first, frames = onset_framer.push(samples, final)
        for start, chunk in _in_chunks(frames):
            mel_db = 10.0 * np.log10(np.maximum(onset_spectrum.power(chunk) @ mel_matrix.T, 1e-15))
            mel_db = np.maximum(mel_db, ONSET_FLOOR_DB)
            rises = np.diff(np.vstack([previous_db[None, :], mel_db]), axis=0)
            flux = np.maximum(rises, 0.0).mean(axis=1)
            previous_db = mel_db[-1]
            times = (first + start + np.arange(len(chunk))) * (ONSET_HOP / sample_rate) + onset_delay_s
            onsets.add(timing.frames_of_times(times, fps, fps_base, offset_ms), flux[:, None])
            onset_curve.append(flux.astype(np.float32))

    # The two measurements are independent; numpy, scipy and soxr release the GIL in
    # their heavy loops, so two threads (each resampling its own stream) use two cores.
    band_resampler = audio.Resampler(info.sample_rate, band_rate)
    onset_resampler = audio.Resampler(info.sample_rate, sample_rate)
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:

        def consume(levels_job, onsets_job):
            on_mix_onsets = onset_stem is None and onset_part is None
            jobs = [pool.submit(levels_job)] + ([pool.submit(onsets_job)] if on_mix_onsets else [])
            for job in jobs:
                job.result()

        stream = audio.iter_mono_source(path)
        while True:
            try:
                mono, last, _ = next(stream)
            except StopIteration as done:
                decoded_samples = done.value
                break
            consume(lambda: measure_levels(band_resampler(mono, last), final=False),
                    lambda: measure_onsets(onset_resampler(mono, last), final=False))
        nothing = np.zeros(0, dtype=np.float32)
        consume(lambda: measure_levels(nothing, final=True), lambda: measure_onsets(nothing, final=True))
    if onset_stem is not None:  # its alignment is checked with the stems' levels below
        for samples in audio.iter_mono(onset_stem, sample_rate):
            measure_onsets(samples, final=False)
        measure_onsets(np.zeros(0, dtype=np.float32), final=True)

    duration_s = decoded_samples / info.sample_rate
    if decoded_samples == 0:
        raise LatentWalkError(
            f"no audio could be decoded from '{path}' ({os.path.getsize(path)} bytes): the file is "
            "empty, truncated or damaged. Export or download it again."
        )
    n_frames = timing.frame_count(duration_s, fps, fps_base)
    if duration_s * frame_rate < 1.0:
        raise LatentWalkError(
            f"audio file '{path}' is {duration_s * 1000:.1f} ms long, shorter than one frame "
            f"({1000 / frame_rate:.1f} ms at {frame_rate:.3f} fps): use a longer file."
        )

    n_bands = len(bands)
    flux = np.concatenate(onset_curve) if onset_curve else np.zeros(0, np.float32)
    onset_curve.clear()  # one copy of the hop-level curve (the largest per-hop output) from here on
    # One float64 array of every hop's levels (float64: a held level must stay exactly equal
    # across hops), filled block by block without intermediate copies.
    width = n_bands + 1 + 12
    n_hops = sum(len(block) for _, block in level_blocks)
    levels = np.zeros((n_hops, width))
    chroma_columns = list(range(n_bands + 1, width))
    _fill_blocks(levels, level_blocks, on_mix + [n_bands] + chroma_columns)
    if splitter is not None:
        _fill_blocks(levels, part_blocks, on_parts + (chroma_columns if chroma_source == HARMONIC else []))
    mix_groups = _stack_blocks(mix_group_blocks, groups.shape[1])
    measured_stems = _stem_levels(bands, stem_files, band_rate, band_n_fft, band_hop, band_matrix, chroma_matrix,
                                  chroma_stem, groups, check_hops)
    for stem_path, stem_levels, stem_groups in measured_stems:
        columns = [i for i, band in enumerate(bands) if band.stem_path == stem_path]
        fitted = stems.fit_to_song(stem_levels, stem_groups, mix_groups, n_hops, stem_path,
                                   stems.listeners(bands, stem_path, onset_stem, chroma_stem), band_hop / band_rate,
                                   band_n_fft // band_hop + 1)
        levels[:, columns] = fitted[:, : len(columns)]
        if chroma_stem == stem_path:
            levels[:, n_bands + 1 :] = fitted[:, len(columns):]
    per_frame = _levels_per_frame(levels, _onset_times(flux, sample_rate), band_rate, band_n_fft, band_hop, fps,
                                  fps_base, offset_ms, n_frames)
    window_s = normalise_window_s if normalise == "window" else None
    band_units = shaping.normalise_levels(shaping.level_db(per_frame[:, :n_bands].T), frame_rate, range_db, window_s)
    band_values = np.stack([shaping.shape(band_units[i], band_shapes[i], frame_rate) for i in range(n_bands)])
    rms_unit = shaping.normalise_levels(shaping.level_db(per_frame[:, n_bands]), frame_rate, range_db, window_s)[0]
    chroma = per_frame[:, n_bands + 1 :]
    chroma_peak = chroma.max(axis=1, keepdims=True)
    audible = (rms_unit > 0.0)[:, None] & (chroma_peak > 1e-12)
    chroma = np.where(audible, chroma / np.maximum(chroma_peak, 1e-12), 0.0).astype(np.float32)
    onset_raw = onsets.result(n_frames, 1)[:, 0]
    # How much of a hit (against the hits around it) times how loud the song is there:
    # a quiet intro pulses low, a loud drop high (see `shaping.ONSET_CONTEXT_S`).
    hit_strength = shaping.normalise_positive(onset_raw, frame_rate, shaping.ONSET_CONTEXT_S,
                                              shaping.ONSET_CONTEXT_SONG_SHARE)
    onset_values = shaping.shape(hit_strength * rms_unit, onset_shape, frame_rate)

    beats = _beat_frames(flux, sample_rate, onset_delay_s, fps, fps_base, offset_ms, n_frames)

    return Features(
        band_names=[b.name for b in bands],
        band_low_hz=np.array([b.low_hz for b in bands], dtype=np.float64),
        band_high_hz=np.array([b.high_hz for b in bands], dtype=np.float64),
        bands=band_values.astype(np.float32),
        onset=onset_values,
        rms=rms_unit,
        chroma=chroma,
        beats=beats,
        meta={
            "version": FEATURES_VERSION,
            "audio_path": os.path.abspath(path),
            "fps": fps,
            "fps_base": fps_base,
            "offset_ms": offset_ms,
            "duration_s": duration_s,
            "source_sample_rate": info.sample_rate,
            "channels": info.channels,
            "analysis_sample_rate": sample_rate,
            "band_sample_rate": band_rate,
            "band_sources": [b.source for b in bands],
            "onset_source": onset_source,
            "chroma_source": chroma_source,
            "normalise": normalise,
            "normalise_window_s": normalise_window_s if normalise == "window" else None,
        },
    )


def _snap_to_onsets(beats, onset_curve, group, sample_rate):
    """Beat times (s): each beat moved to the strongest onset within half a beat hop.

    beats : envelope indices (each covers ``group`` onset hops); returns shape (n_beats,).
    """
    times = []
    for beat in beats:
        low = max(0, beat * group - group // 2)
        high = min(len(onset_curve), (beat + 1) * group + group // 2)
        peak = low + int(np.argmax(onset_curve[low:high])) if high > low else beat * group
        times.append(peak * ONSET_HOP / sample_rate)
    return np.asarray(times, dtype=np.float64)


BEAT_SEGMENT_S = 120.0  # beat tracking runs on segments so memory stays bounded
BEAT_CONTEXT_S = 8.0  # each segment sees this much more on both sides


def _beat_frames(onset_curve, sample_rate, delay_s, fps, fps_base, offset_ms, n_frames):
    """Beat positions as video frame indices, shape (n_beats,), int64.

    The tracker's tempo estimate needs memory proportional to its input, so long songs
    are tracked in overlapping two-minute segments, each keeping the beats in
    its own core; the tempo may drift between segments as the music does.
    """
    group = BEAT_HOP // ONSET_HOP
    usable = len(onset_curve) // group * group
    if usable < group * 4 or not np.any(onset_curve > 0):
        return np.zeros(0, dtype=np.int64)
    envelope = onset_curve[:usable].reshape(-1, group).mean(axis=1)
    envelope_rate = sample_rate / BEAT_HOP
    fine_group = group // 4
    fine_envelope = onset_curve[:usable].reshape(-1, fine_group).mean(axis=1)
    fine_rate = envelope_rate * 4
    segment, context = int(BEAT_SEGMENT_S * envelope_rate), int(BEAT_CONTEXT_S * envelope_rate)
    beat_times = []
    for core_start in range(0, len(envelope), segment):
        core_end = min(core_start + segment, len(envelope))
        start, end = max(0, core_start - context), min(len(envelope), core_end + context)
        piece = envelope[start:end]
        if not np.any(piece > 0):
            continue
        fine_piece = fine_envelope[start * 4 : end * 4]
        beats = beats_module.track(piece, envelope_rate, fine_piece, fine_rate) + start
        beats = beats[(beats >= core_start) & (beats < core_end)]
        beat_times.append(_snap_to_onsets(beats, onset_curve, group, sample_rate))
    if not beat_times:
        return np.zeros(0, dtype=np.int64)
    frames = timing.frames_of_times(np.concatenate(beat_times) + delay_s, fps, fps_base, offset_ms)
    return np.unique(frames[(frames >= 0) & (frames < n_frames)]).astype(np.int64)
