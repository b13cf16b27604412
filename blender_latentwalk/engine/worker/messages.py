"""The render worker's protocol: one frozen dataclass per message, one JSON object per line.

Requests go from the add-on (or a script) to the worker on its stdin; events come back on its
stdout. Every line carries its ``type`` and the ``version`` of this protocol::

    {"type": "progress", "version": 6, "id": 1, "done": 8, "total": 72, "unit": "frames"}

`encode` writes a message as such a line, `decode_request` and `decode_event` read one back. A
line of another version, or of a type this version does not know, is refused with a
`LatentWalkError` that names both versions: the add-on and the worker's Python then run different
versions of Latent Walk.

Both sides use this module, so it loads in Blender's own Python: the standard library and
engine/errors only.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import ClassVar

from ..errors import LatentWalkError

# 6: RenderRequest.threads (PyTorch's CPU threads; None: the output folder's, else the worker's own).
# 5: RenderRequest.generator (a BigGAN name or folder, or a StyleGAN file) instead of .biggan.
# 4: analysis requests ("analyze", answered by "analyze_progress" and "analyze_done"; Bake Curves in the UI).
# 3: typed messages, every line with "type" and "version", both ways ("frames" became "plan_index_ranges").
# 2: requests with "command" and "version", "frames" a list of ranges; events with "event", no version.
# 1: "frames" one [first, last].
PROTOCOL_VERSION = 6

RESTART_HINT = ("the add-on and its Engine Python run different versions of Latent Walk: press Release Models "
                "(the worker then starts again from this add-on's files), or reinstall the add-on and restart "
                "Blender")


# Requests: add-on -> worker.

@dataclass(frozen=True)
class RenderRequest:
    """Render frames of a plan into a folder (PNG + manifest), answered by `Progress` events, then
    `RenderDone` or `RequestFailed`.

    generator : the generator's model: a BigGAN name or folder, or a StyleGAN .pkl / .pt file.
    img2img : {"model", "width", "height", "tiny_vae"} (`engine.render.run.Img2ImgSettings`).
    plan_index_ranges : [[first, last], ...] inclusive 0-based plan indices (a farm chunk may leave
        gaps), or None for every frame of the plan.
    batch_size : frames per batch, None for the output folder's (its render contract), else the device's default.
    threads : PyTorch's CPU threads for the render, None for the output folder's, else the worker's own.
    """

    TYPE: ClassVar[str] = "render"
    id: int
    plan_path: str
    generator: str
    img2img: dict
    out_folder: str
    plan_index_ranges: list | None = None
    batch_size: int | None = None
    device: str = "auto"
    threads: int | None = None


@dataclass(frozen=True)
class DownloadRequest:
    """Fetch a missing model (role: "biggan", "pipeline" or "vae"; None: guessed from the name), answered
    by `Progress` events in bytes, then `DownloadDone` or `RequestFailed`."""

    TYPE: ClassVar[str] = "download"
    id: int
    model: str
    role: str | None = None


@dataclass(frozen=True)
class AnalyzeRequest:
    """Analyse a song into a features file, answered by `AnalyzeProgress` events, then `AnalyzeDone` or
    `RequestFailed`.

    request : every setting of the analysis, the JSON-able dict of `engine.analysis.request` (audio, fps,
        bands...).
    features_path : the features file (.npz) to write, atomically; nothing is written when the request is
        cancelled or fails.
    """

    TYPE: ClassVar[str] = "analyze"
    id: int
    request: dict
    features_path: str


@dataclass(frozen=True)
class CancelRequest:
    """Stop request ``id``: a render before its next batch, a download at its next chunk, an analysis at
    its next step or block of the song."""

    TYPE: ClassVar[str] = "cancel"
    id: int


@dataclass(frozen=True)
class QuitRequest:
    """End the worker after the current batch. Closing its stdin instead ends it at once."""

    TYPE: ClassVar[str] = "quit"


# Events: worker -> add-on.

@dataclass(frozen=True)
class Ready:
    """The worker has imported its render stack (an ``--analysis`` worker: nothing yet) and takes requests."""

    TYPE: ClassVar[str] = "ready"
    pid: int


@dataclass(frozen=True)
class Fatal:
    """The worker cannot work at all (its Python lacks torch, say) and ends; concerns every request."""

    TYPE: ClassVar[str] = "fatal"
    message: str


@dataclass(frozen=True)
class Progress:
    """``done`` of ``total`` of request ``id``; unit "frames" (a render: the first, with done 0, once
    the models are loaded) or "bytes" (a download)."""

    TYPE: ClassVar[str] = "progress"
    id: int
    done: int
    total: int
    unit: str = "frames"


@dataclass(frozen=True)
class RenderWarning:
    """The render goes on differently than asked, e.g. at a smaller batch after running out of memory."""

    TYPE: ClassVar[str] = "warning"
    id: int
    message: str


@dataclass(frozen=True)
class RenderDone:
    """A render request ended. Frames are Blender frame numbers.

    stopped : it was cancelled before its last frame.
    replaced : frames whose PNG was not current and was overwritten.
    reduced_batch : {frame number as text (a JSON key): batch size} of frames made at a smaller batch.
    """

    TYPE: ClassVar[str] = "render_done"
    id: int
    rendered: list
    reused: list
    stopped: bool
    replaced: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    reduced_batch: dict = field(default_factory=dict)


@dataclass(frozen=True)
class DownloadDone:
    """A download request ended; ``model`` is the model's `engine.setup.models.ModelState` as a dict.
    stopped : it was cancelled (complete files stay; the next download continues)."""

    TYPE: ClassVar[str] = "download_done"
    id: int
    stopped: bool
    model: dict


@dataclass(frozen=True)
class AnalyzeProgress:
    """Analysis request ``id`` is at step ``step`` of ``n_steps`` (from 1), named ``stage`` ("measuring bands
    and onsets"), ``step_fraction`` (0..1) of it done."""

    TYPE: ClassVar[str] = "analyze_progress"
    id: int
    step: int
    n_steps: int
    stage: str
    step_fraction: float = 0.0


@dataclass(frozen=True)
class AnalyzeDone:
    """An analysis request ended: its features are in ``features_path``, or it was cancelled (``stopped``)
    and nothing was written (``features_path`` None)."""

    TYPE: ClassVar[str] = "analyze_done"
    id: int
    stopped: bool
    features_path: str | None = None


@dataclass(frozen=True)
class RequestFailed:
    """Request ``id`` failed (None: a line that was not a request); ``message`` says why and what to do."""

    TYPE: ClassVar[str] = "error"
    id: int | None
    message: str


@dataclass(frozen=True)
class ProcessExited:
    """Made by the add-on, never sent: the process ended with exit ``status`` (its last event)."""

    TYPE: ClassVar[str] = "exit"
    status: int


REQUEST_TYPES = {kind.TYPE: kind for kind in (RenderRequest, DownloadRequest, AnalyzeRequest, CancelRequest,
                                              QuitRequest)}
EVENT_TYPES = {kind.TYPE: kind for kind in (Ready, Fatal, Progress, RenderWarning, RenderDone, DownloadDone,
                                            AnalyzeProgress, AnalyzeDone, RequestFailed)}


def encode(message):
    """One JSON line (without its newline) for a request or an event."""
    return json.dumps({"type": message.TYPE, "version": PROTOCOL_VERSION, **dataclasses.asdict(message)})


def decode_request(line):
    """The request a line holds; raises LatentWalkError for anything else (naming both versions)."""
    return _decode(line, REQUEST_TYPES, "request")


def decode_event(line):
    """The event a line holds; raises LatentWalkError for anything else (naming both versions)."""
    return _decode(line, EVENT_TYPES, "event")


def request_id_of(message):
    """The id of the request a message is about; None for what concerns the whole worker (ready,
    fatal, its exit)."""
    return getattr(message, "id", None)


def line_id(line):
    """The "id" of a JSON line that is not a valid request (to answer it), else None."""
    try:
        request_id = json.loads(line).get("id")
    except (ValueError, AttributeError):
        return None
    return request_id if isinstance(request_id, int) else None


def _decode(line, types, what):
    try:
        fields = json.loads(line)
    except ValueError:
        fields = None
    if not isinstance(fields, dict):
        raise LatentWalkError(f"not a JSON worker {what}: {line.strip()[:200]}")
    kind, version = fields.pop("type", None), fields.pop("version", None)
    if version != PROTOCOL_VERSION:
        said = f"version {version}" if version is not None else "no version (Latent Walk before protocol 3)"
        raise LatentWalkError(f"a worker {what} of protocol {said}, and this side speaks version "
                              f"{PROTOCOL_VERSION}: {RESTART_HINT}.")
    if kind not in types:
        raise LatentWalkError(f"an unknown worker {what} type {kind!r} (protocol version {version}; this side "
                              f"speaks version {PROTOCOL_VERSION} and knows {', '.join(sorted(types))}): "
                              f"{RESTART_HINT}.")
    try:
        return types[kind](**fields)
    except TypeError as error:
        raise LatentWalkError(f"a worker {what} '{kind}' whose fields do not match protocol version "
                              f"{PROTOCOL_VERSION} ({error}): {RESTART_HINT}.") from None
