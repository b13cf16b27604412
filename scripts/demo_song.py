"""The demo song: a 120 BPM beat with kick, bass, chords and hats, synthesised."""

import numpy as np
import soundfile


def synthesise_song(path, seconds, sample_rate=44100):
    """Write a stereo wav: kick on every beat, a pulsing bass, an A major chord, off-beat hats."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    beat = 0.5  # 120 bpm
    phase = t % beat
    kick = np.sin(2 * np.pi * (50 + 80 * np.exp(-phase * 30)) * phase) * np.exp(-phase * 12)
    bass = 0.3 * np.sin(2 * np.pi * 55 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * t / 8))
    chords = sum(0.08 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6))
    hat_phase = t % (beat / 2)
    rng = np.random.default_rng(0)
    hats = 0.15 * rng.standard_normal(len(t)) * np.exp(-hat_phase * 80)
    song = 0.6 * kick + bass + chords + hats
    soundfile.write(path, np.stack([song, song], axis=1).astype(np.float32), sample_rate)
