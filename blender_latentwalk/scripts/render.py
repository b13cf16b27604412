"""Render a Latent Walk music video, headless.

    blender -b FILE.blend --python-exit-code 1 -P scripts/render.py -- --audio SONG --output DIR \
        [--frames A-B[,C-D...]] [--encode OUT.mp4] [--biggan NAME_OR_FOLDER] [--sd NAME_OR_FOLDER|none] \
        [--save [OUT.blend]] [--no-render]
    python scripts/render.py -- [--blend FILE.blend] --audio SONG --output DIR ...   (where `import bpy` works)

This file ships inside the add-on (``<add-on folder>/scripts/render.py``), so a farm worker
with the add-on installed runs it; the repository's scripts/render.py runs this one.
A chunk (``--frames 1-3,5``, as Flamenco's chunker writes it) renders and keeps its frames
only. ``--no-render --encode OUT.mp4`` renders nothing: it checks that every frame is
current, lays the strip and encodes (a farm's last task); ``--no-render`` alone writes the
plan (``plan.npz`` in the output folder) and prints the engine command that renders it.

Bakes the song when the file has no bake of it at this fps and song start (printing what
changed and the edited curves it kept and retimed), renders the frames (BigGAN, then
img2img) in the worker process with progress lines on stdout, puts them in the
sequencer above the song, optionally saves the .blend (--save alone: in place),
and encodes the video with Blender's FFmpeg. More options: --prompt, --prompt-change
FRAME:TEXT (adds a "prompt: TEXT" timeline marker), --negative-prompt,
--strength, --guidance, --steps, --seed (each replaces the scene's value, animation
included), --tiny-vae, --size WxH, --fps RATE (24, 29.97, 30000/1001), --batch-size N, --device auto|cpu|cuda|mps,
--devices cuda:0,cuda:1 (one worker per device, one progress line),
--engine-python PATH (or LATENTWALK_ENGINE_PYTHON: the worker's Python; default
Blender's own). Exits 1 with a one-line message on any failure; frames already
rendered, the curves and the saved file are kept.
"""

import importlib
import os
import sys
import time

import bpy

ADDON_FOLDER = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _addon_package():
    """The add-on's package name: the one Blender enabled it as (an extension is
    ``bl_ext.<repository>.blender_latentwalk``), so its preferences and classes are the ones
    used; else its folder imported from beside it (a source checkout, an add-on not enabled)."""
    init = os.path.realpath(os.path.join(ADDON_FOLDER, "__init__.py"))
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if path and os.path.realpath(path) == init:
            return name
    parent = os.path.dirname(ADDON_FOLDER)
    if parent not in sys.path:
        sys.path.insert(0, parent)
    return os.path.basename(ADDON_FOLDER)


PACKAGE = _addon_package()


def addon_module(name):
    """The add-on's module ``name`` ("blender.render_job", "engine.errors") under `PACKAGE`."""
    return importlib.import_module(f"{PACKAGE}.{name}")


headless = addon_module("blender.headless")

MARKER_NAME_MAX = 63  # Blender cuts timeline marker names after 63 characters


def _frame_rate(text):
    """--fps TEXT -> (fps, fps_base) as Blender sets them."""
    import argparse

    LatentWalkError = addon_module("engine.errors").LatentWalkError
    blender_frame_rate = addon_module("engine.analysis.timing").blender_frame_rate

    try:
        return blender_frame_rate(text)
    except LatentWalkError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def parse_args(argv):
    parser = headless.ArgumentParser(prog="scripts/render.py")
    parser.add_argument("--blend", help="open this .blend first (for `python scripts/render.py`)")
    parser.add_argument("--audio", help="the song (default: the one the file was baked with)")
    parser.add_argument("--output", help="folder for the frames (default: the scene's Output folder)")
    parser.add_argument("--frames", help="Blender frames to render: A-B, or a farm chunk such as 1-3,5 (default: the "
                        "whole song). A chunk only renders and keeps its frames: no strip, unless --save")
    parser.add_argument("--encode", metavar="OUT.mp4", help="encode the video (H.264 + AAC) to this file")
    parser.add_argument("--generator", "--biggan", dest="generator", help="the generator: a BigGAN name "
                        "(biggan-deep-256...) or folder, or a StyleGAN2 / StyleGAN3 model file (.pkl from NVIDIA's "
                        "training code, rosinality .pt); --biggan is the same flag under its older name")
    parser.add_argument("--sd", help="img2img model: hub id in the local cache, folder, or none")
    parser.add_argument("--save", nargs="?", const="", metavar="OUT.blend",
                        help="save the .blend (in place when no path is given)")
    parser.add_argument("--prompt", help="the prompt before the first prompt marker")
    parser.add_argument("--prompt-change", action="append", default=[], metavar="FRAME:TEXT",
                        help="add a timeline marker 'prompt: TEXT' at FRAME (repeat for more)")
    parser.add_argument("--negative-prompt")
    parser.add_argument("--strength", type=float)
    parser.add_argument("--guidance", type=float)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--seed", type=int, help="img2img noise seed")
    parser.add_argument("--tiny-vae")
    parser.add_argument("--size", help="output WIDTHxHEIGHT (sets the scene's resolution)")
    parser.add_argument("--fps", type=_frame_rate, help="scene frame rate: 24, 29.97, 23.976, 59.94 or a fraction "
                        "such as 30000/1001 (the curves are re-baked to it)")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"))
    parser.add_argument("--devices", metavar="D1,D2,...", help="render on several devices at once, one worker "
                        "each (cuda:0,cuda:1; cpu,cpu); the frames are the same as on one")
    parser.add_argument("--engine-python", help="Python for the analysis and the render worker")
    parser.add_argument("--no-render", action="store_true",
                        help="render nothing: with --encode, check every frame is current, lay the strip and encode "
                        "(a farm's last task); alone, write the plan and print the engine command that renders it")
    return parser.parse_args(argv)


def apply_settings(args, scene):
    """Copy the options into the scene; a value given replaces its animation too."""
    settings = scene.latentwalk
    walk, diffusion = settings.walk, settings.diffusion
    if args.generator:
        walk.model = args.generator
    if args.device:
        walk.device = args.device
    if args.devices is not None:
        diffusion.devices = args.devices
    for option, prop in (("sd", "model"), ("prompt", "prompt"), ("negative_prompt", "negative_prompt"),
                         ("tiny_vae", "tiny_vae"), ("strength", "strength"), ("guidance", "guidance"),
                         ("steps", "steps"), ("seed", "seed"), ("batch_size", "batch_size")):
        value = getattr(args, option)
        if value is not None:
            _clear_animation(scene, f"latentwalk.diffusion.{prop}")
            setattr(diffusion, prop, value)
    prompt_changes(args)  # checked now, before any work; the markers are added after the bake (add_prompt_markers)
    if args.output:
        diffusion.output_folder = os.path.abspath(args.output)
    if args.size:
        scene.render.resolution_x, scene.render.resolution_y = headless.parse_size(args.size)
        scene.render.resolution_percentage = 100
    if args.fps:
        scene.render.fps, scene.render.fps_base = args.fps


def prompt_changes(args):
    """[(frame, text)] of the --prompt-change options; a malformed one ends the script with its reason."""
    changes = []
    for change in args.prompt_change:
        frame, colon, text = change.partition(":")
        if not colon or not frame.strip().isdigit() or not text.strip():
            headless.fail(f"--prompt-change '{change}' is not FRAME:TEXT (e.g. 240:a city at night).")
        if len(f"prompt: {text.strip()}") > MARKER_NAME_MAX:
            headless.fail(f"--prompt-change '{change}': a marker name holds {MARKER_NAME_MAX} characters, so its "
                          f"prompt at most {MARKER_NAME_MAX - len('prompt: ')}; shorten it.")
        changes.append((int(frame), text.strip()))
    return changes


def add_prompt_markers(args, scene):
    """The --prompt-change markers, at the frames given: added after a re-bake to a new --fps, which moves the
    file's own markers to the new rate (these are already in it)."""
    for frame, text in prompt_changes(args):
        scene.timeline_markers.new(f"prompt: {text}", frame=frame)


def _clear_animation(scene, data_path):
    compat = addon_module("blender.compat")

    fcurve = compat.find_fcurve(scene, data_path, 0)
    if fcurve is not None:
        compat.remove_fcurve(scene, fcurve)
    scene.driver_remove(data_path)  # False when there is none


def print_engine_recipe(scene, render_job, frames):
    """--no-render alone: write the plan and print the engine command that renders it (any farm)."""
    import shlex

    engine_client = addon_module("blender.engine_client")
    notes, folder, request, plan, plan_path = render_job.prepare_plan(scene, ranges=frames)
    for line in notes:
        print(line, flush=True)
    python = engine_client.engine_python(addon_module("blender.preferences").get().engine_python) or sys.executable
    command = engine_client.engine_command(python, *render_job.engine_render_arguments(scene, request, plan_path,
                                                                                        folder))
    print(f"wrote {plan_path} ({plan.n_frames} frames; plan index 0 is frame {plan.frame_start})", flush=True)
    print("render it in chunks of plan indices (PYTHONPATH="
          f"{os.path.dirname(ADDON_FOLDER)}): {shlex.join(command)} --plan-indices A-B", flush=True)


def _check_before_any_work(args, settings, audio):
    """Exit 1 with one line for what would fail later: no song, no Output folder, --save or --encode paths."""
    output = addon_module("blender.output")
    if audio is None and not settings.audio_path:
        headless.fail("no song: give --audio SONG (wav, flac, ogg or mp3).")
    if not args.output and not bpy.data.filepath and (settings.diffusion.output_folder.startswith("//")
                                                      or output.BLEND_NAME_TOKEN in settings.diffusion.output_folder):
        headless.fail("give --output DIR: the scene's Output folder depends on a .blend file, and this one is not "
                      "saved.")
    if args.save == "" and not bpy.data.filepath:
        headless.fail("--save needs a path (--save OUT.blend): this scene was not opened from a .blend file.")
    if args.encode and not args.encode.lower().endswith(".mp4"):
        headless.fail(f"--encode '{args.encode}': the video is an MP4 (H.264 + AAC); give a path ending in .mp4.")
    if args.encode:  # found now, not after an hour of rendering
        ensure_writable_folder = addon_module("engine.render.png_writer").ensure_writable_folder
        LatentWalkError = addon_module("engine.errors").LatentWalkError

        try:
            ensure_writable_folder(os.path.dirname(os.path.abspath(args.encode)))
        except LatentWalkError as error:
            headless.fail(f"--encode '{args.encode}': {error}")


def _encode(scene, path, first, last):
    """Encode frames first..last with the song to ``path``, or exit 1 with the reason."""
    encode = addon_module("blender.encode")
    LatentWalkError = addon_module("engine.errors").LatentWalkError
    try:  # the files decide: every frame current for the scene as it is, and the song checked again
        for line in encode.encode(scene, path, first, last):
            print(line, flush=True)
    except LatentWalkError as error:
        headless.fail(error)
    except (OSError, RuntimeError) as error:
        headless.fail(f"cannot encode '{path}': {str(error).strip().splitlines()[-1]}")
    if not os.path.isfile(path):
        headless.fail(f"Blender's FFmpeg did not write '{path}': does this Blender build have FFmpeg?")
    print(f"encoded {path} (H.264 + AAC, frames {first}-{last})", flush=True)


def main():
    args = parse_args(headless.script_arguments())
    if args.blend:
        headless.open_blend(args.blend)
    headless.ensure_registered()
    render_job, sequencer, worker_client = (
        addon_module(f"blender.{name}") for name in ("render_job", "sequencer", "worker_client"))
    bake_if_stale = addon_module("blender.operators").bake_if_stale
    LatentWalkError = addon_module("engine.errors").LatentWalkError

    if args.engine_python:
        os.environ["LATENTWALK_ENGINE_PYTHON"] = os.path.abspath(args.engine_python)
    scene = bpy.context.scene
    settings = scene.latentwalk
    audio = os.path.abspath(args.audio) if args.audio else None
    _check_before_any_work(args, settings, audio)
    frames = headless.parse_frames(args.frames) if args.frames else None
    apply_settings(args, scene)
    start_s = time.perf_counter()
    try:
        song = os.path.abspath(bpy.path.abspath(settings.audio_path)) if settings.audio_path else ""
        if audio is not None and not os.path.isfile(song):  # a moved .blend whose Song was relative: --audio it is
            settings.audio_path = audio
        for line in sequencer.repair_song_strip(scene):  # a moved .blend's strip path, before judging the bake
            print(line, flush=True)
        for line in bake_if_stale(scene, audio):  # no bake, or not of this song, fps or song start
            print(line, flush=True)
        add_prompt_markers(args, scene)
        if args.encode:  # the song is checked (or its strip repaired) before the render, not after
            sequencer.check_song_strip(scene)
        if args.no_render:
            first, last = addon_module("blender.sampling").render_range(scene)
            if frames:
                first, last = frames[0][0], frames[-1][1]
            if not args.encode:
                print_engine_recipe(scene, render_job, frames)
        else:
            # A chunk (--frames) keeps its frames only; the strip is laid by --encode or for --save.
            job = render_job.render_sync(scene, frames=frames, print_progress=True,
                                     place=frames is None or args.save is not None)
            print(job.summary, flush=True)
            if job.rendered_paths:  # the line Flamenco's worker shows as the task's latest image
                print(f"Saved: '{job.rendered_paths[-1]}'", flush=True)
            if job.result.stopped:
                headless.fail("the render was stopped before it finished.")
            first, last = job.first, job.last
    except LatentWalkError as error:
        headless.fail(error)
    finally:
        worker_client.release()
    if args.save is not None:
        path = headless.save_blend(args.save or bpy.data.filepath)
        print(f"saved {path}", flush=True)
    if args.encode:
        _encode(scene, os.path.abspath(args.encode), first, last)
    print(f"done in {time.perf_counter() - start_s:.1f} s", flush=True)


main()
