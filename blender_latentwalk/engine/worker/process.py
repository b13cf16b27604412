"""The render worker: ``python -m blender_latentwalk.engine worker``.

The add-on starts it once and sends it render requests; it keeps the models loaded
between renders, and ending it releases their memory (the "Release Models" button).
It never imports bpy, so any Python with the engine's requirements can run it.

Protocol (messages.py, version `messages.PROTOCOL_VERSION`): one JSON object per line, each
with its "type" and the protocol "version"; a line of another version is refused, naming both.
Requests on stdin:

    render    id, plan_path, biggan, img2img {model, width, height, tiny_vae}, out_folder,
              plan_index_ranges [[first, last], ...] (null: every frame), batch_size, device
    download  id, model, role (biggan, pipeline or vae; see engine/setup/models.py)
    cancel    id: stop that render before its next batch (a download at its next chunk)
    quit      end after the current batch

Closing stdin without "quit" means the add-on is gone (killed, crashed): the worker
ends at once, so a render started again never meets it still writing.

Events on stdout: ``ready`` (pid), or ``fatal`` (message) when this Python lacks torch; then per
render ``progress`` (done, total in frames; the first, with done 0, once the models are loaded),
``warning`` (message: the render goes on differently than asked, e.g. at a smaller batch after
running out of memory), and ``render_done`` (rendered, reused, stopped, replaced, warnings,
reduced_batch) or ``error`` (message). A download sends ``progress`` (done, total in bytes, unit
"bytes") and ``download_done`` (stopped, model: its `models.ModelState` as a dict) or ``error``.
Anything else a library prints goes to stderr, so it cannot corrupt the protocol.
"""

import os
import queue
import sys
import threading
import time
import traceback

from ..errors import LatentWalkError
from . import messages


def _open_protocol_stream():
    """A private copy of stdout for events; fd 1 itself then points at stderr."""
    stream = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return stream


def serve(stdin=None):
    """Serve requests until ``quit`` or end of input; returns the exit status."""
    stdin = stdin if stdin is not None else sys.stdin
    from ..setup import models as catalogue

    catalogue.prefer_cancellable_transport()  # before torch and diffusers import huggingface_hub
    events = _open_protocol_stream()
    lock = threading.Lock()

    def send(event):
        with lock:
            events.write(messages.encode(event) + "\n")
            events.flush()

    requests = queue.Queue()
    cancelled = set()

    def read_requests():
        for line in stdin:
            try:
                request = messages.decode_request(line)
            except LatentWalkError as error:
                send(messages.RequestFailed(id=messages.line_id(line), message=str(error)))
                continue
            if isinstance(request, messages.CancelRequest):
                cancelled.add(request.id)
            elif isinstance(request, messages.QuitRequest):
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

        from ..render.compute import Models
    except ImportError as error:
        from ..errors import GET_THE_RENDER_STACK

        send(messages.Fatal(message=(
            f"the render worker's Python ({sys.executable}) cannot import {error.name or error}: it needs torch, "
            f"pytorch-pretrained-biggan, Pillow and diffusers. {GET_THE_RENDER_STACK}")))
        return 3
    threading.Thread(target=read_requests, name="latentwalk-requests", daemon=True).start()

    loaded_models = Models()  # kept between requests: a second render starts at once
    send(messages.Ready(pid=os.getpid()))
    while True:
        request = requests.get()
        if request is None:
            return 0
        _serve_one(request, loaded_models, send, should_stop=lambda: request.id in cancelled or "*" in cancelled)


def _serve_one(request, loaded_models, send, should_stop):
    """Answer one render or download request; its failure is an ``error`` event, never the worker's end."""
    try:
        if isinstance(request, messages.DownloadRequest):
            _download(request, send, should_stop)
            return
        result = _render(request, loaded_models, send, should_stop)
        send(messages.RenderDone(
            id=request.id, rendered=result.rendered, reused=result.reused, stopped=result.stopped,
            replaced=result.replaced, warnings=result.warnings,
            reduced_batch={str(frame): size for frame, size in result.reduced_batch.items()}))
    except LatentWalkError as error:
        send(messages.RequestFailed(id=request.id, message=str(error)))
    except Exception as error:  # noqa: BLE001  (the add-on shows it; the traceback goes to stderr)
        traceback.print_exc()
        send(messages.RequestFailed(
            id=request.id, message=f"the render failed: {type(error).__name__}: {error} (details in the worker's log)"))


def requested_indices(request):
    """Plan indices of a `messages.RenderRequest` (None: every frame)."""
    ranges = request.plan_index_ranges
    if ranges is None:
        return None
    try:
        return [index for first, last in ranges for index in range(int(first), int(last) + 1)]
    except (TypeError, ValueError):
        raise LatentWalkError(f"render request plan_index_ranges {ranges!r} are not [[first, last], ...]") from None


def _render(request, loaded_models, send, should_stop):
    """Render a `messages.RenderRequest` through ``loaded_models`` (a `compute.Models`), sending `messages.Progress`
    and `messages.RenderWarning` events on the way; returns the `run.RenderResult`."""
    from ..render import run
    from ..walk.plan import RenderPlan

    plan = RenderPlan.load(request.plan_path)
    settings = run.Img2ImgSettings(**request.img2img)
    return run.render(
        plan, request.biggan, settings, request.out_folder, requested_indices(request), request.batch_size,
        request.device, should_stop=should_stop, models=loaded_models,
        progress=lambda done, total: send(messages.Progress(id=request.id, done=done, total=total)),
        warn=lambda message: send(messages.RenderWarning(id=request.id, message=message)),
    )


def _download(request, send, should_stop):
    """Fetch a model with progress in bytes; a cancel ends it with "download_done" and stopped true."""
    from ..setup import models as catalogue

    last_sent = [0.0, None]

    def progress(done, total):  # a few events a second, and always the last
        now = time.monotonic()
        if now - last_sent[0] >= 0.1 or done == total or last_sent[1] is None:
            last_sent[:] = now, done
            send(messages.Progress(id=request.id, done=done, total=total, unit="bytes"))

    role = request.role or None
    try:
        state = catalogue.download(request.model, role, should_stop=should_stop, progress=progress)
        stopped = False
    except catalogue.DownloadCancelled:
        state, stopped = catalogue.state(request.model, role), True
    send(messages.DownloadDone(id=request.id, stopped=stopped, model=state.to_dict()))
