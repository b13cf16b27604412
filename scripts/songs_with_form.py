"""Synthesised songs whose form is known: the beats, the bars, the sections and the drop are where the score puts
them, after a lead-in of a random length (so every event falls at a random position inside its video frame).

`song(path, ...)` writes a wav and returns its `Truth` (times in seconds from the file's start).
"""

from dataclasses import dataclass, field

import numpy as np
import soundfile

SAMPLE_RATE = 22050
NOTE_HZ = {"A1": 55.0, "Bb1": 58.27, "C2": 65.41, "D2": 73.42, "E2": 82.41, "F2": 87.31, "G2": 98.0}
# Triads per bar (root and the triad's three notes, as frequencies an octave or two above the root).
CHORDS = {"Am": ("A1", (220.0, 261.63, 329.63)), "F": ("F2", (174.61, 220.0, 261.63)),
          "C": ("C2", (261.63, 329.63, 392.0)), "G": ("G2", (196.0, 246.94, 293.66)),
          "Dm": ("D2", (293.66, 349.23, 440.0)), "Bb": ("Bb1", (233.08, 293.66, 349.23)),
          "E": ("E2", (329.63, 415.3, 493.88)), "D": ("D2", (293.66, 369.99, 440.0))}


@dataclass
class Truth:
    beats_s: list = field(default_factory=list)
    downbeats_s: list = field(default_factory=list)
    section_starts_s: list = field(default_factory=list)
    section_labels: list = field(default_factory=list)
    drops_s: list = field(default_factory=list)
    bpm: list = field(default_factory=list)  # the tempo of each stretch, in order


def _place(out, start_s, sound, gain=1.0):
    start = int(round(start_s * SAMPLE_RATE))
    end = min(len(out), start + len(sound))
    if end > start:
        out[start:end] += gain * sound[: end - start]


def _t(seconds):
    return np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE


def kick(rng):
    t = _t(0.25)
    phase = 2 * np.pi * np.cumsum(50.0 + 100.0 * np.exp(-t / 0.03)) / SAMPLE_RATE
    return np.sin(phase) * np.exp(-t / 0.09)


def snare(rng):
    t = _t(0.2)
    noise = rng.standard_normal(len(t))
    return (0.6 * noise + 0.5 * np.sin(2 * np.pi * 190.0 * t)) * np.exp(-t / 0.05)


def hat(rng):
    t = _t(0.05)
    noise = np.diff(rng.standard_normal(len(t) + 1))  # differenced: high frequencies
    return noise * np.exp(-t / 0.012)


def chord(name, seconds, bright=False):
    """The chord's triad (and its root two octaves down, the bass) for ``seconds``, struck at its start."""
    root, notes = CHORDS[name]
    t = _t(seconds)
    envelope = 0.4 + 0.6 * np.exp(-t / 0.4)
    pad = sum(np.sin(2 * np.pi * f * t) + (0.5 * np.sin(4 * np.pi * f * t) + 0.3 * np.sin(6 * np.pi * f * t)
                                             if bright else 0.0) for f in notes)
    bass = np.sin(2 * np.pi * NOTE_HZ[root] * t) * (0.3 + 0.7 * np.exp(-t / 0.3))
    return 0.08 * pad * envelope, 0.35 * bass


def write(path, audio):
    audio = audio / max(1e-9, np.abs(audio).max()) * 0.8
    soundfile.write(str(path), audio.astype(np.float32), SAMPLE_RATE)
    return str(path)


def form_song(path, seed=0):
    """A B A C, 8 bars each at 120 BPM in 4/4; the second A's last two bars are a build (the drums and bass
    stop, a riser and a snare roll climb), and C opens with the drop (kick on every beat, the bass 12 dB up).
    Returns `Truth`."""
    rng = np.random.default_rng(seed)
    lead_in_s = float(rng.uniform(0.3, 0.8))
    beat_s, bars_per_section = 0.5, 8
    plan = [("A", ["Am", "F", "C", "G"], False), ("B", ["Dm", "Bb", "F", "C"], True),
            ("A", ["Am", "F", "C", "G"], False), ("C", ["E", "C", "G", "D"], True)]
    n_bars = bars_per_section * len(plan)
    out = np.zeros(int((lead_in_s + n_bars * 4 * beat_s + 1.0) * SAMPLE_RATE))
    truth = Truth(bpm=[120.0])
    sounds = {"kick": kick(rng), "snare": snare(rng), "hat": hat(rng)}
    for section_index, (label, chords, bright) in enumerate(plan):
        section_start = lead_in_s + section_index * bars_per_section * 4 * beat_s
        truth.section_starts_s.append(section_start)
        truth.section_labels.append(label)
        if label == "C":
            truth.drops_s.append(section_start)
        for bar in range(bars_per_section):
            bar_start = section_start + bar * 4 * beat_s
            truth.downbeats_s.append(bar_start)
            build = label == "A" and section_index == 2 and bar >= bars_per_section - 2
            drop = label == "C"
            pad, bass = chord(chords[bar % len(chords)], 4 * beat_s, bright)
            _place(out, bar_start, pad)
            if not build:
                _place(out, bar_start, bass, 4.0 if drop else 1.0)
            for beat in range(4):
                time = bar_start + beat * beat_s
                truth.beats_s.append(time)
                if build:  # a snare roll that doubles each beat, and a noise riser
                    hits = 2 ** (beat + (bar - bars_per_section + 2) * 2)
                    for k in range(min(hits, 8)):
                        _place(out, time + k * beat_s / min(hits, 8), sounds["snare"], 0.2 + 0.1 * beat)
                    continue
                if drop or beat in (0, 2):
                    _place(out, time, sounds["kick"], 1.6 if drop else 1.0)
                if beat in (1, 3):
                    _place(out, time, sounds["snare"], 0.5)
                for eighth in range(2):
                    _place(out, time + eighth * beat_s / 2, sounds["hat"], 0.25 if bright else 0.12)
        if section_index == 2:  # the riser under the build
            riser_start = section_start + (bars_per_section - 2) * 4 * beat_s
            t = _t(8 * beat_s)
            noise = np.diff(rng.standard_normal(len(t) + 1)) * (t / t[-1]) ** 2
            _place(out, riser_start, noise, 0.3)
    return write(path, out), truth


def groove_song(path, bpm_stretches, seconds_each, seed=0, pad=False, swing=False):
    """A groove in 4/4 (kick on 1 and 3, snare on 2 and 4, hats on the eighths, a chord and bass note per bar)
    at each tempo of ``bpm_stretches`` for ``seconds_each`` seconds in turn.

    pad : a loud sustained pad that swells through each bar (its onsets blur the beat)
    swing : the off-beat eighths land two thirds of the way through the beat (a shuffle)
    Returns (path, `Truth`).
    """
    rng = np.random.default_rng(seed)
    lead_in_s = float(rng.uniform(0.3, 0.8))
    total_s = lead_in_s + seconds_each * len(bpm_stretches) + 1.0
    out = np.zeros(int(total_s * SAMPLE_RATE))
    truth = Truth(bpm=list(bpm_stretches))
    sounds = {"kick": kick(rng), "snare": snare(rng), "hat": hat(rng)}
    progression = ["Am", "F", "C", "G"]
    time, bar = lead_in_s, 0
    for stretch, bpm in enumerate(bpm_stretches):
        beat_s = 60.0 / bpm
        stretch_end = lead_in_s + (stretch + 1) * seconds_each
        while time + 4 * beat_s <= stretch_end + 1e-9:
            truth.downbeats_s.append(time)
            chord_pad, bass = chord(progression[bar % 4], 4 * beat_s)
            if pad:
                t = _t(4 * beat_s)
                swell = np.sin(np.pi * t / t[-1]) ** 2
                root_pad = sum(np.sin(2 * np.pi * f * t) for f in CHORDS[progression[bar % 4]][1])
                _place(out, time, 0.25 * root_pad * swell)
            _place(out, time, chord_pad)
            _place(out, time, bass)
            for beat in range(4):
                beat_time = time + beat * beat_s
                truth.beats_s.append(beat_time)
                _place(out, beat_time, sounds["kick" if beat in (0, 2) else "snare"], 1.0 if beat in (0, 2) else 0.5)
                _place(out, beat_time, sounds["hat"], 0.15)
                _place(out, beat_time + beat_s * (2 / 3 if swing else 1 / 2), sounds["hat"], 0.1)
            time += 4 * beat_s
            bar += 1
    return write(path, out), truth
