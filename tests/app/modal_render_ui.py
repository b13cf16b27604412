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
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import bpy  # noqa: E402

argv = sys.argv[sys.argv.index("--") + 1:]
parser = argparse.ArgumentParser()
for name in ("--biggan", "--sd", "--out", "--screenshot", "--screenshot-sequencer"):
    parser.add_argument(name, required=True)
ARGS = parser.parse_args(argv)
STATE = {"step": "setup", "ticks": 0, "status": []}
STARTED_S = time.monotonic()


def claim_files(folder):
    """The frames claimed in ``folder`` (engine/render/claims.py's claim files)."""
    claimed = []
    for name in sorted(os.listdir(folder)):
        if name.startswith(".latentwalk-render-") and name.endswith(".json"):
            with open(os.path.join(folder, name), encoding="utf-8") as stream:
                claimed.append(json.load(stream)["frames"])
    return claimed


def sequencer_context():
    window = bpy.context.window_manager.windows[0]
    area = max(window.screen.areas, key=lambda a: a.width * a.height)
    area.type = "SEQUENCE_EDITOR"
    area.spaces.active.show_region_ui = True
    return {"window": window, "screen": window.screen, "area": area}


def invoke_render():
    with bpy.context.temp_override(**sequencer_context()):
        return bpy.ops.latentwalk.render("INVOKE_DEFAULT")


def capture(path):
    window = bpy.context.window_manager.windows[0]
    with bpy.context.temp_override(window=window, screen=window.screen, area=window.screen.areas[0]):
        bpy.ops.screen.screenshot(filepath=path)


def show_sequencer_after_render(scene):
    """The Sequencer with its preview over the strips, at a frame in the song's second beat."""
    area = sequencer_context()["area"]
    area.spaces.active.view_type = "SEQUENCER_PREVIEW"
    area.spaces.active.show_region_ui = False
    bpy.ops.file.make_paths_relative()  # the strips show //frames/..., wherever the test ran
    scene.frame_set(16)
    for strip in scene.sequence_editor.sequences_all:
        strip.select = False


def frame_sequencer_views():
    """View All in the strips and Fit in the preview (once the new preview region has its size)."""
    context = sequencer_context()
    context["area"].spaces.active.show_region_ui = False
    for region_type, operator in (("WINDOW", bpy.ops.sequencer.view_all),
                                  ("PREVIEW", bpy.ops.sequencer.view_all_preview)):
        region = next(r for r in context["area"].regions if r.type == region_type)
        with bpy.context.temp_override(region=region, **context):
            operator()


def output_settings(scene):
    render = scene.render
    return [render.filepath, render.image_settings.file_format, render.use_sequencer, render.use_compositing,
            scene.frame_start, scene.frame_end]


def result(**values):
    print("RESULT " + json.dumps(values), flush=True)


def step():
    from blender_latentwalk.blender import jobs

    scene = bpy.context.scene
    STATE["ticks"] += 1
    if time.monotonic() - STARTED_S > 480:  # a shared CI machine can render at a fraction of a frame a second
        result(error="timed out")
        bpy.ops.wm.quit_blender()
        return None
    job = jobs.running("render")
    if STATE["step"] == "setup":
        import blender_latentwalk

        if not hasattr(bpy.types.Scene, "latentwalk"):
            blender_latentwalk.register()
        settings = scene.latentwalk
        settings.walk.model, settings.walk.device = ARGS.biggan, "cpu"
        # Relative to the .blend (saved beside the song): the strips' paths in the screenshots do not depend on
        # where the test ran.
        settings.diffusion.model, settings.diffusion.output_folder = ARGS.sd, bpy.path.relpath(ARGS.out)
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
        show_sequencer_after_render(scene)
        STATE["step"], STATE["shown_ticks"] = "shown", STATE["ticks"]
    elif STATE["step"] == "shown" and STATE["ticks"] - STATE["shown_ticks"] >= 5:
        frame_sequencer_views()
        STATE["step"], STATE["shown_ticks"] = "framed", STATE["ticks"]
    elif STATE["step"] == "framed" and STATE["ticks"] - STATE["shown_ticks"] >= 10:
        capture(ARGS.screenshot_sequencer)
        with bpy.context.temp_override(**sequencer_context()):
            result(encode=sorted(bpy.ops.latentwalk.encode_video("INVOKE_DEFAULT")))  # Blender's own render job
        result(claims_while_encoding=claim_files(ARGS.out))  # Encode Video holds its frames against renders
        STATE["step"] = "encoding"
        STATE["encode_ticks"] = 0
    elif STATE["step"] == "encoding":
        STATE["encode_ticks"] += 1
        if STATE["encode_ticks"] == 3:
            result(windows_while_encoding=len(bpy.context.window_manager.windows))
        from blender_latentwalk.blender import jobs

        if STATE["encode_ticks"] > 5 and jobs.running() is None and not bpy.app.is_job_running("RENDER"):
            video = os.path.join(ARGS.out, "baked.mp4")
            result(claims_after_encoding=claim_files(ARGS.out))
            result(video=video if os.path.isfile(video) else None,
                   settings_kept=output_settings(scene) == STATE["settings_before"],
                   settings=[output_settings(scene), STATE["settings_before"]])
            bpy.ops.wm.quit_blender()
            return None
    return 0.1


bpy.app.timers.register(step, first_interval=1.0)
