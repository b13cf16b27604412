"""The render worker: ``python -m blender_latentwalk.engine worker``.

The add-on starts it once and sends it render requests; it keeps the models loaded
between renders, and ending it releases their memory (the "Release Models" button).
It never imports bpy, so any Python with the engine's requirements can run it.

Protocol: one JSON object per line. Requests on stdin::

    {"command": "render", "id": 1, "plan": "plan.npz", "biggan": "biggan-deep-256",
     "img2img": {"model": "stabilityai/sd-turbo", "width": 512, "height": 512, "tiny_vae": ""},
     "out": "/frames", "frames": [[first_index, last_index], ...] or null, "batch_size": null, "device": "auto",
     "version": 2}
    Request version 2 (PROTOCOL_VERSION): "frames" is a list of inclusive plan-index ranges, so a
    farm chunk with gaps (Blender frames 1-3,5) is one request. A request without "version"
    is version 1, whose "frames" is one range [first_index, last_index]; it is still served.
    {"command": "download", "id": 2, "model": "stabilityai/sd-turbo", "role": "pipeline"}
                                        fetch a missing model (role: biggan, pipeline or vae; see models.py)
    {"command": "cancel", "id": 1}      stop that render before its next batch (a download at its next chunk)
    {"command": "quit"}                 end after the current batch

Closing stdin without "quit" means the add-on is gone (killed, crashed): the worker
ends at once, so a render started again never meets it still writing.

Events on stdout: ``ready`` (or ``fatal`` when this Python lacks torch); then per render ``progress`` (done, total; the first,
with done 0, once the models are loaded), ``warning`` (message: the render goes on differently than
asked, e.g. at a smaller batch after running out of memory), and ``done`` (rendered, reused, stopped,
replaced: frames whose PNG was not current and was overwritten, warnings, reduced_batch: {frame: batch
size} of frames made at a smaller batch) or ``error`` (message). A download sends ``progress`` (done, total
in bytes, unit "bytes") and ``done`` (stopped: cancelled; model: the model's `models.ModelState` as a dict)
or ``error``. Anything else a library prints goes to stderr, so it cannot
corrupt the protocol.
"""

import json
import os
import queue
import sys
import threading
import time
import traceback

from ..errors import LatentWalkError

PROTOCOL_VERSION = 2  # 2: "frames" is a list of ranges (farm chunks with gaps); 1: one [first, last]


def _open_protocol_stream():
    """A private copy of stdout for events; fd 1 itself then points at stderr."""
    stream = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return stream


def serve(stdin=None):
    """Serve requests until ``quit`` or end of input; returns the exit status."""
    stdin = stdin if stdin is not None else sys.stdin
    from ..setup import models

    models.prefer_cancellable_transport()  # before torch and diffusers import huggingface_hub
    events = _open_protocol_stream()
    lock = threading.Lock()

    def send(**event):
        with lock:
            events.write(json.dumps(event) + "\n")
            events.flush()

    requests = queue.Queue()
    cancelled = set()

    def read_requests():
        for line in stdin:
            try:
                request = json.loads(line)
            except ValueError:
                send(event="error", id=None, message=f"not a JSON request: {line.strip()[:200]}")
                continue
            if request.get("command") == "cancel":
                cancelled.add(request.get("id"))
            elif request.get("command") == "quit":
                cancelled.add("*")
                requests.put(None)
                return
            else:
                requests.put(request)
        # End of input without "quit": the add-on (Blender, a headless render) is gone, killed or
        # crashed. Nobody reads what comes next, and a render started again must not meet this
        # one still writing frames: end now. Finished frames and the manifest are already on disk.
        os._exit(4)

    try:  # imported now, not at the first frame: a Python without them is told at once
        import PIL  # noqa: F401
        import pytorch_pretrained_biggan  # noqa: F401
        import torch  # noqa: F401

        from ..render.run import Models
    except ImportError as error:
        from ..errors import GET_THE_RENDER_STACK

        send(event="fatal", message=(
            f"the render worker's Python ({sys.executable}) cannot import {error.name or error}: it needs torch, "
            f"pytorch-pretrained-biggan, Pillow and diffusers. {GET_THE_RENDER_STACK}"))
        return 3
    threading.Thread(target=read_requests, name="latentwalk-requests", daemon=True).start()

    models = Models()
    send(event="ready", pid=os.getpid())
    while True:
        request = requests.get()
        if request is None:
            return 0
        request_id = request.get("id")
        try:
            if request.get("command") == "download":
                _download(request, send, should_stop=lambda: request_id in cancelled or "*" in cancelled)
                continue
            if request.get("command") != "render":
                raise LatentWalkError(f"unknown worker command {request.get('command')!r}")
            result = _render(request, models, send,
                             should_stop=lambda: request_id in cancelled or "*" in cancelled)
            send(event="done", id=request_id, rendered=result.rendered, reused=result.reused,
                 stopped=result.stopped, replaced=result.replaced, warnings=result.warnings,
                 reduced_batch={str(frame): size for frame, size in result.reduced_batch.items()})
        except LatentWalkError as error:
            send(event="error", id=request_id, message=str(error))
        except Exception as error:  # noqa: BLE001  (the add-on shows it; the traceback goes to stderr)
            traceback.print_exc()
            send(event="error", id=request_id,
                 message=f"the render failed: {type(error).__name__}: {error} (details in the worker's log)")


def requested_indices(request):
    """Plan indices of a render request (None: every frame); see the protocol versions above."""
    frames, version = request.get("frames"), request.get("version", 1)
    if frames is None:
        return None
    if version > PROTOCOL_VERSION:
        raise LatentWalkError(f"render request version {version} is newer than this worker's "
                              f"({PROTOCOL_VERSION}): the add-on and its Engine Python run different versions.")
    try:
        ranges = [frames] if version == 1 else frames
        return [index for first, last in ranges for index in range(int(first), int(last) + 1)]
    except (TypeError, ValueError):
        raise LatentWalkError(f"render request frames {frames!r} are not version {version}'s "
                              + ("[first, last]" if version == 1 else "[[first, last], ...]")) from None


def _render(request, models, send, should_stop):
    from ..render import run as render
    from ..walk.plan import RenderPlan

    plan = RenderPlan.load(request["plan"])
    indices = requested_indices(request)
    settings = render.Img2ImgSettings(**request.get("img2img", {}))
    return render.render(
        plan, request["biggan"], settings, request["out"], indices, request.get("batch_size"),
        request.get("device", "auto"), should_stop=should_stop, models=models,
        progress=lambda done, total: send(event="progress", id=request.get("id"), done=done, total=total),
        warn=lambda message: send(event="warning", id=request.get("id"), message=message),
    )


def _download(request, send, should_stop):
    """Fetch a model with progress in bytes; a cancel ends it with "done" and stopped true."""
    from ..setup import models

    name, role = request["model"], request.get("role") or None
    request_id = request.get("id")
    last_sent = [0.0, None]

    def progress(done, total):  # a few events a second, and always the last
        now = time.monotonic()
        if now - last_sent[0] >= 0.1 or done == total or last_sent[1] is None:
            last_sent[:] = now, done
            send(event="progress", id=request_id, done=done, total=total, unit="bytes")

    try:
        state = models.download(name, role, should_stop=should_stop, progress=progress)
        stopped = False
    except models.DownloadCancelled:
        state, stopped = models.state(name, role), True
    send(event="done", id=request_id, stopped=stopped, model=state.to_dict())
