"""Drive Download in the Models panel in the real Blender UI (run by test_models_app.py under Xvfb).

    blender FILE.blend --enable-event-simulate -P tests/app/modal_download_ui.py -- --model biggan-deep-128

Starts the download as a click does (INVOKE_DEFAULT), notes the status line while bytes arrive,
presses Esc, waits for the cancel, downloads again to the end, prints what happened as RESULT lines
(the listing the panel shows after each), and quits. The environment points the worker at the test's
loopback server (LATENTWALK_BIGGAN_ENDPOINT) and at temporary caches.
"""

import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import bpy  # noqa: E402

argv = sys.argv[sys.argv.index("--") + 1:]
parser = argparse.ArgumentParser()
parser.add_argument("--model", required=True)
ARGS = parser.parse_args(argv)
STATE = {"step": "setup", "ticks": 0, "status": []}


def result(**values):
    print("RESULT " + json.dumps(values), flush=True)


def sequencer_context():
    window = bpy.context.window_manager.windows[0]
    area = max(window.screen.areas, key=lambda a: a.width * a.height)
    area.type = "SEQUENCE_EDITOR"
    area.spaces.active.show_region_ui = True
    return {"window": window, "screen": window.screen, "area": area}


def invoke_download():
    with bpy.context.temp_override(**sequencer_context()):
        return sorted(bpy.ops.latentwalk.model_download("INVOKE_DEFAULT", name=ARGS.model, role="biggan"))


def listed():
    from blender_latentwalk.blender import models

    listing = models.listing()
    return None if listing is None else {s.name: s.present for s in listing["states"]}


def step():
    from blender_latentwalk.blender import jobs

    STATE["ticks"] += 1
    if STATE["ticks"] > 900:
        result(error="timed out")
        bpy.ops.wm.quit_blender()
        return None
    job = jobs.running("download")
    if STATE["step"] == "setup":
        import blender_latentwalk

        if not hasattr(bpy.types.Scene, "latentwalk"):
            blender_latentwalk.register()
        bpy.context.scene.latentwalk.walk.model = ARGS.model
        result(invoked=invoke_download())
        STATE["step"] = "running"
    elif STATE["step"] == "running" and job is not None and job.done > 0:
        STATE["job"] = job
        STATE["status"].append(job.status_line())
        window = bpy.context.window_manager.windows[0]
        window.event_simulate("ESC", "PRESS")
        window.event_simulate("ESC", "RELEASE")
        STATE["step"] = "cancelling"
    elif STATE["step"] in ("running", "cancelling") and job is None:
        result(cancelled="job" in STATE and STATE["job"].stopped, status=STATE["status"],
               listed_after_cancel=listed())
        result(invoked_again=invoke_download())
        STATE["step"] = "finishing"
    elif STATE["step"] == "finishing" and job is None:
        result(listed_at_end=listed())
        bpy.ops.wm.quit_blender()
        return None
    return 0.05


bpy.app.timers.register(step, first_interval=1.0)
