"""Command line: ``python -m blender_latentwalk.engine COMMAND ...``.

Commands
--------
analyze AUDIO --fps 30 [--fps-base 1.0] [--band NAME:LOW-HIGH[@SOURCE] ...] [--attack-ms A]
        [--release-ms R] [--gain G] [--threshold T] [--offset-ms O]
        [--normalise song|window] [--normalise-window-s N] [--onset-source mix|percussive|harmonic|STEM]
        [--chroma-source mix|harmonic|STEM] --out FEATURES.npz
    Writes one float array of shape (n_frames,) per band (keyed by band name),
    ``onset``, ``rms``, ``chroma`` (n_frames, 12), ``beats`` (frame indices),
    ``band_names``, ``band_low_hz``, ``band_high_hz`` and ``meta`` (JSON).
analyze --request REQUEST.json --out FEATURES.npz
    The same, with every setting (per-band shaping included) in a JSON file; the
    add-on uses this form when it runs the engine in another Python.
make-tiny-models DIR
    Write untrained tiny stand-in models in the real on-disk formats (offline smoke
    tests): DIR/biggan-tiny-UNTRAINED (config.json + pytorch_model.bin),
    DIR/sd-tiny-UNTRAINED (a diffusers img2img pipeline, save_pretrained), and
    DIR/stylegan-tiny-UNTRAINED: StyleGAN2, StyleGAN3-T and -R .pkl files in NVIDIA's
    pickle layout and a rosinality .pt.
render PLAN.npz --generator NAME_OR_FOLDER_OR_FILE --sd HUB_ID_OR_FOLDER|none --out DIR [--plan-indices A-B[,C-D,E...]]
        [--prompt P] [--negative-prompt N] [--strength S] [--guidance G] [--steps K] [--seed N]
        [--size WxH] [--tiny-vae ID_OR_FOLDER] [--batch-size N] [--threads N] [--device D]
    Frames of a RenderPlan as frame_NNNNNN.png (Blender frame numbers): BigGAN, then
    img2img (``--sd none``: BigGAN only, scaled to --size). The plan holds the per-frame
    prompt schedule, strength, guidance, steps and seed; each flag given replaces that
    value on every frame. Resumable: frames already written under the same settings are
    kept untouched, missing frames and frames written under other settings are redone; any
    chunking, order or resume gives the bytes of one render at the same --batch-size.
    The folder records its render contract (device kind, precision, batch size, CPU threads);
    a render into a folder with current frames takes its --batch-size and --threads when they
    are left out, and is refused when they (or the device kind) differ: docs/performance.md.
    A second render whose frames overlap a running one's in the same --out is refused;
    disjoint chunks (a farm's tasks, ``--plan-indices 0-9,20``) render into one --out at once.
status PLAN.npz --generator ... --sd ... --out DIR [--plan-indices A-B[,C...]] [every render flag] [--json]
    Which frames in DIR are a finished render of the plan with these settings: the
    one check that Encode Video, the panel and scripts/render.py --encode use. Prints
    "N of M frames current ..."; exits 1 when any frame is stale or missing.
hold-claim --folder DIR --frames A-B[,C-D...]
    Claim Blender frames of DIR as a render does, so no render writes them meanwhile (Encode Video holds
    its frames while Blender reads them); prints one JSON line {"held": ...} once held and holds until its
    stdin closes or it is ended, then releases. Frames a live render holds are refused (exit status 2,
    the other render named); a killed holder's claim dies with its process (or its heartbeat).
models [--biggan NAME] [--sd NAME] [--tiny-vae NAME] [--json]
    The models these settings use, then the catalogue (BigGAN deep 128/256/512, sd-turbo,
    SD 1.5, sdxl-turbo, the Tiny VAEs): each on this machine or not, its size and where.
    Never uses the network.
models download NAME [--role biggan|pipeline|vae]
    Fetch a model into its cache (BigGAN's own, the Hugging Face cache) with progress;
    Ctrl+C stops it, and the next download resumes. Refused in offline mode (HF_HUB_OFFLINE=1).
worker [--analysis]
    Serve render, download and analysis requests as JSON lines on stdin/stdout (the add-on's
    worker process; see `worker/process.py`). --analysis: serve analysis requests only, without
    importing the render stack, so a Python with the analysis requirements alone will do (the
    add-on's Bake Curves).
setup-env FOLDER [--variant auto|cpu|cu126|cu128|cu130|rocm6.4|mps] [--torch-index-url URL|default]
    Create the render worker's Python environment in FOLDER: PyTorch for this machine's GPU
    and the pinned render stack, progress as JSON lines (see `environment.py`; the add-on's
    "Set Up Render Environment" button runs it). It needs no numpy: __main__ starts it first.

Errors a user can fix print one line on stderr and exit with status 2.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

from .render import frame_ranges
from .analysis import shaping
from .analysis.bands import DEFAULT_BANDS, MIX, SEPARATED_SOURCES, parse_band
from .errors import LatentWalkError


def _build_parser():
    parser = argparse.ArgumentParser(prog="python -m blender_latentwalk.engine")
    commands = parser.add_subparsers(dest="command", required=True)
    analyze = commands.add_parser("analyze", help="analyse a song into per-frame features (.npz)")
    analyze.add_argument("audio", nargs="?", help="wav, flac, ogg or mp3 file")
    analyze.add_argument("--request", help="JSON file with every setting (used by the add-on)")
    analyze.add_argument("--fps", type=float, help="scene frame rate numerator, e.g. 30")
    analyze.add_argument("--fps-base", type=float, default=1.0, help="1.001 for 29.97 / 23.976")
    analyze.add_argument("--band", action="append", default=[], metavar="NAME:LOW-HIGH[@SOURCE]",
                         help="a frequency band in Hz; repeat for more (default: 7 musician bands). SOURCE: "
                              "mix (default), percussive or harmonic (that part of the mix), or a stem file")
    analyze.add_argument("--attack-ms", type=float, default=shaping.BAND_SHAPE.attack_ms)
    analyze.add_argument("--release-ms", type=float, default=shaping.BAND_SHAPE.release_ms)
    analyze.add_argument("--gain", type=float, default=1.0)
    analyze.add_argument("--threshold", type=float, default=0.0)
    analyze.add_argument("--offset-ms", type=float, default=0.0,
                         help="latency offset; positive values make curves react later")
    analyze.add_argument("--normalise", default=shaping.DEFAULT_NORMALISE,
                         help="song: curves follow the song's dynamics (default); window: each passage "
                              "against the loudest moments of the --normalise-window-s seconds around it")
    analyze.add_argument("--normalise-window-s", type=float, default=shaping.DEFAULT_NORMALISE_WINDOW_S)
    analyze.add_argument("--onset-source", default=MIX, help="mix (default), percussive or harmonic (that part "
                         "of the mix), or a stem file (e.g. drums.wav)")
    analyze.add_argument("--chroma-source", default=MIX, help="mix (default), harmonic, or a stem file")
    analyze.add_argument("--out", required=True, help="features file to write (.npz)")

    tiny = commands.add_parser("make-tiny-models", help="write untrained tiny stand-in models")
    tiny.add_argument("folder")

    commands.add_parser("render", parents=[_render_flags()],
                        help="render a plan's final frames (BigGAN + img2img), resumable")
    status = commands.add_parser("status", parents=[_render_flags()], add_help=True,
                                 help="which frames in --out are a finished render of the plan (exit 1: some are not)")
    status.add_argument("--json", action="store_true", help="print the status as JSON (used by the add-on)")

    hold = commands.add_parser("hold-claim", help="hold frames of a folder against renders until stdin closes "
                               "(used by Encode Video)")
    hold.add_argument("--folder", required=True, help="the frames folder")
    hold.add_argument("--frames", required=True, help="Blender frames A-B (comma-separated ranges)")

    models = commands.add_parser("models", help="list models (on this machine? size, where) or download one")
    models.add_argument("action", nargs="?", choices=("list", "download"), default="list")
    models.add_argument("name", nargs="?", help="download: a catalogue name or hub id")
    models.add_argument("--role", choices=("biggan", "pipeline", "vae"),
                        help="download / list: what the model is for (default: from the catalogue, else pipeline)")
    models.add_argument("--biggan", default="", help="list: the BigGAN the render uses")
    models.add_argument("--sd", default="", help="list: the img2img model the render uses")
    models.add_argument("--tiny-vae", default="", help="list: the Tiny VAE the render uses")
    models.add_argument("--json", action="store_true", help="list: one JSON list (used by the add-on)")

    worker = commands.add_parser("worker", help="serve render, download and analysis requests on stdin/stdout "
                                 "(used by the add-on)")
    worker.add_argument("--analysis", action="store_true",
                        help="analysis requests only: the render stack (torch) is not imported")
    return parser


def _render_flags():
    """The flags `render` and `status` share: the same flags name the same frames."""
    full = argparse.ArgumentParser(add_help=False)
    full.add_argument("plan")
    full.add_argument("--generator", "--biggan", dest="generator", required=True,
                      help="the generator: a BigGAN name or folder, or a StyleGAN .pkl / .pt file (--biggan: the "
                      "same flag under its older name)")
    full.add_argument("--sd", default="stabilityai/sd-turbo", help="hub id, folder, or none")
    full.add_argument("--out", required=True)
    full.add_argument("--plan-indices", help="0-based plan indices (not Blender frames): A-B (inclusive), or a "
                      "farm chunk such as 0-2,4 (comma-separated indices and ranges)")
    # The engine CLI's --frames (plan indices) became --plan-indices: an old command is told so, not
    # read as Blender frames (the headless script's --frames) or refused as an unknown flag.
    full.add_argument("--frames", dest="old_frames_flag", help=argparse.SUPPRESS)
    full.add_argument("--prompt", help="one prompt for every frame (default: the plan's schedule)")
    full.add_argument("--negative-prompt")
    full.add_argument("--strength", type=float)
    full.add_argument("--guidance", type=float)
    full.add_argument("--steps", type=int)
    full.add_argument("--seed", type=int, help="img2img noise seed")
    full.add_argument("--size", default="512x512", help="WIDTHxHEIGHT of the output frames")
    full.add_argument("--tiny-vae", default="")
    full.add_argument("--batch-size", type=int, help="default: the output folder's, else 4 on the CPU, 16 on a GPU")
    full.add_argument("--threads", type=int, help="render: PyTorch's CPU threads (default: the output folder's, else "
                      "PyTorch's own); with the batch size, they decide a CPU render's last bits")
    full.add_argument("--device", default="auto")
    return full


def _make_tiny_models(folder):
    from .generators import biggan

    from .diffusion import img2img

    path = biggan.make_tiny_model(os.path.join(folder, "biggan-tiny-UNTRAINED"))
    print(f"wrote {path} (UNTRAINED stand-in: its images are noise)")
    path = img2img.make_tiny_pipeline(os.path.join(folder, "sd-tiny-UNTRAINED"))
    print(f"wrote {path} (UNTRAINED stand-in: its images are noise)")
    from .generators import stylegan

    for path in stylegan.make_tiny_models(os.path.join(folder, "stylegan-tiny-UNTRAINED")).values():
        print(f"wrote {path} (UNTRAINED stand-in: its images are noise)")


def _load_plan_and_range(args):
    from .walk.plan import RenderPlan

    if args.old_frames_flag is not None:
        raise LatentWalkError(f"--frames {args.old_frames_flag}: the engine command line takes 0-based plan indices as "
                              f"--plan-indices {args.old_frames_flag} (Blender frame numbers are the headless "
                              "script's --frames).")
    if args.batch_size is not None and args.batch_size < 1:
        raise LatentWalkError(f"--batch-size {args.batch_size}: give 1 or more (or leave it out: 4 on the CPU, "
                              "16 on a GPU).")
    if args.threads is not None and args.threads < 1:
        raise LatentWalkError(f"--threads {args.threads}: give 1 or more (or leave it out: the folder's, else "
                              "PyTorch's own).")
    ranges = (frame_ranges.parse(args.plan_indices, "--plan-indices", unit="index")
              if args.plan_indices else None)  # before the plan is read
    plan = RenderPlan.load(args.plan)
    indices = None
    if ranges is not None:
        frame_ranges.check_inside(ranges, 0, plan.n_frames - 1, args.plan_indices, "--plan-indices", unit="index")
        indices = frame_ranges.numbers(ranges)
    return plan, indices


def _parse_size(text):
    try:
        width, height = (int(v) for v in text.lower().split("x"))
        if width < 8 or height < 8:
            raise ValueError
        return width, height
    except ValueError:
        raise LatentWalkError(f"--size '{text}' is not WIDTHxHEIGHT (e.g. 512x288).") from None


def _plan_and_settings(args):
    """(plan with the flags' replacements, plan indices or None, Img2ImgSettings) of `render` / `status`."""
    from .render import run

    plan, indices = _load_plan_and_range(args)
    width, height = _parse_size(args.size)
    if args.prompt is not None:
        plan.settings["prompts"] = [args.prompt]
        plan.prompt_weights = np.ones((plan.n_frames, 1), np.float32)
    if args.negative_prompt is not None:
        plan.settings["negative_prompt"] = args.negative_prompt
    for name, value in (("strength", args.strength), ("guidance", args.guidance), ("steps", args.steps),
                        ("noise_seed", args.seed)):
        if value is not None:
            setattr(plan, name, np.full(plan.n_frames, value, np.float32))
    settings = run.Img2ImgSettings(model=args.sd, width=width, height=height, tiny_vae=args.tiny_vae)
    return plan, indices, settings


def _status(args):
    """Print the frame status; exit status 1 when a frame is stale or missing (0 with --json)."""
    from .render import trust

    plan, indices, settings = _plan_and_settings(args)
    from .generators.selection import for_model

    status = trust.frame_status(plan, for_model(args.generator), settings, args.out, indices)
    print(status.to_json() if args.json else status.summary())
    if args.json:
        return 0
    if not status.complete:
        print(status.refusal(args.out), file=sys.stderr)
    return 0 if status.complete else 1


def _hold_claim(args):
    """Claim the frames, say so in one JSON line, hold until stdin closes (or SIGTERM), release."""
    import signal

    from .render import claims

    ranges = frame_ranges.parse(args.frames, "--frames")
    if not os.path.isdir(args.folder):
        raise LatentWalkError(f"the frames folder '{args.folder}' does not exist.")
    held = claims.claim(args.folder, frame_ranges.numbers(ranges), claims.ENCODING)  # FolderBusy names the render holding them
    try:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # ended: release on the way out
        print(json.dumps({"held": frame_ranges.format_ranges(ranges), "folder": args.folder, "pid": os.getpid()}),
              flush=True)
        while sys.stdin.buffer.read(65536):  # until the add-on closes it (or its process ends)
            pass
    finally:
        held.release()
    return 0


def _render_full(args):
    from .render import run

    plan, indices, settings = _plan_and_settings(args)
    start = time.perf_counter()
    result = run.render(plan, args.generator, settings, args.out, indices, args.batch_size, args.device,
                           progress=lambda done, total: print(f"frames {done}/{total}", flush=True),
                           warn=lambda message: print(f"warning: {message}", file=sys.stderr, flush=True),
                           threads=args.threads)
    elapsed = time.perf_counter() - start
    print(f"rendered {len(result.rendered)} frames, reused {len(result.reused)} in {args.out} ({elapsed:.1f} s)")
    if result.contract is not None:
        print(f"render contract: {result.contract.describe()}")
    if result.replaced:
        print(f"replaced {len(result.replaced)} frames that were not current (written under other settings, "
              f"by another plan, or changed since), first {result.replaced[0]}")
    if result.reduced_batch:
        sizes = sorted(set(result.reduced_batch.values()))
        print(f"note: {len(result.reduced_batch)} frames were made at a smaller batch ({', '.join(map(str, sizes))}) "
              f"after running out of memory, first {min(result.reduced_batch)}", file=sys.stderr)


def _models(args):
    from .setup import models

    if args.action == "download":
        models.prefer_cancellable_transport()  # Ctrl+C stops it at once
        if not args.name:
            raise LatentWalkError("models download needs a NAME (e.g. biggan-deep-256 or stabilityai/sd-turbo).")
        shown = [-1]

        def progress(done, total):
            percent = int(100 * done / total) if total else 0
            if percent != shown[0]:
                shown[0] = percent
                print(f"{args.name}: {models.format_size(done)} of {models.format_size(total)} ({percent}%)",
                      flush=True)

        import signal
        import threading

        # Ctrl+C asks the download to stop at its next chunk (in every download thread), as Cancel does.
        stop = threading.Event()
        previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
        try:
            state = models.download(args.name, args.role, progress=progress, should_stop=stop.is_set)
        except models.DownloadCancelled:
            raise LatentWalkError(f"{args.name}: download stopped; run it again to continue.") from None
        finally:
            signal.signal(signal.SIGINT, previous)
        print(state.summary())
        return 0
    states = models.catalogue_states([(args.biggan, "biggan"), (args.sd, "pipeline"), (args.tiny_vae, "vae")])
    if args.role:
        states = [s for s in states if s.role == args.role]
    if args.json:
        print(json.dumps([s.to_dict() for s in states]))
    else:
        for s in states:
            print(f"{s.name}: {s.summary()}")
    return 0


def _source_path(source):
    """A band's source as the request holds it: the mix, a part of it, or a stem's absolute path."""
    return source if source in (MIX,) + SEPARATED_SOURCES else os.path.abspath(source)


def request_from_args(args):
    """The analysis request (a JSON-able dict) the flags describe."""
    if args.audio is None or args.fps is None:
        raise LatentWalkError("analyze needs AUDIO and --fps (or --request FILE).")
    bands = [parse_band(spec) for spec in args.band] or list(DEFAULT_BANDS)
    shape = {"gain": args.gain, "threshold": args.threshold,
             "attack_ms": args.attack_ms, "release_ms": args.release_ms}
    return {
        "audio": args.audio,
        "fps": args.fps,
        "fps_base": args.fps_base,
        "offset_ms": args.offset_ms,
        "normalise": args.normalise,
        "onset_source": _source_path(args.onset_source),
        "chroma_source": _source_path(args.chroma_source),
        "normalise_window_s": args.normalise_window_s,
        "bands": [{"name": b.name, "low_hz": b.low_hz, "high_hz": b.high_hz, "source": _source_path(b.source),
                   **shape} for b in bands],
    }


def run_request(request):
    """Analyse according to a request dict (`analysis/request.py`); returns `features.Features`."""
    from .analysis import request as analysis_request

    return analysis_request.run(request)


def main(argv=None):
    args = _build_parser().parse_args(argv)
    try:
        if args.command == "analyze":
            if args.request:
                try:
                    with open(args.request, encoding="utf-8") as stream:
                        request = json.load(stream)
                except (OSError, ValueError) as error:
                    raise LatentWalkError(f"cannot read request file '{args.request}': {error}") from None
            else:
                request = request_from_args(args)
            features = run_request(request)
            try:
                features.save_npz(args.out)
            except OSError as error:
                raise LatentWalkError(
                    f"cannot write features to '{args.out}' ({error.strerror}); choose a writable folder."
                ) from None
            print(features.summary() + f" -> {args.out}")
        elif args.command == "make-tiny-models":
            _make_tiny_models(args.folder)
        elif args.command == "render":
            _render_full(args)
        elif args.command == "status":
            return _status(args)
        elif args.command == "hold-claim":
            return _hold_claim(args)
        elif args.command == "models":
            return _models(args)
        elif args.command == "worker":
            from .worker import process

            return process.serve(analysis_only=args.analysis)
    except LatentWalkError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
