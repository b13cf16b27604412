"""Picture the analysis: the demo song's waveform with its band curves, onset and beats; and a song's form.

    .venv/bin/python scripts/plot_features.py [--out docs/features.png] [--seconds 4] [--fps 30]
        [--structure-out docs/structure.png]

Synthesises the demo song (scripts/demo_song.py: kick on every beat, bass, chords,
off-beat hats), analyses it with the engine's defaults, and draws one row per curve over
the waveform on the frames' own time grid, with the beats as vertical lines, so one can
see that a kick lands on its own frame in the bass bands and a hat in the high ones.

The second picture is the structure of a synthesised A B A C song with a build and a drop
(scripts/songs_with_form.py): its waveform with the sections found shaded and labelled, the bar
lines, the drop, and the Bar, Section and Drop curves the bake writes, over the true section starts.
"""

import argparse
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for path in (ROOT, os.path.join(ROOT, "scripts")):
    if path not in sys.path:
        sys.path.insert(0, path)

DEFAULT_OUT = os.path.join(ROOT, "docs", "features.png")
DEFAULT_STRUCTURE_OUT = os.path.join(ROOT, "docs", "structure.png")


def _save(figure, out):
    """Write ``figure`` to ``out`` (the same bytes on every run: no software tag) and close it; returns ``out``."""
    import matplotlib.pyplot as plt

    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    figure.savefig(out, dpi=100, bbox_inches="tight", metadata={"Software": None})
    plt.close(figure)
    return out


def plot(out, seconds=4.0, fps=30.0):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import soundfile

    from blender_latentwalk.engine.analysis import pipeline
    from demo_song import synthesise_song

    with tempfile.TemporaryDirectory(prefix="latentwalk-plot-") as folder:
        song = os.path.join(folder, "song.wav")
        synthesise_song(song, seconds)
        samples, sample_rate = soundfile.read(song, dtype="float32")
        features = pipeline.analyze(song, fps=fps)
    samples = samples.mean(axis=1) if samples.ndim == 2 else samples
    frame_s = np.arange(features.n_frames) / fps  # frame k starts at k / fps
    rows = [(name, curve) for name, curve in zip(features.band_names, features.bands)]
    rows += [("Onset", features.onset), ("Loudness", features.rms)]
    figure, axes = plt.subplots(len(rows) + 1, 1, figsize=(10, 1.0 + 0.62 * (len(rows) + 1)), sharex=True,
                                gridspec_kw={"hspace": 0.15})
    axes[0].plot(np.arange(len(samples)) / sample_rate, samples, color="0.35", linewidth=0.4)
    axes[0].set_ylabel("song", rotation=0, ha="right", va="center")
    for axis, (name, curve) in zip(axes[1:], rows):
        axis.step(frame_s, curve, where="post", color="tab:orange", linewidth=1.0)  # a value holds for its frame
        axis.set_ylim(0, 1.05)
        axis.set_ylabel(name, rotation=0, ha="right", va="center")
    for axis in axes:
        axis.set_yticks([])
        for beat in features.beats:
            axis.axvline(beat / fps, color="tab:blue", linewidth=0.6, alpha=0.5)
    axes[-1].set_xlabel(f"seconds ({fps:g} fps; blue: beats)")
    axes[-1].set_xlim(0, seconds)
    figure.suptitle("The demo song analysed: one value per video frame", y=0.995)
    return _save(figure, out)


def plot_structure(out, fps=24.0):
    """Draw the form song's sections, bars and drop over its waveform into ``out``; returns ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import soundfile

    from blender_latentwalk.engine.analysis import pipeline
    from songs_with_form import form_song

    with tempfile.TemporaryDirectory(prefix="latentwalk-plot-") as folder:
        song, truth = form_song(os.path.join(folder, "abac.wav"), seed=3)
        samples, sample_rate = soundfile.read(song, dtype="float32")
        features = pipeline.analyze(song, fps=fps)
    frame_s = np.arange(features.n_frames) / fps
    rows = [("Bar", features.bar), ("Section", features.section / max(1.0, features.section.max())),
            ("Drop", features.drop), ("Loudness", features.rms)]
    figure, axes = plt.subplots(len(rows) + 1, 1, figsize=(10, 1.2 + 0.7 * (len(rows) + 1)), sharex=True,
                                gridspec_kw={"hspace": 0.15, "height_ratios": [2] + [1] * len(rows)})
    axes[0].plot(np.arange(len(samples)) / sample_rate, samples, color="0.35", linewidth=0.3)
    ends = list(features.section_starts[1:]) + [features.n_frames]
    colours = {}
    for start, end, label in zip(features.section_starts, ends, features.section_labels):
        colour = colours.setdefault(label, f"C{len(colours) + 1}")
        axes[0].axvspan(start / fps, end / fps, color=colour, alpha=0.18, linewidth=0)
        axes[0].text(start / fps + 0.3, 0.82, f"section: {label}", fontsize=9, va="top")
    for drop in features.drops:
        axes[0].text(drop / fps + 0.3, -0.82, "drop", fontsize=9, color="tab:red", va="bottom")
    axes[0].set_ylim(-1, 1)
    axes[0].set_ylabel("song", rotation=0, ha="right", va="center")
    for axis, (name, curve) in zip(axes[1:], rows):
        axis.step(frame_s, curve, where="post", color="tab:orange", linewidth=0.8)
        axis.set_ylim(0, 1.05)
        axis.set_ylabel(name, rotation=0, ha="right", va="center")
    for axis in axes:
        axis.set_yticks([])
        for downbeat in features.downbeats:
            axis.axvline(downbeat / fps, color="tab:blue", linewidth=0.4, alpha=0.35)
        for start in truth.section_starts_s[1:]:
            axis.axvline(start, color="black", linewidth=0.8, linestyle=":")
        for drop in features.drops:
            axis.axvline(drop / fps, color="tab:red", linewidth=1.0)
    axes[-1].set_xlabel(f"seconds ({fps:g} fps; blue: bar lines found; dotted: the true section starts; red: drop)")
    axes[-1].set_xlim(0, len(samples) / sample_rate)
    figure.suptitle(f"A B A C with a build and a drop, analysed: sections {' '.join(features.section_labels)}, "
                    f"{features.meta['tempo_bpm']:.1f} BPM", y=0.995)
    return _save(figure, out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=DEFAULT_OUT)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--structure-out", default=DEFAULT_STRUCTURE_OUT)
    args = parser.parse_args()
    print(plot(args.out, args.seconds, args.fps))
    print(plot_structure(args.structure_out))


if __name__ == "__main__":
    main()
