"""The render worker: ``python -m blender_latentwalk.engine worker``.

The add-on starts it once and sends it render requests; it keeps the models loaded
between renders, and ending it releases their memory (the "Release Models" button).
It never imports bpy, so any Python with the engine's requirements can run it.

``worker --analysis`` serves analysis requests only and never imports the render stack, so a
Python with the analysis requirements (librosa, without torch) will do: Bake Curves starts one
per bake, so Blender stays usable while the song is analysed.

Protocol (messages.py, version `messages.PROTOCOL_VERSION`): one JSON object per line, each
with its "type" and the protocol "version"; a line of another version is refused, naming both.
Requests on stdin:

    render    id, plan_path, generator, img2img {model, width, height, tiny_vae}, out_folder,
              plan_index_ranges [[first, last], ...] (null: every frame), batch_size, device, threads
              (null: the output folder's, then the device's default / the worker's own)
    download  id, model, role (biggan, pipeline or vae; see engine/setup/models.py)
    analyze   id, request (the analysis request dict, engine/analysis/request.py), features_path
    cancel    id: stop that render before its next batch (a download at its next chunk, an
              analysis at its next step or block of the song)
    quit      end after the current batch

Closing stdin without "quit" means the add-on is gone (killed, crashed): the worker
ends at once, so a render started again never meets it still writing.

Events on stdout: ``ready`` (pid), or ``fatal`` (message) when this Python lacks torch; then per
render ``progress`` (done, total in frames; the first, with done 0, once the models are loaded),
``warning`` (message: the render goes on differently than asked, e.g. at a smaller batch after
running out of memory), and ``render_done`` (rendered, reused, stopped, replaced, warnings,
reduced_batch) or ``error`` (message). A download sends ``progress`` (done, total in bytes, unit
"bytes") and ``download_done`` (stopped, model: its `models.ModelState` as a dict) or ``error``. An
analysis sends ``analyze_progress`` (step, n_steps, stage, step_fraction) as each step starts and a
few times a second within one, then ``analyze_done`` (stopped, features_path: the features file,
written atomically; none when cancelled) or ``error`` (a Python without librosa is told so here).
Anything else a library prints goes to stderr, so it cannot corrupt the protocol.
"""

import os
import queue
import sys
import threading
import time
import traceback

from ..errors import GET_THE_RENDER_STACK, LatentWalkError
from . import messages

PROGRESS_INTERVAL_S = 0.1  # within a step of an analysis or a download: a few events a second
WRITING_FEATURES = "writing the features"  # the analysis's last step, the worker's own


def _open_protocol_stream():
    """A private copy of stdout for events; fd 1 itself then points at stderr."""
    stream = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return stream


def serve(stdin=None, analysis_only=False):
    """Serve requests until ``quit`` or end of input; returns the exit status.

    analysis_only : serve analysis requests only, without importing the render stack (``worker --analysis``).
    """
    stdin = stdin if stdin is not None else sys.stdin
    if not analysis_only:
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

    loaded_models = None if analysis_only else _render_stack_models(send)  # kept: a second render starts at once
    if not analysis_only and loaded_models is None:
        return 3
    threading.Thread(target=read_requests, name="latentwalk-requests", daemon=True).start()
    send(messages.Ready(pid=os.getpid()))
    while True:
        request = requests.get()
        if request is None:
            return 0
        _serve_one(request, loaded_models, send, should_stop=lambda: request.id in cancelled or "*" in cancelled)


def _render_stack_models(send):
    """An empty `compute.Models` once the render stack imports; else a ``fatal`` event is sent and None returned.

    Imported now, not at the first frame: a Python without them is told at once.
    """
    try:
        import PIL  # noqa: F401
        import pytorch_pretrained_biggan  # noqa: F401
        import torch  # noqa: F401

        from ..render.compute import Models
    except ImportError as error:
        send(messages.Fatal(message=(
            f"the render worker's Python ({sys.executable}) cannot import {error.name or error}: it needs torch, "
            f"pytorch-pretrained-biggan, Pillow and diffusers. {GET_THE_RENDER_STACK}")))
        return None
    return Models()


_WHAT = {messages.RenderRequest: "render", messages.DownloadRequest: "download", messages.AnalyzeRequest: "analysis"}


def _serve_one(request, loaded_models, send, should_stop):
    """Answer one request; its failure is an ``error`` event, never the worker's end. ``loaded_models`` is
    None in an ``--analysis`` worker."""
    try:
        if isinstance(request, messages.AnalyzeRequest):
            _analyze(request, send, should_stop)
            return
        if loaded_models is None:
            raise LatentWalkError(f"this worker serves analysis requests only (it was started with --analysis), "
                                  f"not a {_WHAT[type(request)]}.")
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
        what = _WHAT[type(request)]
        send(messages.RequestFailed(
            id=request.id, message=f"the {what} failed: {type(error).__name__}: {error} (details in the worker's log)"))


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
        plan, request.generator, settings, request.out_folder, requested_indices(request), request.batch_size,
        request.device, should_stop=should_stop, models=loaded_models,
        progress=lambda done, total: send(messages.Progress(id=request.id, done=done, total=total)),
        warn=lambda message: send(messages.RenderWarning(id=request.id, message=message)),
        threads=request.threads,
    )


def _download(request, send, should_stop):
    """Fetch a model with progress in bytes; a cancel ends it with "download_done" and stopped true."""
    from ..setup import models as catalogue

    last_sent = [0.0, None]

    def progress(done, total):  # a few events a second, and always the last
        now = time.monotonic()
        if now - last_sent[0] >= PROGRESS_INTERVAL_S or done == total or last_sent[1] is None:
            last_sent[:] = now, done
            send(messages.Progress(id=request.id, done=done, total=total, unit="bytes"))

    role = request.role or None
    try:
        state = catalogue.download(request.model, role, should_stop=should_stop, progress=progress)
        stopped = False
    except catalogue.DownloadCancelled:
        state, stopped = catalogue.state(request.model, role), True
    send(messages.DownloadDone(id=request.id, stopped=stopped, model=state.to_dict()))


class _AnalysisCancelled(Exception):
    """Raised through the analysis (from its progress callback) when its request is cancelled."""


def _analyze(request, send, should_stop):
    """Analyse per a `messages.AnalyzeRequest`, with an ``analyze_progress`` event as each step starts (and a
    few a second within one); then write the features file. A cancel ends it with ``analyze_done``, stopped
    true, and nothing written."""
    n_steps = [0]  # the analysis's own steps; writing the file is one more
    last_sent_s = [0.0]

    def progress(step):
        if should_stop():
            raise _AnalysisCancelled
        now = time.monotonic()
        if step.fraction == 0.0 or now - last_sent_s[0] >= PROGRESS_INTERVAL_S:
            n_steps[0], last_sent_s[0] = step.n_steps, now
            send(messages.AnalyzeProgress(id=request.id, step=step.number, n_steps=step.n_steps + 1,
                                          stage=step.name, step_fraction=step.fraction))

    try:
        from ..analysis import request as analysis_request

        features = analysis_request.run(request.request, progress)
        if should_stop():  # cancelled during the last step: still nothing written
            raise _AnalysisCancelled
    except _AnalysisCancelled:
        send(messages.AnalyzeDone(id=request.id, stopped=True))
        return
    except ImportError as error:
        raise LatentWalkError(f"the analysis needs librosa, which the worker's Python ({sys.executable}) cannot "
                              f"import ({error}). {GET_THE_RENDER_STACK}") from None
    send(messages.AnalyzeProgress(id=request.id, step=n_steps[0] + 1, n_steps=n_steps[0] + 1,
                                  stage=WRITING_FEATURES))
    try:
        features.save_npz(request.features_path)  # atomic: the whole file or none
    except OSError as error:
        raise LatentWalkError(f"cannot write features to '{request.features_path}' ({error.strerror}); "
                              "choose a writable folder.") from None
    send(messages.AnalyzeDone(id=request.id, stopped=False, features_path=request.features_path))
