"""Render Frames, Preview Walk, Cancel Render and Release Models.

In the UI a render is a job of jobs.py: Blender stays responsive, the status bar shows progress
and ETA, and Esc stops the render before its next batch (a second Esc ends the worker at once).
In background mode (``blender -b``) and from scripts the same render runs synchronously and
prints progress lines.

Before any worker starts, the models the render needs are looked for (models.refuse_missing): a
missing one is refused at once with "Model missing: ...". Reports fit one line of the popup; a longer
one (a folder's path) is printed whole to the console.
"""

import time

import bpy

from ..engine.errors import LatentWalkError
from . import jobs, models, render_job, worker_client

ESC_HINT = "  (Esc: cancel; finished frames are kept)"
SECOND_ESC_AFTER_S = 0.5  # a second press this long after the first is deliberate, not a bounce


class _RenderOperator(jobs.JobOperator):
    preview = False

    @classmethod
    def poll(cls, context):
        # Not while another job uses the worker (or replaces its Python), nor while Encode Video's render
        # job reads the frames this would rewrite.
        return not jobs.busy()

    def execute(self, context):
        # Scripts and background mode: the same job, synchronously.
        try:
            job = render_job.render_sync(context.scene, preview=self.preview, print_progress=bpy.app.background)
        except LatentWalkError as error:
            self.report({"ERROR"}, models.report_text(f"Latent Walk: {error}"))
            return {"CANCELLED"}
        self._report_done(job.summary, job.warnings)
        return {"FINISHED"}

    def start_reported(self, context):
        """The render job, or None with the reason reported in one line (all of it in the console)."""
        try:
            return self.start_job(context)
        except LatentWalkError as error:
            self.report({"ERROR"}, models.report_text(f"Latent Walk: {error}"))
            return None

    def start_job(self, context):
        return render_job.RenderJob(context.scene, preview=self.preview)

    def end_job(self, context, job):
        try:
            summary = job.finish(job.scene)
        except ReferenceError:  # the scene was deleted while it rendered: its frames stay in the folder
            self.report({"WARNING"}, f"Latent Walk: the rendered scene is gone; the frames are in {job.folder}")
            return {"CANCELLED"}
        except LatentWalkError as error:
            self.report({"ERROR"}, models.report_text(f"Latent Walk: {error}"))
            return {"CANCELLED"}
        self._report_done(summary, job.warnings)
        return {"FINISHED"}

    def press_escape(self, job):
        if not job.cancel_requested:
            job.cancel()  # the worker stops before its next batch; finished frames stay
        elif time.monotonic() - job.cancelled_s > SECOND_ESC_AFTER_S:
            worker_client.kill()  # a worker stuck (loading, a hung GPU) ends now; its exit ends the job

    def escape_hint(self, job):
        return jobs.ESC_AGAIN_HINT if job.cancel_requested else ESC_HINT

    def _report_done(self, summary, warnings):
        # A render with stand-ins says so first, as a warning: its frames are noise.
        noise = summary.startswith("stand-in models")
        self.report({"WARNING"} if noise else {"INFO"}, models.report_text(f"Latent Walk: {summary}"))
        for warning in warnings:
            self.report({"WARNING"}, models.report_text(f"Latent Walk: {warning}"))


class LATENTWALK_OT_render(_RenderOperator, bpy.types.Operator):
    """Render the latent walk (BigGAN, then Stable Diffusion img2img) into the Output folder and the Sequencer. Esc cancels; finished frames are kept"""

    bl_idname = "latentwalk.render"
    bl_label = "Render Frames"
    bl_options = {"UNDO"}  # not REGISTER: Repeat Last would re-run it blocking, without Esc


class LATENTWALK_OT_preview(_RenderOperator, bpy.types.Operator):
    """Render a quick BigGAN-only preview at Preview Width into the Sequencer, to judge the motion, on Render > Device. Esc cancels"""

    bl_idname = "latentwalk.preview"
    bl_label = "Preview Walk"
    bl_options = {"UNDO"}
    preview = True


class LATENTWALK_OT_render_cancel(jobs.CancelJobOperator, bpy.types.Operator):
    """Stop the render before its next batch; finished frames are kept"""

    bl_idname = "latentwalk.render_cancel"
    bl_label = "Cancel Render"
    job_kind = "render"


class LATENTWALK_OT_release_models(bpy.types.Operator):
    """End the render worker process, freeing the memory (VRAM) its loaded models hold"""

    bl_idname = "latentwalk.release_models"
    bl_label = "Release Models"

    @classmethod
    def poll(cls, context):
        return jobs.running() is None and worker_client.running()

    def execute(self, context):
        worker_client.release()
        self.report({"INFO"}, "Latent Walk: render worker ended, models released")
        return {"FINISHED"}


classes = (LATENTWALK_OT_render, LATENTWALK_OT_preview, LATENTWALK_OT_render_cancel, LATENTWALK_OT_release_models)
