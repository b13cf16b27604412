"""Benchmark: our analysis + bake vs Blender's own Graph Editor sound bake.

    .venv/bin/python scripts/bench_bake.py [--seconds 180]

Synthesises a song (kick, bass, chords, hats), then in one run, for two sets of 8 bands
(up to 11 kHz on the mix, the default analysis rate; and up to 16 kHz with two bands on
the percussive part of the mix), measures:
  - ours, cold: analysis of the 8 bands + onset + RMS + chroma + beats and the bake
    of all 22 curves, as the first call in a fresh process (imports timed apart);
  - ours, warm: the same again in that process;
  - Blender: `graph.sound_to_samples` (`sound_bake` before 4.1) once per band for
    the same 8 frequency ranges of the mix, in background mode inside a temp_override
    with a Graph Editor;
  - each of the two as a whole process (interpreter start, bpy, imports and one bake:
    what a headless bake costs).
Prints the times and the ratios. Not a test: shared machines are noisy.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from demo_song import synthesise_song  # noqa: E402

# (name, low Hz, high Hz, source)
CLASSIC = [("Sub", 20, 60, "mix"), ("Bass", 60, 120, "mix"), ("Low Bass", 120, 250, "mix"),
           ("Low Mids", 250, 500, "mix"), ("Mids", 500, 2000, "mix"), ("High Mids", 2000, 4000, "mix"),
           ("Presence", 4000, 6000, "mix"), ("Brilliance", 6000, 11000, "mix")]
FULL_RANGE = [("Sub", 20, 60, "mix"), ("Kick", 60, 120, "percussive"), ("Low Bass", 120, 250, "mix"),
              ("Low Mids", 250, 500, "mix"), ("Mids", 500, 2000, "mix"), ("High Mids", 2000, 4000, "mix"),
              ("Presence", 4000, 8000, "mix"), ("Hats", 8000, 16000, "percussive")]


OURS = r"""
import json, sys, time
import bpy
start = time.perf_counter()
sys.path.insert(0, ROOT)
import blender_latentwalk
from blender_latentwalk.blender import operators
from blender_latentwalk.engine.analysis import pipeline  # librosa, scipy
imported = time.perf_counter()
bpy.ops.wm.read_factory_settings(use_empty=True)
blender_latentwalk.register()
scene = bpy.context.scene
settings = scene.latentwalk
settings.audio_path = SONG
for name, low, high, source in BANDS:
    band = settings.bands.add()
    band.title, band.low_hz, band.high_hz, band.source = name, low, high, source
times = []
for _ in range(REPEATS):
    t0 = time.perf_counter()
    operators.bake(scene, overwrite_edited=True, python="")
    times.append(time.perf_counter() - t0)
print("RESULT=" + json.dumps({"import_s": imported - start, "cold_s": times[0], "warm_s": min(times[1:] or times)}))
"""

BLENDER = r"""
import json, sys, time
import bpy
sys.path.insert(0, ROOT)
from blender_latentwalk.blender import compat
bpy.ops.wm.read_factory_settings()
window = bpy.context.window
screen = window.screen
area = max(screen.areas, key=lambda a: a.width * a.height)
area.type = "GRAPH_EDITOR"
region = next(r for r in area.regions if r.type == "WINDOW")
obj = bpy.data.objects["Cube"]
obj.select_set(True)
bpy.context.view_layer.objects.active = obj
bake = compat.sound_bake_operator()
times = []
for index, (name, low, high, _) in enumerate(BANDS):
    obj[name] = 0.0
    obj.keyframe_insert(f'["{name}"]', frame=1)
    fcurves = compat.fcurves_of(obj)
    for fcurve in fcurves:
        fcurve.select = fcurve.data_path == f'["{name}"]'
    t0 = time.perf_counter()
    with bpy.context.temp_override(window=window, screen=screen, area=area, region=region):
        result = bake(filepath=SONG, low=low, high=high)
    times.append(time.perf_counter() - t0)
    assert result == {"FINISHED"}, result
    fcurve = compat.find_fcurve(obj, f'["{name}"]', 0)
    assert len(fcurve.sampled_points) > 10, "sound bake wrote no samples"
print("RESULT=" + json.dumps({"total_s": sum(times), "per_band_s": times}))
"""


def run(code, song, bands, repeats=3):
    """Run ``code`` in a fresh Python; returns its RESULT dict plus the whole process's wall time."""
    source = f"ROOT = {ROOT!r}\nSONG = {song!r}\nBANDS = {bands!r}\nREPEATS = {repeats}\n" + code
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True)
    process_s = time.perf_counter() - start
    line = next((l for l in result.stdout.splitlines() if l.startswith("RESULT=")), None)
    if line is None:
        sys.exit(result.stdout + result.stderr)
    return dict(json.loads(line[len("RESULT="):]), process_s=process_s)


def report(title, ours, ours_once, blender):
    print(title)
    print(f"  ours: engine imports {ours['import_s']:.2f} s, cold (1st bake) {ours['cold_s']:.2f} s, "
          f"warm {ours['warm_s']:.2f} s")
    print(f"  Blender graph.sound_to_samples, 8 bands one by one: {blender['total_s']:.2f} s "
          f"({', '.join(f'{t:.2f}' for t in blender['per_band_s'])})")
    print(f"  bake speed-up: cold {blender['total_s'] / ours['cold_s']:.1f}x, "
          f"warm {blender['total_s'] / ours['warm_s']:.1f}x")
    print(f"  whole process (Python, bpy, imports, one bake): ours {ours_once['process_s']:.2f} s, "
          f"Blender {blender['process_s']:.2f} s: {blender['process_s'] / ours_once['process_s']:.1f}x")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=180.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        song = os.path.join(folder, "song.wav")
        synthesise_song(song, args.seconds)
        from blender_latentwalk.engine.analysis import filterbanks

        cached = os.path.isdir(filterbanks._cache_folder()) and bool(os.listdir(filterbanks._cache_folder()))
        results = []
        for bands in (CLASSIC, FULL_RANGE):
            results.append((run(OURS, song, bands), run(OURS, song, bands, repeats=1), run(BLENDER, song, bands)))
    print(f"song: {args.seconds:.0f} s synthesised stereo 44.1 kHz, 30 fps; ours: 8 bands + onset + RMS + "
          f"12 chroma + beats, 22 curves baked (librosa's filter banks {'were cached' if cached else 'cached now'})")
    report("8 bands up to 11 kHz, all on the mix:", *results[0])
    report("8 bands up to 16 kHz, Kick (60-120 Hz) and Hats (8-16 kHz) on the percussive part:", *results[1])


if __name__ == "__main__":
    main()
