"""Command line: ``python -m blender_latentwalk.engine COMMAND ...``.

Commands
--------
analyze AUDIO --fps 30 [--fps-base 1.0] [--band NAME:LOW-HIGH ...] [--attack-ms A]
        [--release-ms R] [--gain G] [--threshold T] [--offset-ms O] --out FEATURES.npz
    Writes one float array of shape (n_frames,) per band (keyed by band name),
    ``onset``, ``rms``, ``chroma`` (n_frames, 12), ``beats`` (frame indices),
    ``band_names``, ``band_low_hz``, ``band_high_hz`` and ``meta`` (JSON).
analyze --request REQUEST.json --out FEATURES.npz
    The same, with every setting (per-band shaping included) in a JSON file; the
    add-on uses this form when it runs the engine in another Python.

Errors a user can fix print one line on stderr and exit with status 2.
"""

import argparse
import json
import sys

from . import shaping
from .bands import DEFAULT_BANDS, Band, parse_band
from .errors import LatentWalkError


def _build_parser():
    parser = argparse.ArgumentParser(prog="python -m blender_latentwalk.engine")
    commands = parser.add_subparsers(dest="command", required=True)
    analyze = commands.add_parser("analyze", help="analyse a song into per-frame features (.npz)")
    analyze.add_argument("audio", nargs="?", help="wav, flac, ogg or mp3 file")
    analyze.add_argument("--request", help="JSON file with every setting (used by the add-on)")
    analyze.add_argument("--fps", type=float, help="scene frame rate numerator, e.g. 30")
    analyze.add_argument("--fps-base", type=float, default=1.0, help="1.001 for 29.97 / 23.976")
    analyze.add_argument("--band", action="append", default=[], metavar="NAME:LOW-HIGH",
                         help="a frequency band in Hz; repeat for more (default: 7 musician bands)")
    analyze.add_argument("--attack-ms", type=float, default=shaping.BAND_SHAPE.attack_ms)
    analyze.add_argument("--release-ms", type=float, default=shaping.BAND_SHAPE.release_ms)
    analyze.add_argument("--gain", type=float, default=1.0)
    analyze.add_argument("--threshold", type=float, default=0.0)
    analyze.add_argument("--offset-ms", type=float, default=0.0,
                         help="latency offset; positive values make curves react later")
    analyze.add_argument("--out", required=True, help="features file to write (.npz)")
    return parser


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
        "bands": [{"name": b.name, "low_hz": b.low_hz, "high_hz": b.high_hz, **shape} for b in bands],
    }


def run_request(request):
    """Analyse according to a request dict; returns `analysis.Features`."""
    from . import analysis  # librosa is imported only when analysing

    bands = [Band(b["name"], float(b["low_hz"]), float(b["high_hz"])) for b in request["bands"]]
    shapes = [
        shaping.ShapeSettings(
            gain=float(b.get("gain", 1.0)),
            threshold=float(b.get("threshold", 0.0)),
            attack_ms=float(b.get("attack_ms", shaping.BAND_SHAPE.attack_ms)),
            release_ms=float(b.get("release_ms", shaping.BAND_SHAPE.release_ms)),
        )
        for b in request["bands"]
    ]
    return analysis.analyze(
        request["audio"],
        fps=float(request["fps"]),
        fps_base=float(request.get("fps_base", 1.0)),
        bands=bands,
        band_shapes=shapes,
        offset_ms=float(request.get("offset_ms", 0.0)),
    )


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
    except LatentWalkError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
