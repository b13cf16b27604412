"""Bake Curves in the UI: the song analysed in a worker process of its own, watched as a job of jobs.py.

The analysis runs in ``python -m blender_latentwalk.engine worker --analysis`` (the render worker's
program without the render stack: it needs librosa, not torch), started for this bake and ended
after it, while Blender stays usable: the status bar names the step ("(2/6)"), Esc
cancels. The features come back as a file in a private temporary folder; the operator then writes
the curves on the main thread (`operators.write_features`). A cancelled or failed bake changes
nothing in the scene. Background mode and scripts bake synchronously (`operators.bake`).
"""

import os
import shutil
import tempfile

import bpy

from ..engine.analysis.features import Features
from ..engine.errors import LatentWalkError
from ..engine.worker import messages
from . import worker_client


class BakeJob(worker_client.RequestJob):
    """One analysis in its own worker, and what has come back of it (a job of jobs.py).

    request : the analysis request (`operators.build_request` of the scene), kept to check at the end
        that the scene still asks for this analysis.
    """

    kind = "bake"

    def __init__(self, scene, request, python):
        # The scene's name, not the scene: an undo while the bake runs may replace the scene's data.
        self.scene_name, self.request = scene.name, request
        self.folder = tempfile.mkdtemp(prefix="latentwalk-bake-")  # only this user can read it
        try:
            self.worker = worker_client.Worker(python, analysis_only=True)
        except BaseException:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise
        self.request_id = self.worker.analyze(request, os.path.join(self.folder, "features.npz"))
        self.step = None  # the latest `messages.AnalyzeProgress`
        self.features_path, self.stopped, self.error = None, False, None
        self.cancel_requested = False

    @property
    def finished(self):
        return self.features_path is not None or self.stopped or self.error is not None

    def _handle(self, event):
        """Take in one event (a `messages` dataclass) of the worker."""
        same = messages.request_id_of(event) in (self.request_id, None)
        if isinstance(event, messages.AnalyzeProgress) and same:
            self.step = event
        elif isinstance(event, messages.AnalyzeDone) and same:
            self.stopped, self.features_path = event.stopped, event.features_path
        elif isinstance(event, (messages.RequestFailed, messages.Fatal)) and same:
            self.error = event.message
        elif isinstance(event, messages.ProcessExited) and not self.finished:
            if self.cancel_requested:  # ended by a second Esc: cancelled all the same
                self.stopped = True
                return
            self.error = self.worker.stopped_message(event.status)

    def poll(self):
        if super().poll():
            self.worker.kill()  # idle now, holding nothing: no need to wait for it to quit
        return self.finished

    def wait(self):
        super().wait()
        self.worker.kill()

    def kill(self):
        """End the worker now (a second Esc, for a worker stuck importing under load): a cancel all the same."""
        self.cancel_requested = True
        self.worker.kill()

    def abandon(self):
        """Nobody watches this bake any more (a file load, the add-on disabled, Blender quitting): end it."""
        self.kill()
        shutil.rmtree(self.folder, ignore_errors=True)

    def status_line(self):
        if self.step is None:
            text = "Latent Walk bake: starting the analysis..."
        else:
            text = f"Latent Walk bake: {self.step.stage} ({self.step.step}/{self.step.n_steps})"
        return text + (" (cancelling)" if self.cancel_requested and not self.finished else "")

    def progress_fraction(self):
        """0..1: the steps done, and the share of the running step."""
        if self.features_path is not None:
            return 1.0
        if self.step is None:
            return 0.0
        return min(1.0, (self.step.step - 1 + self.step.step_fraction) / self.step.n_steps)

    def scene(self):
        """The scene the bake started in, or None when it was deleted or renamed meanwhile."""
        return bpy.data.scenes.get(self.scene_name)

    def features(self):
        """The analysis's `Features`, or None when it was cancelled; raises LatentWalkError when it failed.
        The temporary folder goes either way."""
        try:
            if self.stopped or self.cancel_requested:  # Esc after the last step still means: nothing written
                return None
            if self.error is not None:
                raise LatentWalkError(self.error)
            try:
                return Features.load_npz(self.features_path)
            except (OSError, ValueError, KeyError) as error:
                raise LatentWalkError(f"the analysis worker's features file could not be read ({error}); nothing "
                                      "was changed.") from None
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
