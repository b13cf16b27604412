"""The analysis request: every setting of one analysis as a JSON-able dict, and running it.

The add-on builds one from the scene (blender/operators.py: ``build_request``) and sends it to
the worker in an ``AnalyzeRequest`` (or runs it here, headless); the engine CLI reads one from
``analyze --request FILE`` or makes one from its flags. Keys: audio, fps, fps_base, offset_ms,
normalise, normalise_window_s, onset_source, chroma_source, and bands: a list of {name, low_hz,
high_hz, source, gain, threshold, attack_ms, release_ms}. Sources are "mix", "percussive",
"harmonic" or a stem file's absolute path.
"""

from . import shaping
from .bands import MIX, Band


def run(request, progress=None):
    """Analyse according to ``request``; returns `features.Features`.

    progress : None, or called with a `pipeline.Step` as the analysis goes on (it may raise to stop it).
    """
    from . import pipeline  # scipy, soundfile, soxr (and librosa for the filter banks): only when analysing

    bands = [Band(b["name"], float(b["low_hz"]), float(b["high_hz"]), str(b.get("source") or MIX))
             for b in request["bands"]]
    shapes = [
        shaping.ShapeSettings(
            gain=float(b.get("gain", 1.0)),
            threshold=float(b.get("threshold", 0.0)),
            attack_ms=float(b.get("attack_ms", shaping.BAND_SHAPE.attack_ms)),
            release_ms=float(b.get("release_ms", shaping.BAND_SHAPE.release_ms)),
        )
        for b in request["bands"]
    ]
    return pipeline.analyze(
        request["audio"],
        fps=float(request["fps"]),
        fps_base=float(request.get("fps_base", 1.0)),
        bands=bands,
        band_shapes=shapes,
        offset_ms=float(request.get("offset_ms", 0.0)),
        normalise=str(request.get("normalise", shaping.DEFAULT_NORMALISE)),
        normalise_window_s=float(request.get("normalise_window_s", shaping.DEFAULT_NORMALISE_WINDOW_S)),
        onset_source=str(request.get("onset_source") or MIX),
        chroma_source=str(request.get("chroma_source") or MIX),
        progress=progress,
    )
