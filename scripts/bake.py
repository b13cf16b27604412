"""Bake a song into Latent Walk curves, headless.

    blender -b [FILE.blend] --python-exit-code 1 -P scripts/bake.py -- --audio SONG [options]
    python scripts/bake.py -- --audio SONG [options]          (where `import bpy` works)

Options: --fps RATE (24, 29.97, 23.976 or 30000/1001), --fps-base B, --band NAME:LOW-HIGH[@SOURCE] (repeat;
SOURCE: mix, percussive, harmonic or a stem file), --offset-ms MS,
--normalise song|window, --normalise-window-s N, --onset-source mix|percussive|harmonic|STEM,
--chroma-source mix|harmonic|STEM, --beat-markers, --overwrite-edited,
--save OUT.blend; --preview renders the BigGAN
preview into the sequencer after the bake (--generator NAME_OR_FOLDER_OR_FILE, --preview-folder DIR,
--device auto|cpu|cuda|mps). In Blender's own Python set
LATENTWALK_ENGINE_PYTHON (or --engine-python) to a Python with the engine's
requirements, e.g. .venv/bin/python. Exits 1 with a one-line message on failure.
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import bpy  # noqa: E402

from blender_latentwalk.blender import headless  # noqa: E402


def parse_args(argv):
    parser = headless.ArgumentParser(prog="scripts/bake.py")
    parser.add_argument("--audio", required=True)
    parser.add_argument("--fps", help="24, 29.97, 23.976, 59.94, or a fraction such as 30000/1001")
    parser.add_argument("--fps-base", type=float)
    parser.add_argument("--band", action="append", default=[], metavar="NAME:LOW-HIGH[@SOURCE]")
    parser.add_argument("--offset-ms", type=float)
    parser.add_argument("--normalise", choices=("song", "window"))
    parser.add_argument("--normalise-window-s", type=float)
    parser.add_argument("--onset-source", help="mix, percussive, harmonic or a stem file")
    parser.add_argument("--chroma-source", help="mix, harmonic or a stem file")
    parser.add_argument("--beat-markers", action="store_true")
    parser.add_argument("--overwrite-edited", action="store_true")
    parser.add_argument("--engine-python")
    parser.add_argument("--save", help="write the .blend here")
    parser.add_argument("--preview", action="store_true", help="render the BigGAN preview after baking")
    parser.add_argument("--generator", "--biggan", dest="generator", help="the generator for the preview: a "
                        "BigGAN name or folder, or a StyleGAN .pkl / .pt file (--biggan: its older name)")
    parser.add_argument("--preview-folder", help="where preview frames go")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"))
    return parser.parse_args(argv)


def main():
    args = parse_args(headless.script_arguments())
    headless.ensure_registered()
    from blender_latentwalk.engine.analysis.bands import parse_band
    from blender_latentwalk.engine.errors import LatentWalkError

    if args.engine_python:
        os.environ["LATENTWALK_ENGINE_PYTHON"] = args.engine_python
    scene = bpy.context.scene
    settings = scene.latentwalk
    settings.audio_path = os.path.abspath(args.audio)
    if args.fps:
        from blender_latentwalk.engine.analysis.timing import blender_frame_rate

        try:
            scene.render.fps, scene.render.fps_base = blender_frame_rate(args.fps)
        except LatentWalkError as error:
            headless.fail(error)
    if args.fps_base:
        scene.render.fps_base = args.fps_base
    if args.offset_ms is not None:
        settings.offset_ms = args.offset_ms
    if args.normalise:
        settings.normalise = args.normalise
    if args.normalise_window_s is not None:
        settings.normalise_window_s = args.normalise_window_s
    for curve, parts in (("onset", ("percussive", "harmonic")), ("chroma", ("harmonic",))):
        source = getattr(args, f"{curve}_source")
        if not source:
            continue
        if source == "mix" or source in parts:
            setattr(settings, f"{curve}_source", source)
        elif source in ("percussive", "harmonic"):
            headless.fail(f"the {curve} curve cannot listen to the {source} part; use "
                          f"{', '.join(('mix',) + parts)} or a stem file.")
        else:
            setattr(settings, f"{curve}_source", "stem")
            setattr(settings, f"{curve}_stem_path", os.path.abspath(source))
    settings.add_beat_markers = args.beat_markers
    try:
        if args.band:
            from blender_latentwalk.blender.curves import remove_band

            new_bands = list(map(parse_band, args.band))
            for index in reversed(range(len(settings.bands))):  # their curves go with them
                for line in remove_band(scene, index):
                    print(f"warning: {line}", flush=True)
            for band in new_bands:
                item = settings.bands.add()
                item.title, item.low_hz, item.high_hz = band.name, band.low_hz, band.high_hz
                if band.stem_path is not None:
                    item.source, item.stem_path = "stem", os.path.abspath(band.stem_path)
                else:
                    item.source = band.source
        from blender_latentwalk.blender.operators import bake

        result = bake(scene, overwrite_edited=args.overwrite_edited)
    except LatentWalkError as error:
        headless.fail(error)
    print(f"baked {len(result.written)} curves into scene '{scene.name}' (group 'Latent Walk'): "
          f"{settings.last_bake_summary}")
    for line in result.messages():
        print(line)
    if args.preview:
        from blender_latentwalk.blender import render_job, worker_client

        walk = settings.walk
        if args.generator:
            walk.model = args.generator
        if args.preview_folder:
            walk.preview_folder = os.path.abspath(args.preview_folder)
        if args.device:
            walk.device = args.device
        try:
            job = render_job.render_sync(scene, preview=True, print_progress=True)
        except LatentWalkError as error:
            headless.fail(error)
        finally:
            worker_client.release()
        print(f"preview ({walk.model}): {job.summary}")
    if args.save:
        path = headless.save_blend(args.save)
        print(f"saved {path}: open it, then Graph Editor > Sidebar > Latent Walk > Show Curves")


main()
