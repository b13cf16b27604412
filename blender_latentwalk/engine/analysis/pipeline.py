"""Song -> per-video-frame features, exactly aligned to the scene's video frames: the driver.

It wires the analysis stages, each a module of this package, and owns the two threads::

    decode, resample (audio)
      -> spectra (spectra): band hops (11.6 ms) and onset hops (0.73 ms)
      -> band levels and chroma (levels), the mix's parts (separation), stems (stems);
         onset flux and hit times (onsets)
      -> per video frame (anchoring, aggregate)
      -> 0..1 curves (shaping), beats (beats)
      -> Features (features)

Audio is streamed block by block, so memory does not grow with the song's length. The band
levels and the onsets are independent: one thread each. When the onset curve listens to a
part of the mix, that part is resynthesised from the band spectra, so the band thread
measures its onsets too.

A caller that shows progress (the worker, for Bake Curves) passes ``progress``: it hears of
each step as it starts, and of the song's blocks and stems as they are measured (`Step`).
It touches no number of the analysis.
"""

import concurrent.futures
import functools
import os
from dataclasses import dataclass

import numpy as np
import threadpoolctl

from . import aggregate
from . import audio
from . import beats
from . import filterbanks
from . import levels
from . import onsets
from . import separation
from . import shaping
from . import spectra
from . import stems
from . import structure
from . import timing
from .anchoring import ANCHOR_RISE_RATIO
from .bands import (ANALYSIS_SAMPLE_RATE, DEFAULT_BANDS, HARMONIC, MIX, SEPARATED_SOURCES, band_sample_rate,
                    check_bands, check_bands_fit_file)
from ..errors import LatentWalkError
from .features import FEATURES_VERSION, Features

SAMPLE_RATE = ANALYSIS_SAMPLE_RATE

# The steps of an analysis, in order, as a progress display names them.
STEP_PREPARING = "preparing the analysis"  # the filter banks (computed once, then cached)
STEP_MEASURING = "measuring bands and onsets"  # most of the time: the song's blocks
STEP_STEMS = "measuring the stems"  # only when a curve listens to a stem file
STEP_FRAMES = "lining the levels up with the video frames"
STEP_SHAPING = "shaping the curves"
STEP_BEATS = "finding the beats, bars and sections"


@dataclass(frozen=True)
class Step:
    """Where an analysis is: step ``number`` of ``n_steps`` (from 1), named ``name`` (a ``STEP_`` text),
    ``fraction`` (0..1) of it done."""

    number: int
    n_steps: int
    name: str
    fraction: float = 0.0


class _Steps:
    """Tells ``progress`` (a callable taking a `Step`; None: nobody) how far the analysis is."""

    def __init__(self, progress, with_stems):
        self.progress = progress
        self.names = [STEP_PREPARING, STEP_MEASURING] + ([STEP_STEMS] if with_stems else []) + [
            STEP_FRAMES, STEP_SHAPING, STEP_BEATS]
        self.number = 0

    def start(self, name):
        self.number = self.names.index(name) + 1
        self.advance(0.0)

    def advance(self, fraction):
        if self.progress is not None:
            self.progress(Step(self.number, len(self.names), self.names[self.number - 1], min(1.0, fraction)))


class _BandThread:
    """What the band thread does with each block of samples at the band rate.

    Band spectra -> the mix's band levels, total and chroma; the separated parts' levels
    (and the part's own signal when the onset curve listens to it); the song's start per
    frequency group when stems must be checked against it. Hop-level results wait in
    ``(first hop, values)`` blocks until `hop_levels` gathers them.
    """

    def __init__(self, bands, band_rate, harmonic_chroma, onset_part, onset_rate, check_stems):
        self.bands, self.band_rate, self.harmonic_chroma = bands, band_rate, harmonic_chroma
        self.n_fft, self.hop = spectra.band_fft_size(band_rate)
        self.framer = spectra.StftFramer(self.n_fft, self.hop)
        self.spectrum = spectra.PowerSpectrum(self.n_fft)
        self.band_bins = filterbanks.band_bins(bands, band_rate, self.n_fft)
        self.chroma_bank = filterbanks.chroma(band_rate, self.n_fft)
        self.on_mix = [i for i, band in enumerate(bands) if band.source == MIX]
        self.on_parts = [i for i, band in enumerate(bands) if band.source in SEPARATED_SOURCES]
        self.level_matrix = levels.level_matrix(self.band_bins[self.on_mix], self.chroma_bank)
        self.splitter = separation.Splitter(
            self.band_bins[self.on_parts], [bands[i].source for i in self.on_parts], band_rate, self.n_fft,
            self.chroma_bank if harmonic_chroma else None,
            onset_part) if self.on_parts or harmonic_chroma or onset_part else None
        self.part_signal = separation.PartSignal(self.n_fft, self.hop, band_rate, onset_rate) if onset_part else None
        # Power per frequency group over the song's start, to check that stems line up with it.
        self.groups = separation.group_matrix(band_rate, self.n_fft)
        self.n_check_hops = stems.check_hops(band_rate, self.hop) if check_stems else 0
        self.n_samples = 0  # samples at the band rate so far: the part signal's length
        self.mix_blocks, self.part_blocks, self.group_blocks = [], [], []
        self.frame_levels = None  # the mix's bands and total on each video frame's own samples (`levels.FrameLevels`)

    def push(self, samples, final=False):
        """samples: shape (n,), float32 -> the part signal's new samples at the onset rate, a list
        of arrays (empty unless the onset curve listens to a part)."""
        self.n_samples += len(samples)
        if self.frame_levels is not None:
            self.frame_levels.push(samples, final)
        part_samples = []
        first_hop, stft_frames = self.framer.push(samples, final)
        for offset, chunk in spectra.in_chunks(stft_frames):
            chunk_hop = first_hop + offset
            chunk_spectra = self.spectrum.spectra(chunk)
            power = self.spectrum.power(chunk_spectra)
            self.mix_blocks.append((chunk_hop, power @ self.level_matrix))
            if self.part_signal is not None:
                self.part_signal.add(chunk_spectra)
            if self.splitter is not None:
                part_samples += self._split(power, final=False)
            if chunk_hop < self.n_check_hops:
                self.group_blocks.append((chunk_hop, power[: self.n_check_hops - chunk_hop] @ self.groups))
        if final and self.splitter is not None:
            part_samples += self._split(np.zeros((0, self.level_matrix.shape[0]), np.float32), final=True)
            if self.part_signal is not None:
                part_samples.append(self.part_signal.finish(self.n_samples))
        return part_samples

    def _split(self, power, final):
        first_hop, values, masks = self.splitter.push(power, final)
        self.part_blocks.append((first_hop, values.astype(np.float32)))  # the mix's levels' precision, half the memory
        return [] if self.part_signal is None else [self.part_signal.take(first_hop, masks)]

    def hop_levels(self):
        """Every band hop's levels, shape (n_hops, n_bands + 1 + 12), float64 (float64: a held level
        must stay exactly equal across hops), filled block by block without intermediate copies."""
        n_bands = len(self.bands)
        n_hops = sum(len(block) for _, block in self.mix_blocks)
        hop_levels = np.zeros((n_hops, n_bands + 1 + levels.N_CHROMA))
        chroma = levels.chroma_columns(n_bands)
        levels.fill_blocks(hop_levels, self.mix_blocks, self.on_mix + [levels.total_column(n_bands)] + chroma)
        if self.splitter is not None:
            levels.fill_blocks(hop_levels, self.part_blocks, self.on_parts + (chroma if self.harmonic_chroma else []))
        return hop_levels


def _feed_band_thread(band_thread, onset_flux, samples, final):
    """One block of the band thread; the onsets of a part of the mix are measured here too."""
    for part_samples in band_thread.push(samples, final):
        onset_flux.push(part_samples)
    if final and band_thread.part_signal is not None:
        onset_flux.push(np.zeros(0, dtype=np.float32), final=True)


def _resampled(resampler, push, mono, last):
    """Resample one decoded block (in the thread that runs this) and push it on, not final."""
    push(resampler(mono, last), False)


def _measure_song(path, info, band_thread, onset_flux, onset_stem, steps):
    """Decode the song once and run both threads over it, then the onset's stem (if it has one).

    numpy, scipy and soxr release the GIL in their heavy loops, so the two threads (each
    resampling its own stream) use two cores. Returns the number of samples decoded.
    ``steps`` (`_Steps`) hears the share of the song measured after each block.
    """
    source_rate = info.sample_rate
    onsets_on_mix = onset_stem is None and band_thread.part_signal is None
    feed_bands = functools.partial(_feed_band_thread, band_thread, onset_flux)
    band_resampler = audio.Resampler(source_rate, band_thread.band_rate)
    onset_resampler = audio.Resampler(source_rate, onset_flux.sample_rate)
    nothing = np.zeros(0, dtype=np.float32)
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:

        def run_both(band_work, onset_work):
            jobs = [pool.submit(band_work)] + ([pool.submit(onset_work)] if onsets_on_mix else [])
            for job in jobs:
                job.result()

        stream = audio.iter_mono_source(path)
        measured_samples = 0
        while True:
            try:
                mono, last, _ = next(stream)
            except StopIteration as done:
                decoded_samples = done.value
                break
            run_both(functools.partial(_resampled, band_resampler, feed_bands, mono, last),
                     functools.partial(_resampled, onset_resampler, onset_flux.push, mono, last))
            measured_samples += len(mono)  # the header's count is an estimate for an mp3: capped at 1
            steps.advance(measured_samples / max(1, info.declared_samples))
        run_both(functools.partial(feed_bands, nothing, True), functools.partial(onset_flux.push, nothing, True))
    if onset_stem is not None:  # its alignment is checked with the stems' levels
        for samples in audio.iter_mono(onset_stem, onset_flux.sample_rate):
            onset_flux.push(samples)
        onset_flux.push(nothing, final=True)
    return decoded_samples


def _add_stems(hop_levels, band_thread, stem_files, onset_stem, chroma_stem, steps):
    """Put the levels of the bands (and chroma) that listen to stems into ``hop_levels``
    (shape (n_hops, n_bands + 13)), each stem checked against the song's timeline first."""
    bands, n_bands, band_rate = band_thread.bands, len(band_thread.bands), band_thread.band_rate
    mix_groups = levels.stack_blocks(band_thread.group_blocks, band_thread.groups.shape[1])
    for stem_number, stem_path in enumerate(stem_files):
        steps.advance(stem_number / len(stem_files))
        columns = [i for i, band in enumerate(bands) if band.stem_path == stem_path]
        chroma_bank = band_thread.chroma_bank if chroma_stem == stem_path else None
        stem_levels, stem_groups = stems.measure(stem_path, band_thread.band_bins[columns], chroma_bank, band_rate,
                                                 band_thread.groups, band_thread.n_check_hops)
        fitted = stems.fit_to_song(stem_levels, stem_groups, mix_groups, len(hop_levels), stem_path,
                                   stems.listeners(bands, stem_path, onset_stem, chroma_stem),
                                   band_thread.hop / band_rate, band_thread.n_fft // band_thread.hop + 1)
        hop_levels[:, columns] = fitted[:, : len(columns)]
        if chroma_stem == stem_path:
            hop_levels[:, n_bands + 1 :] = fitted[:, len(columns):]


def _duration(path, decoded_samples, source_rate, fps, fps_base):
    """``(duration_s, n_frames)`` of the decoded song, or a ``LatentWalkError`` when it is empty
    or shorter than one video frame."""
    duration_s = decoded_samples / source_rate
    if decoded_samples == 0:
        raise LatentWalkError(
            f"no audio could be decoded from '{path}' ({os.path.getsize(path)} bytes): the file is "
            "empty, truncated or damaged. Export or download it again."
        )
    n_frames = timing.frame_count(duration_s, fps, fps_base)
    frames_per_s = timing.frames_per_second(fps, fps_base)
    if duration_s * frames_per_s < 1.0:
        raise LatentWalkError(
            f"audio file '{path}' is {duration_s * 1000:.1f} ms long, shorter than one frame "
            f"({1000 / frames_per_s:.1f} ms at {frames_per_s:.3f} fps): use a longer file."
        )
    return duration_s, n_frames


def _curves(per_video_frame, onset_strength, band_shapes, onset_shape, frames_per_s, range_db, window_s):
    """The Features' curves (``bands``, ``onset``, ``rms``, ``chroma``), a dict.

    per_video_frame : shape (n_frames, n_bands + 13), `aggregate.levels_per_video_frame`
    onset_strength : ``(flux, fresh rise)``, shape (n_frames,) each, `aggregate.onset_per_video_frame` of the
        onset flux and of its fresh rise (`onsets.OnsetFlux`)
    """
    n_bands = len(band_shapes)
    loudness = shaping.loudness_curve(per_video_frame[:, n_bands], frames_per_s, range_db, window_s)
    bands = shaping.band_curves(per_video_frame[:, :n_bands], band_shapes, frames_per_s, range_db, window_s)
    return {
        "bands": bands.astype(np.float32),
        "onset": shaping.onset_curve(*onset_strength, loudness, onset_shape, frames_per_s),
        "rms": loudness,
        "chroma": shaping.chroma_curve(per_video_frame[:, n_bands + 1 :], loudness),
    }


def _meta(path, info, duration_s, bands, band_rate, fps, fps_base, offset_ms, sample_rate, onset_source,
          chroma_source, normalise, window_s):
    """The Features' meta: what was analysed and how, JSON-able."""
    return {
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
        "normalise_window_s": window_s,
    }


def _checked_bands(bands, band_shapes):
    """``(bands, band_shapes)`` as tuples, one `shaping.ShapeSettings` per band (default
    `shaping.BAND_SHAPE`), or a ``LatentWalkError`` naming what is wrong."""
    bands = tuple(bands)
    check_bands(bands)
    band_shapes = tuple(band_shapes) if band_shapes is not None else (shaping.BAND_SHAPE,) * len(bands)
    if len(band_shapes) != len(bands):
        raise LatentWalkError(f"{len(bands)} bands but {len(band_shapes)} shape settings were given.")
    return bands, band_shapes


def _sources(onset_source, chroma_source):
    """``(onset stem, onset part, chroma stem)``: the stem paths the onset and chroma curves listen
    to and the part of the mix the onset listens to, each None when there is none."""
    onset_stem = _curve_source("onset", onset_source, SEPARATED_SOURCES)
    onset_part = onset_source if onset_source in SEPARATED_SOURCES else None
    return onset_stem, onset_part, _curve_source("chroma", chroma_source, (HARMONIC,))


def _curve_source(curve, source, parts):
    """The stem path a curve listens to, or None for the mix (or one of ``parts`` of it)."""
    if source == MIX or source in parts:
        return None
    if source in SEPARATED_SOURCES:
        allowed = ", ".join(["mix"] + list(parts) + ["a stem file"])
        raise LatentWalkError(f"the {curve} curve cannot listen to the {source} part; use {allowed}.")
    return source


SILENT_LOUDNESS = 0.02  # a beat where the loudness curve is below this (about 39 dB under the loud parts) is none


def _beats(flux, hop_levels, band_thread, sample_rate, timeline, loudness):
    """``(beat frames (n_beats,) int64, tempo in BPM)``: the beats a listener taps, none in silence.

    hop_levels : shape (n_hops, n_bands + 13), the band levels whose low bands give the beat's accent
    timeline : (fps, fps_base, offset_ms, n_frames); loudness : shape (n_frames,), the loudness curve
    """
    fps, fps_base, offset_ms, n_frames = timeline
    low = [i for i, band in enumerate(band_thread.bands) if band.high_hz <= structure.LOW_BANDS_HIGH_HZ] or [0]
    accent = beats.low_accent(hop_levels[:, low].sum(axis=1))
    times_s = beats.beat_times(flux, sample_rate, accent, band_thread.band_rate / band_thread.hop)
    frames = timing.frames_of_times(times_s, fps, fps_base, offset_ms)
    inside = (frames >= 0) & (frames < n_frames)
    heard = inside & (loudness[np.clip(frames, 0, max(n_frames - 1, 0))] >= SILENT_LOUDNESS)
    times_s = times_s[heard]
    return beats.beat_video_frames(flux, sample_rate, fps, fps_base, offset_ms, n_frames, times_s), \
        beats.tempo_bpm(times_s)


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
def analyze(path, fps, fps_base=1.0, bands=DEFAULT_BANDS, band_shapes=None, onset_shape=shaping.ONSET_SHAPE,
            offset_ms=0.0, range_db=40.0, sample_rate=SAMPLE_RATE, normalise=shaping.DEFAULT_NORMALISE,
            normalise_window_s=shaping.DEFAULT_NORMALISE_WINDOW_S, onset_source=MIX, chroma_source=MIX, progress=None):
    """Analyse a song into per-video-frame features.

    Parameters
    ----------
    path : str, a wav, flac, ogg or mp3 file (any channels, any sample rate)
    fps, fps_base : the scene's frame rate is ``fps / fps_base``
    bands : sequence of `Band`
    band_shapes : sequence of `ShapeSettings`, one per band (default `shaping.BAND_SHAPE`)
    onset_shape : `ShapeSettings` for the onset curve
    offset_ms : latency offset; positive values make every curve react later
    range_db : level range mapped onto 0..1 for bands and RMS
    sample_rate : Hz, of the onsets and beats (and of the bands, unless they reach higher)
    normalise : "song" (default: each curve's 1.0 is its song's loud passages, so a quiet
        intro stays low and a loud drop reaches high) or "window" (each frame against the
        loud moments of the ``normalise_window_s`` seconds around it); the onset curve
        is its hits' strength times the loudness curve, so it follows the same choice
    onset_source : "mix", "percussive" or "harmonic" (that part of the mix), or a stem file:
        whose hits make the onset curve, the beats and the times the band levels are anchored to
    chroma_source : "mix", "harmonic" (the harmonic part of the mix), or a stem file
    progress : None, or called with a `Step` as each step starts and as it goes on; it may raise
        to stop the analysis (the exception comes out of this call)

    Returns
    -------
    Features
    """
    timing.check_fps(fps, fps_base)
    shaping.check_normalisation(normalise, normalise_window_s)
    bands, band_shapes = _checked_bands(bands, band_shapes)
    onset_stem, onset_part, chroma_stem = _sources(onset_source, chroma_source)
    info = audio.probe(path)
    check_bands_fit_file(bands, info.sample_rate, path)
    stem_files = stems.probe_stems(bands, onset_stem, chroma_stem)  # {path: AudioInfo}: all checked before any work
    steps = _Steps(progress, with_stems=bool(stem_files))
    steps.start(STEP_PREPARING)
    # Bands are measured at the lowest rate that holds the highest of them, with the same
    # window and hop durations at any rate; onsets and beats always at `sample_rate`.
    band_rate = band_sample_rate(bands, info.sample_rate)
    band_thread = _BandThread(bands, band_rate, chroma_source == HARMONIC, onset_part, sample_rate, bool(stem_files))
    band_thread.frame_levels = levels.FrameLevels([(bands[i].low_hz, bands[i].high_hz) for i in band_thread.on_mix],
                                                  band_rate, fps, fps_base, offset_ms)
    onset_flux = onsets.OnsetFlux(sample_rate)
    steps.start(STEP_MEASURING)
    decoded_samples = _measure_song(path, info, band_thread, onset_flux, onset_stem, steps)
    duration_s, n_frames = _duration(path, decoded_samples, info.sample_rate, fps, fps_base)
    flux = onset_flux.curve()
    hop_levels = band_thread.hop_levels()
    if stem_files:
        steps.start(STEP_STEMS)
    _add_stems(hop_levels, band_thread, stem_files, onset_stem, chroma_stem, steps)
    steps.start(STEP_FRAMES)
    per_video_frame = aggregate.levels_per_video_frame(
        hop_levels, onsets.onset_times(flux, sample_rate), band_rate, band_thread.n_fft, band_thread.hop,
        fps, fps_base, offset_ms, n_frames, rise_ratio=ANCHOR_RISE_RATIO, frame_levels=band_thread.frame_levels,
        frame_columns=band_thread.on_mix + [levels.total_column(len(bands))])
    onset_strength = aggregate.onset_per_video_frame(flux, sample_rate, fps, fps_base, offset_ms, n_frames)
    onset_rise = aggregate.onset_per_video_frame(onset_flux.fresh_rise_curve(), sample_rate, fps, fps_base, offset_ms,
                                                 n_frames)
    window_s = normalise_window_s if normalise == "window" else None
    steps.start(STEP_SHAPING)
    curves = _curves(per_video_frame, (onset_strength, onset_rise), band_shapes, onset_shape,
                     timing.frames_per_second(fps, fps_base), range_db, window_s)
    steps.start(STEP_BEATS)
    beat_frames, tempo_bpm = _beats(flux, hop_levels, band_thread, sample_rate, (fps, fps_base, offset_ms, n_frames),
                                    curves["rms"])
    form = structure.analyse(per_video_frame, onset_strength, beat_frames, [b.high_hz for b in bands])
    meta = _meta(path, info, duration_s, bands, band_rate, fps, fps_base, offset_ms, sample_rate, onset_source,
                 chroma_source, normalise, window_s)
    meta.update(tempo_bpm=tempo_bpm, beats_per_bar=form.beats_per_bar)
    return _features(bands, beat_frames, form, meta, curves)


def _features(bands, beat_frames, form, meta, curves):
    """The `Features` of the bands, the beats, the form (`structure.Structure`) and the curves (`_curves`)."""
    return Features(
        band_names=[b.name for b in bands],
        band_low_hz=np.array([b.low_hz for b in bands], dtype=np.float64),
        band_high_hz=np.array([b.high_hz for b in bands], dtype=np.float64),
        beats=beat_frames, meta=meta,
        downbeats=form.downbeats, section_starts=form.section_starts, section_labels=form.section_labels,
        drops=form.drops, beat=form.beat, bar=form.bar, section=form.section, drop=form.drop,
        **curves,
    )

