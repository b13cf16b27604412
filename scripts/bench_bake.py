"""Benchmark: our analysis + bake vs Blender's own Graph Editor sound bake.

    .venv/bin/python scripts/bench_bake.py [--seconds 180]

Synthesises a song (kick, bass, chords, hats), then in one run measures:
  - ours, cold: analysis of 8 bands + onset + RMS + chroma + beats and the bake
    of all 22 curves, as the first call in a fresh process (imports timed apart);
  - ours, warm: the same again in that process;
  - Blender: `graph.sound_to_samples` (`sound_bake` before 4.1) once per band for
    the same 8 bands, in background mode inside a temp_override with a Graph Editor.
Prints the times and the ratios. Not a test: shared machines are noisy.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from demo_song import synthesise_song  # noqa: E402

BANDS = [("Sub", 20, 60), ("Bass", 60, 120), ("Low Bass", 120, 250), ("Low Mids", 250, 500),
         ("Mids", 500, 2000), ("High Mids", 2000, 4000), ("Presence", 4000, 6000), ("Brilliance", 6000, 11000)]


OURS = r"""
import json, sys, time
import bpy
start = time.perf_counter()
sys.path.insert(0, ROOT)
import blender_latentwalk
from blender_latentwalk.blender import operators
from blender_latentwalk.engine import analysis  # librosa, scipy
imported = time.perf_counter()
bpy.ops.wm.read_factory_settings(use_empty=True)
blender_latentwalk.register()
scene = bpy.context.scene
settings = scene.latentwalk
settings.audio_path = SONG
for name, low, high in BANDS:
    band = settings.bands.add()
    band.title, band.low_hz, band.high_hz = name, low, high
times = []
for _ in range(3):
    t0 = time.perf_counter()
    operators.bake(scene, overwrite_edited=True, python="")
    times.append(time.perf_counter() - t0)
print("RESULT=" + json.dumps({"import_s": imported - start, "cold_s": times[0], "warm_s": min(times[1:])}))
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
for index, (name, low, high) in enumerate(BANDS):
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


def run(code, song):
    source = f"ROOT = {ROOT!r}\nSONG = {song!r}\nBANDS = {BANDS!r}\n" + code
    result = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True)
    line = next((l for l in result.stdout.splitlines() if l.startswith("RESULT=")), None)
    if line is None:
        sys.exit(result.stdout + result.stderr)
    return json.loads(line[len("RESULT="):])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=180.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        song = os.path.join(folder, "song.wav")
        synthesise_song(song, args.seconds)
        from blender_latentwalk.engine import filterbanks

        cached = os.path.isdir(filterbanks._cache_folder()) and bool(os.listdir(filterbanks._cache_folder()))
        ours = run(OURS, song)
        blender = run(BLENDER, song)
    print(f"song: {args.seconds:.0f} s synthesised stereo 44.1 kHz, 8 bands, 30 fps")
    print("ours (8 bands + onset + RMS + 12 chroma + beats, 22 curves baked):")
    print(f"  engine imports   {ours['import_s']:7.2f} s  (once per Blender session; librosa's filter banks "
          f"{'were cached' if cached else 'computed and cached now'})")
    print(f"  cold (1st bake)  {ours['cold_s']:7.2f} s  ({ours['cold_s'] + ours['import_s']:.2f} s with the imports)")
    print(f"  warm             {ours['warm_s']:7.2f} s")
    print(f"Blender graph.sound_to_samples, 8 bands one by one: {blender['total_s']:7.2f} s "
          f"({', '.join(f'{t:.2f}' for t in blender['per_band_s'])})")
    print(f"speed-up: cold {blender['total_s'] / ours['cold_s']:.1f}x "
          f"({blender['total_s'] / (ours['cold_s'] + ours['import_s']):.1f}x counting the imports), "
          f"warm {blender['total_s'] / ours['warm_s']:.1f}x")


if __name__ == "__main__":
    main()
