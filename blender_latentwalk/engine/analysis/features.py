"""The features file: per-video-frame curves, saved as ``.npz``.

Kept apart from `analysis` so that readers of the file (the add-on inside
Blender) need numpy only, not librosa.
"""

import json
import os
from dataclasses import dataclass, field

import numpy as np

from .. import atomic

PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
FEATURES_VERSION = 2  # 2: curves anchored to hits; meta adds normalise, band_sample_rate and the sources


@dataclass
class Features:
    """Everything the bake needs, one value per video frame.

    Attributes
    ----------
    band_names : list of str, length n_bands
    band_low_hz, band_high_hz : np.ndarray, shape (n_bands,)
    bands : np.ndarray, shape (n_bands, n_frames), float32 in 0..1
    onset : np.ndarray, shape (n_frames,), float32 in 0..1 (percussive pulse)
    rms : np.ndarray, shape (n_frames,), float32 in 0..1 (overall loudness)
    chroma : np.ndarray, shape (n_frames, 12), float32 in 0..1 (C, C#, ... B)
    beats : np.ndarray, shape (n_beats,), int64 video frame indices
    meta : dict, JSON-able (fps, fps_base, offset_ms, duration_s, audio path, ...)
    """

    band_names: list
    band_low_hz: np.ndarray
    band_high_hz: np.ndarray
    bands: np.ndarray
    onset: np.ndarray
    rms: np.ndarray
    chroma: np.ndarray
    beats: np.ndarray
    meta: dict = field(default_factory=dict)

    @property
    def n_frames(self):
        return len(self.onset)

    def check_shapes(self):
        """Raise ValueError unless every array has the documented shape."""
        n = self.n_frames
        expected = {"bands": (len(self.band_names), n), "rms": (n,), "chroma": (n, len(PITCH_CLASSES))}
        for name, shape in expected.items():
            if getattr(self, name).shape != shape:
                raise ValueError(f"features: {name} has shape {getattr(self, name).shape}, expected {shape}")

    def band(self, name):
        return self.bands[self.band_names.index(name)]

    def summary(self):
        means = ", ".join(f"{n} {v.mean():.2f}" for n, v in zip(self.band_names, self.bands))
        m = self.meta
        return (
            f"{os.path.basename(m.get('audio_path', '?'))}: {m['duration_s']:.2f} s -> {self.n_frames} frames "
            f"at {m['fps'] / m['fps_base']:.3f} fps, {len(self.beats)} beats; mean {means}"
        )

    def save_npz(self, path):
        """Write the features file atomically (a temp file renamed into place)."""
        # One array per band, keyed by name, for people reading the file; the
        # loader reads the 2-D "bands" array, so no band name can shadow anything.
        arrays = {name: self.bands[i] for i, name in enumerate(self.band_names)}
        arrays.update(
            bands=self.bands,
            onset=self.onset,
            rms=self.rms,
            chroma=self.chroma,
            beats=self.beats,
            band_names=np.array(self.band_names, dtype=str),
            band_low_hz=self.band_low_hz,
            band_high_hz=self.band_high_hz,
            meta=np.array(json.dumps(self.meta)),
        )
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        atomic.write_via(path, lambda stream: np.savez(stream, **arrays))

    @classmethod
    def load_npz(cls, path):
        with np.load(path, allow_pickle=False) as data:
            names = [str(n) for n in data["band_names"]]
            bands = data["bands"]
            return cls(
                band_names=names,
                band_low_hz=data["band_low_hz"],
                band_high_hz=data["band_high_hz"],
                bands=bands,
                onset=data["onset"],
                rms=data["rms"],
                chroma=data["chroma"],
                beats=data["beats"],
                meta=json.loads(str(data["meta"])),
            )
