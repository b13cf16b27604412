"""Drive the modal render in the real Blender UI (run by test_blender_app.py under Xvfb).

    blender FILE.blend --enable-event-simulate -P tests/app/modal_render_ui.py -- \
        --biggan DIR --sd DIR --out FRAMES --screenshot PNG

Starts "Render Frames" as a user's click does (INVOKE_DEFAULT), takes a screenshot
while it runs, clicks Cancel Render and then presses Esc (a second, impatient stop:
it ends the worker at once), waits for the cancel, renders again to the end, presses
Encode Video and waits for Blender's render job (the artist's output settings must be
as they were after it), prints what happened as RESULT lines, and quits.
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
for name in ("--biggan", "--sd", "--out", "--screenshot"):
    parser.add_argument(name, required=True)
ARGS = parser.parse_args(argv)
STATE = {"step": "setup", "ticks": 0, "status": []}


def sequencer_context():
    window = bpy.context.window_manager.windows[0]
    area = max(window.screen.areas, key=lambda a: a.width * a.height)
    area.type = "SEQUENCE_EDITOR"
    area.spaces.active.show_region_ui = True
    return {"window": window, "screen": window.screen, "area": area}


def invoke_render():
    with bpy.context.temp_override(**sequencer_context()):
        return bpy.ops.latentwalk.render("INVOKE_DEFAULT")


def output_settings(scene):
    render = scene.render
    return [render.filepath, render.image_settings.file_format, render.use_sequencer, render.use_compositing,
            scene.frame_start, scene.frame_end]


def result(**values):
    print("RESULT " + json.dumps(values), flush=True)


def step():
    from blender_latentwalk.blender import render

    scene = bpy.context.scene
    STATE["ticks"] += 1
    if STATE["ticks"] > 600:
        result(error="timed out")
        bpy.ops.wm.quit_blender()
        return None
    job = render.active_job()
    if STATE["step"] == "setup":
        import blender_latentwalk

        if not hasattr(bpy.types.Scene, "latentwalk"):
            blender_latentwalk.register()
        settings = scene.latentwalk
        settings.walk.model, settings.walk.device = ARGS.biggan, "cpu"
        settings.diffusion.model, settings.diffusion.output_folder = ARGS.sd, ARGS.out
        settings.diffusion.batch_size = 2
        scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 64, 48, 100
        scene.render.filepath, scene.render.image_settings.file_format = "//stills/shot_", "JPEG"
        scene.render.use_sequencer, scene.render.use_compositing = False, True
        STATE["settings_before"] = output_settings(scene)
        result(invoked=sorted(invoke_render()))
        STATE["step"] = "running"
    elif STATE["step"] == "running" and job is not None and job.done >= 6:
        STATE["status"].append(job.status_line())
        window = bpy.context.window_manager.windows[0]
        with bpy.context.temp_override(window=window, screen=window.screen, area=window.screen.areas[0]):
            bpy.ops.screen.screenshot(filepath=ARGS.screenshot)
        with bpy.context.temp_override(**sequencer_context()):
            result(cancel_clicked=sorted(bpy.ops.latentwalk.render_cancel()))
        STATE["step"], STATE["clicked_ticks"] = "cancel clicked", STATE["ticks"]
    elif STATE["step"] == "cancel clicked" and STATE["ticks"] - STATE["clicked_ticks"] >= 10 and job is not None:
        window = bpy.context.window_manager.windows[0]
        window.event_simulate("ESC", "PRESS")  # a second stop, a second after the click: the worker ends now
        window.event_simulate("ESC", "RELEASE")
        STATE["step"] = "cancelling"
    elif STATE["step"] == "cancel clicked" and job is None:  # the click alone stopped it first
        STATE["step"] = "cancelling"
    elif STATE["step"] == "cancelling" and job is None:
        frames = sorted(n for n in os.listdir(ARGS.out) if n.endswith(".png"))
        result(cancelled_with=len(frames), status=STATE["status"])
        result(invoked_again=sorted(invoke_render()))
        STATE["step"] = "finishing"
    elif STATE["step"] == "finishing" and job is None:
        frames = sorted(n for n in os.listdir(ARGS.out) if n.endswith(".png"))
        strips = [(s.name, s.type, s.channel, s.frame_final_start, s.frame_final_duration)
                  for s in scene.sequence_editor.sequences_all]
        result(finished_with=len(frames), strips=strips)
        with bpy.context.temp_override(**sequencer_context()):
            result(encode=sorted(bpy.ops.latentwalk.encode_video()))  # Blender's own render job
        STATE["step"] = "encoding"
        STATE["encode_ticks"] = 0
    elif STATE["step"] == "encoding":
        STATE["encode_ticks"] += 1
        if STATE["encode_ticks"] > 5 and not bpy.app.is_job_running("RENDER"):
            video = os.path.join(ARGS.out, "baked.mp4")
            result(video=video if os.path.isfile(video) else None,
                   settings_kept=output_settings(scene) == STATE["settings_before"],
                   settings=[output_settings(scene), STATE["settings_before"]])
            bpy.ops.wm.quit_blender()
            return None
    return 0.1


bpy.app.timers.register(step, first_interval=1.0)
