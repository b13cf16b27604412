"""Issue 23 in the real Blender application (Debian's 3.4.1): a rendered .blend saved as its next version
encodes without a render, and Encode Video holds its frames against renders while Blender reads them.

    blender -b --factory-startup --python-exit-code 1 -P tests/headless/save_as_in_blender.py -- \\
        FOLDER SONG BIGGAN SD

Prints one ``RESULT {json}`` line; the worker runs in LATENTWALK_ENGINE_PYTHON (the project's .venv).
"""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path[:0] = [ROOT]

import bpy  # noqa: E402

from blender_latentwalk.blender import encode, headless, render_job, sequencer  # noqa: E402

headless.ensure_registered()
folder, song, biggan, sd = headless.script_arguments()
python = os.environ["LATENTWALK_ENGINE_PYTHON"]


def claim_elsewhere(frames_folder, frames):
    """A render's claim on ``frames`` from another process: the FolderBusy message, or "" once claimed."""
    script = ("import sys\nfrom blender_latentwalk.engine.render import claims\n"
              f"try:\n    claims.claim({frames_folder!r}, {frames!r}).release()\n"
              "except claims.FolderBusy as error:\n    print(error)\n")
    result = subprocess.run([python, "-c", script], capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, PYTHONPATH=ROOT))
    return result.stdout.strip()


bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene
scene.render.fps = 24
scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 64, 48, 100
settings = scene.latentwalk
settings.audio_path = song
assert bpy.ops.latentwalk.bake() == {"FINISHED"}
settings.walk.model, settings.diffusion.model, settings.walk.device = biggan, sd, "cpu"
settings.diffusion.batch_size = 4
bpy.ops.wm.save_as_mainfile(filepath=os.path.join(folder, "song_v01.blend"))  # the default Output folder
scene = bpy.context.scene
first = render_job.render_sync(scene)
bpy.ops.wm.save_mainfile()
bpy.ops.wm.save_as_mainfile(filepath=os.path.join(folder, "song_v02.blend"))
scene = bpy.context.scene
status, frames_folder = encode.check_frames(scene)

seen = []
encode_video = sequencer.encode_video


def while_blender_reads(*args, **kwargs):
    seen.append(claim_elsewhere(frames_folder, [1, 72]))
    return encode_video(*args, **kwargs)


sequencer.encode_video = while_blender_reads
encoded = bpy.ops.latentwalk.encode_video()
sequencer.encode_video = encode_video
video = os.path.join(frames_folder, "song_v02.mp4")
print("RESULT " + json.dumps({
    "blender": bpy.app.version_string, "rendered_first": len(first.result.rendered),
    "folder": frames_folder, "status": status.summary(), "encoded": sorted(encoded),
    "video": os.path.getsize(video) if os.path.isfile(video) else 0,
    "busy_while_encoding": seen, "busy_after": claim_elsewhere(frames_folder, [1, 72]),
}), flush=True)
