"""Reading audio as a stream of mono blocks at the analysis sample rate.

libsndfile (through ``soundfile``) decodes wav, flac, ogg/vorbis/opus and mp3 at
any rate and channel count; ``soxr`` resamples block by block. Memory stays
bounded by the block size whatever the song's length, so an hour-long file costs
no more RAM than a short one.
"""

import os
from dataclasses import dataclass

import numpy as np
import soundfile
import soxr

from ..errors import LatentWalkError

BLOCK_S = 20.0  # decoded seconds per block: large enough for fast FFTs, small for RAM


@dataclass(frozen=True)
class AudioInfo:
    path: str
    sample_rate: int
    channels: int
    declared_samples: int  # what the header says; decoders of mp3 may only estimate it
    format: str

    @property
    def declared_duration_s(self):
        return self.declared_samples / self.sample_rate


def _open(path):
    if not path:
        raise LatentWalkError("no audio file is set: choose a song (wav, flac, ogg or mp3).")
    if not os.path.exists(path):
        raise LatentWalkError(f"audio file not found: '{path}'. Check the path, or choose the file again.")
    if os.path.isdir(path):
        raise LatentWalkError(f"'{path}' is a folder, not an audio file: choose a wav, flac, ogg or mp3 file.")
    if os.path.getsize(path) == 0:
        raise LatentWalkError(f"audio file '{path}' is empty (0 bytes): export the song again.")
    try:
        return soundfile.SoundFile(path)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as error:
        raise LatentWalkError(
            f"'{path}' could not be read as audio ({error}). Use a wav, flac, ogg or mp3 file; "
            "if it is one, it may be damaged: export it again."
        ) from None


def probe(path):
    """Header information of an audio file, or a ``LatentWalkError`` saying why not."""
    with _open(path) as sound:
        return AudioInfo(path, sound.samplerate, sound.channels, sound.frames, sound.format)


def iter_mono(path, sample_rate, block_s=BLOCK_S):
    """Decode ``path`` as mono float32 blocks resampled to ``sample_rate``.

    Yields
    ------
    np.ndarray, shape (n,), float32
        Consecutive blocks; together they are the whole song.

    Returns (as the generator's ``StopIteration.value``) the number of samples
    decoded at the file's own rate, from which the exact duration follows.
    """
    stream = iter_mono_source(path, block_s)
    resample = None
    while True:
        try:
            mono, last, source_rate = next(stream)
        except StopIteration as done:
            return done.value
        resample = resample or Resampler(source_rate, sample_rate)
        block = resample(mono, last)
        if len(block):
            yield block


class Resampler:
    """Streaming resampling of mono float32 blocks (soxr, high quality); the identity at equal rates.

    Each block goes through ``resampler(block, last)``; ``last`` on the final block flushes.
    """

    def __init__(self, source_rate, sample_rate):
        self.stream = None if source_rate == sample_rate else soxr.ResampleStream(
            source_rate, sample_rate, 1, dtype="float32", quality="HQ")

    def __call__(self, mono, last):
        if self.stream is None:
            return mono
        return np.ascontiguousarray(self.stream.resample_chunk(mono, last=last), dtype=np.float32)


def iter_mono_source(path, block_s=BLOCK_S):
    """Decode ``path`` once as mono float32 blocks at the file's own rate.

    Yields
    ------
    (np.ndarray shape (n,) float32, last: bool, source sample rate: int)
        Consecutive blocks (resample them with a `Resampler` each, in any thread).

    Returns (as the generator's ``StopIteration.value``) the number of samples decoded.
    """
    with _open(path) as sound:
        source_rate = sound.samplerate
        declared = sound.frames
        block_samples = max(1, int(block_s * source_rate))
        decoded = 0
        while True:
            try:
                block = sound.read(block_samples, dtype="float32", always_2d=True)
            except (soundfile.LibsndfileError, RuntimeError) as error:
                raise LatentWalkError(
                    f"'{path}' could not be decoded after {decoded / source_rate:.2f} s ({error}); "
                    "the file is probably truncated or damaged: export or download it again."
                ) from None
            last = len(block) < block_samples
            decoded += len(block)
            # A matrix-vector product averages channels several times faster than mean(axis=1).
            mono = block @ np.full(block.shape[1], 1.0 / block.shape[1], dtype=np.float32)
            if not np.isfinite(mono).all():  # float files can hold NaN or inf
                mono = np.nan_to_num(mono, nan=0.0, posinf=0.0, neginf=0.0)
            yield np.ascontiguousarray(mono, dtype=np.float32), last, source_rate
            if last:
                break
    _check_complete(path, sound_format=sound.format, declared=declared, decoded=decoded, rate=source_rate)
    return decoded


def _check_complete(path, sound_format, declared, decoded, rate):
    # MP3 headers carry an estimate; other formats state the exact length, so a
    # shortfall means the file was cut off.
    if sound_format == "MP3" or declared <= 0:
        return
    if decoded < declared - rate // 100:
        raise LatentWalkError(
            f"'{path}' is truncated: its header promises {declared / rate:.2f} s but only "
            f"{decoded / rate:.2f} s could be decoded. Export or download the file again."
        )
