"""Picture the analysis: the demo song's waveform with its band curves, onset and beats.

    .venv/bin/python scripts/plot_features.py [--out docs/features.png] [--seconds 4] [--fps 30]

Synthesises the demo song (scripts/demo_song.py: kick on every beat, bass, chords,
off-beat hats), analyses it with the engine's defaults, and draws one row per curve over
the waveform on the frames' own time grid, with the beats as vertical lines, so one can
see that a kick lands on its own frame in the bass bands and a hat in the high ones.
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
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    figure.savefig(out, dpi=100, bbox_inches="tight", metadata={"Software": None})
    plt.close(figure)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=DEFAULT_OUT)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--fps", type=float, default=30.0)
    args = parser.parse_args()
    print(plot(args.out, args.seconds, args.fps))


if __name__ == "__main__":
    main()
