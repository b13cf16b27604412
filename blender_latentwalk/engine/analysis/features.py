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
# 3: the music's structure (downbeats, sections and their labels, drops; beat, bar, section and drop curves)
# 2: curves anchored to hits; meta adds normalise, band_sample_rate and the sources
FEATURES_VERSION = 3

# The structure's arrays, each with its dtype; a file without them (version 2) reads as a song without structure.
STRUCTURE_ARRAYS = {"downbeats": np.int64, "section_starts": np.int64, "drops": np.int64,
                    "beat": np.float32, "bar": np.float32, "section": np.float32, "drop": np.float32}


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
    meta : dict, JSON-able (fps, fps_base, offset_ms, duration_s, audio path, tempo_bpm, beats_per_bar, ...)

    The music's structure (`structure`), all in video frame indices from the song's first frame:

    downbeats : np.ndarray, shape (n_bars,), int64, the first beat of each bar (a subset of ``beats``)
    section_starts : np.ndarray, shape (n_sections,), int64, increasing, the first is 0; each on a downbeat
        (or 0)
    section_labels : list of str, length n_sections: "A", "B", ...; sections that sound alike share a letter
    drops : np.ndarray, shape (n_drops,), int64, where the energy surges after a build (a subset of the
        section starts)
    beat, bar : np.ndarray, shape (n_frames,), float32 in 0..1: 1 on each beat (bar) frame, decaying to 0
        over the beat (bar), a pulse that modulations and drivers can follow
    section : np.ndarray, shape (n_frames,), float32: the label's number (A = 0, B = 1, ...), held over the
        section
    drop : np.ndarray, shape (n_frames,), float32 in 0..1: 1 on a drop's frame, decaying to 0 over its bar
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
    downbeats: np.ndarray = None
    section_starts: np.ndarray = None
    section_labels: list = None
    drops: np.ndarray = None
    beat: np.ndarray = None
    bar: np.ndarray = None
    section: np.ndarray = None
    drop: np.ndarray = None

    def __post_init__(self):
        # A song analysed without its structure (or a version-2 file): no bars, one section "A", no drops.
        n = len(self.onset)
        for name, dtype in STRUCTURE_ARRAYS.items():
            if getattr(self, name) is None:
                empty = name in ("downbeats", "drops")
                shape = (0,) if empty else ((1,) if name == "section_starts" else (n,))
                setattr(self, name, np.zeros(shape, dtype))
            else:
                setattr(self, name, np.asarray(getattr(self, name), dtype))
        if self.section_labels is None:
            self.section_labels = ["A"] * len(self.section_starts)
        self.section_labels = [str(label) for label in self.section_labels]

    @property
    def n_frames(self):
        return len(self.onset)

    def check_shapes(self):
        """Raise ValueError unless every array has the documented shape."""
        n = self.n_frames
        expected = {"bands": (len(self.band_names), n), "rms": (n,), "chroma": (n, len(PITCH_CLASSES)),
                    "beat": (n,), "bar": (n,), "section": (n,), "drop": (n,),
                    "section_starts": (len(self.section_labels),)}
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
            f"at {m['fps'] / m['fps_base']:.3f} fps, {len(self.beats)} beats, {len(self.downbeats)} bars, "
            f"sections {' '.join(self.section_labels)}, {len(self.drops)} drop(s); mean {means}"
        )

    def save_npz(self, path):
        """Write the features file atomically (a temp file renamed into place)."""
        # One array per band, keyed by name, for people reading the file; the
        # loader reads the 2-D "bands" array, so no band name can shadow anything.
        # A band named like a structure curve ("Drop") keeps its name: its array is the 2-D "bands" row only.
        arrays = {name: self.bands[i] for i, name in enumerate(self.band_names)
                  if name not in STRUCTURE_ARRAYS and name != "section_labels"}
        arrays.update(
            bands=self.bands,
            onset=self.onset,
            rms=self.rms,
            chroma=self.chroma,
            beats=self.beats,
            section_labels=np.array(self.section_labels, dtype=str),
            band_names=np.array(self.band_names, dtype=str),
            band_low_hz=self.band_low_hz,
            band_high_hz=self.band_high_hz,
            meta=np.array(json.dumps(self.meta)),
        )
        arrays.update({name: getattr(self, name) for name in STRUCTURE_ARRAYS})
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        atomic.write_via(path, lambda stream: np.savez(stream, **arrays))

    @classmethod
    def load_npz(cls, path):
        with np.load(path, allow_pickle=False) as data:
            names = [str(n) for n in data["band_names"]]
            bands = data["bands"]
            structure = {name: data[name] for name in STRUCTURE_ARRAYS if name in data.files}
            if "section_labels" in data.files:
                structure["section_labels"] = [str(label) for label in data["section_labels"]]
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
                **structure,
            )
