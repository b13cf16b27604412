"""Filter banks over the bins of a spectrum: the bands' own (`band_bins`), and librosa's mel
and chroma banks, cached on disk.

Importing librosa's filters costs about a second of numba set-up in every new
process, longer than a whole 3-minute analysis; the matrices themselves never
change for given parameters. So they are computed by librosa once and kept in
the user's cache folder (keyed by parameters and librosa's version file).
"""

import hashlib
import importlib.util
import os

import numpy as np

from .. import atomic
from .. import cache


def _cache_folder():
    return cache.cache_folder("filterbanks")


def _librosa_version_key():
    """A short hash of librosa's ``version.py``, read without importing librosa (or
    importlib.metadata, which costs tens of milliseconds per process)."""
    spec = importlib.util.find_spec("librosa")
    folders = list(spec.submodule_search_locations or []) if spec else []
    try:
        with open(os.path.join(folders[0], "version.py"), "rb") as stream:
            return hashlib.sha1(stream.read()).hexdigest()[:12]
    except (IndexError, OSError):
        return "unknown"


def _cached(name, compute):
    path = os.path.join(_cache_folder(), f"{name}-librosa-{_librosa_version_key()}.npy")
    try:
        return np.load(path)
    except (OSError, ValueError):
        pass
    matrix = np.asarray(compute(), dtype=np.float32)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        atomic.write_via(path, lambda stream: np.save(stream, matrix))
    except OSError:
        pass  # a read-only home only costs the second again next time
    return matrix


def mel(sample_rate, n_fft, n_mels):
    """librosa.filters.mel: shape (n_mels, n_fft // 2 + 1), float32."""

    def compute():
        import librosa.filters

        return librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels)

    return _cached(f"mel-{sample_rate}-{n_fft}-{n_mels}", compute)


def chroma(sample_rate, n_fft):
    """librosa.filters.chroma (12 bins, tuning 0, unnormalised): shape (12, n_fft // 2 + 1), float32."""

    def compute():
        import librosa.filters

        return librosa.filters.chroma(sr=sample_rate, n_fft=n_fft, tuning=0.0, norm=None)

    return _cached(f"chroma-{sample_rate}-{n_fft}", compute)


def band_bins(bands, sample_rate, n_fft):
    """shape (n_bands, n_fft // 2 + 1), float32: 1 where an FFT bin lies in the band.

    bands : sequence of `Band`; a band narrower than one bin gets its nearest bin.
    """
    bin_hz = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)
    matrix = np.zeros((len(bands), len(bin_hz)), dtype=np.float32)
    for i, band in enumerate(bands):
        inside = (bin_hz >= band.low_hz) & (bin_hz < band.high_hz)
        if not inside.any():
            inside[np.argmin(np.abs(bin_hz - (band.low_hz + band.high_hz) / 2))] = True
        matrix[i, inside] = 1.0
    return matrix
