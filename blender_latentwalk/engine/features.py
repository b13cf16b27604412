"""The features file: per-video-frame curves, saved as ``.npz``.

Kept apart from `analysis` so that readers of the file (the add-on inside
Blender) need numpy only, not librosa.
"""

import json
import os
import tempfile
from dataclasses import dataclass, field

import numpy as np

PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
FEATURES_VERSION = 1


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
    beats : np.ndarray, shape (n_beats,), int64 frame indices
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
        arrays = {name: self.bands[i] for i, name in enumerate(self.band_names)}
        arrays.update(
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
        handle, temp_path = tempfile.mkstemp(suffix=".npz", dir=folder)
        try:
            with os.fdopen(handle, "wb") as stream:
                np.savez(stream, **arrays)
            os.replace(temp_path, path)
        except BaseException:
            if os.path.exists(temp_path):
                os.unlink(temp_path)
            raise

    @classmethod
    def load_npz(cls, path):
        with np.load(path, allow_pickle=False) as data:
            names = [str(n) for n in data["band_names"]]
            n_frames = len(data["onset"])
            bands = np.stack([data[n] for n in names]) if names else np.zeros((0, n_frames), np.float32)
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
