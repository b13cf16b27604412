"""Drive Bake Curves in the real Blender UI (run by test_bake_app.py under Xvfb).

    blender FILE.blend --enable-event-simulate -P tests/app/modal_bake_ui.py -- --song SONG [--screenshot PNG]

Clicks Bake Curves in the Sequencer's sidebar context (INVOKE_DEFAULT) with every band on a part of the
mix (the slowest analysis: seconds for a long song), notes the status line and progress while the worker
measures the song, presses Esc and checks that the scene is as it was; bakes again to the end; then
edits a curve by hand and bakes once more, through the dialog that asks about edited curves (Return
confirms it). Prints what happened as RESULT lines and quits.
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
parser.add_argument("--song", required=True)
parser.add_argument("--screenshot", default="")
ARGS = parser.parse_args(argv)
STATE = {"step": "setup", "ticks": 0, "status": []}
STARTED_S = time.monotonic()
MEASURING = "measuring bands and onsets"


def result(**values):
    print("RESULT " + json.dumps(values), flush=True)


def sequencer_context():
    window = bpy.context.window_manager.windows[0]
    area = max(window.screen.areas, key=lambda a: a.width * a.height)
    area.type = "SEQUENCE_EDITOR"
    area.spaces.active.show_region_ui = True
    if hasattr(bpy.types.Scene, "latentwalk"):
        from blender_latentwalk.blender import compat

        compat.show_sidebar_tab(next(r for r in area.regions if r.type == "UI"), "Latent Walk")
    return {"window": window, "screen": window.screen, "area": area}


def invoke_bake():
    with bpy.context.temp_override(**sequencer_context()):
        return sorted(bpy.ops.latentwalk.bake("INVOKE_DEFAULT"))


def press(key):
    window = bpy.context.window_manager.windows[0]
    window.event_simulate(key, "PRESS")
    window.event_simulate(key, "RELEASE")


def snapshot(scene):
    """What a bake may change: the keys of every F-curve, the frame range, the summary."""
    from blender_latentwalk.blender import compat

    keys = {f"{fc.data_path}[{fc.array_index}]": [list(k.co) for k in fc.keyframe_points]
            for fc in compat.fcurves_of(scene) or []}
    return {"keys": keys, "frame_end": scene.frame_end, "summary": scene.latentwalk.last_bake_summary}


def recent_reports():
    """The reports Blender keeps (the status bar shows the latest; a cancelled operator's are not printed)."""
    window = bpy.context.window_manager.windows[0]
    area = min(window.screen.areas, key=lambda a: a.width * a.height)  # shown as the Info editor for a moment
    kind = area.type
    area.type = "INFO"
    with bpy.context.temp_override(window=window, screen=window.screen, area=area):
        bpy.ops.info.select_all(action="SELECT")
        bpy.ops.info.report_copy()
    area.type = kind
    return bpy.context.window_manager.clipboard


def onset_key(scene):
    from blender_latentwalk.blender import compat

    return compat.find_fcurve(scene, "latentwalk.onset", 0).keyframe_points[3]


def note(job):
    """Keep each new status line and progress the job shows (the status bar's text, the window's bar)."""
    line = (job.status_line(), round(job.progress_fraction(), 3))
    if not STATE["status"] or STATE["status"][-1] != line:
        STATE["status"].append(line)


def setup(scene):
    import blender_latentwalk

    if not hasattr(bpy.types.Scene, "latentwalk"):
        blender_latentwalk.register()
    settings = scene.latentwalk
    settings.audio_path = ARGS.song
    settings.ensure_default_bands()
    for index, band in enumerate(settings.bands):  # parts of the mix: the separation takes its time
        band.source = "percussive" if index % 2 else "harmonic"
    settings.onset_source = "percussive"
    STATE["before"] = snapshot(scene)
    result(invoked=invoke_bake())


def while_measuring(job):
    """The first bake, midway through the song: what shows, which buttons are off; then Esc."""
    note(job)
    if ARGS.screenshot:
        window = bpy.context.window_manager.windows[0]
        with bpy.context.temp_override(window=window, screen=window.screen, area=window.screen.areas[0]):
            bpy.ops.screen.screenshot(filepath=ARGS.screenshot)
    result(while_baking={"status": job.status_line(), "fraction": job.progress_fraction(),
                         "bake_enabled": bpy.ops.latentwalk.bake.poll(),
                         "render_enabled": bpy.ops.latentwalk.render.poll(),
                         "cancel_enabled": bpy.ops.latentwalk.bake_cancel.poll()})
    STATE["job"] = job
    press("ESC")


def step():
    try:
        return next_step()
    except Exception:  # a timer that raises is dropped: say why and quit, never leave Blender waiting
        import traceback

        result(error=traceback.format_exc())
        bpy.ops.wm.quit_blender()
        return None


def next_step():
    from blender_latentwalk.blender import jobs

    scene = bpy.context.scene
    STATE["ticks"] += 1
    if time.monotonic() - STARTED_S > 300:
        result(error=f"timed out at step {STATE['step']}")
        bpy.ops.wm.quit_blender()
        return None
    job = jobs.running("bake")
    if job is not None:
        note(job)
    if STATE["step"] == "setup":
        setup(scene)
        STATE["step"] = "running"
    elif STATE["step"] == "running" and job is not None and job.step is not None and job.step.stage == MEASURING:
        while_measuring(job)
        STATE["step"] = "cancelling"
    elif STATE["step"] in ("running", "cancelling") and job is None:
        result(cancelled=STATE["step"] == "cancelling" and STATE["job"].stopped,
               unchanged=snapshot(scene) == STATE["before"], status=STATE["status"], reports=recent_reports())
        STATE["status"] = []
        result(invoked_again=invoke_bake())
        STATE["step"] = "finishing"
    elif STATE["step"] == "finishing" and job is None:
        baked = snapshot(scene)
        result(baked={"n_curves": len(baked["keys"]), "summary": baked["summary"], "frame_end": baked["frame_end"],
                      "n_keys": len(baked["keys"]["latentwalk.onset[0]"])}, status=STATE["status"])
        onset_key(scene).co.y = 0.5  # an edit by hand: the next bake asks first
        result(dialog_invoked=invoke_bake())
        STATE["step"], STATE["dialog_ticks"] = "dialog", STATE["ticks"]
    elif STATE["step"] == "dialog" and STATE["ticks"] - STATE["dialog_ticks"] >= 10:
        result(bake_before_confirming=jobs.running("bake") is not None)
        press("RET")  # the dialog's OK: the edited curve is kept
        STATE["step"] = "confirming"
    elif STATE["step"] == "confirming" and job is not None:
        STATE["step"] = "baking after the dialog"
    elif STATE["step"] == "baking after the dialog" and job is None:
        result(after_dialog={"edit_kept": abs(onset_key(scene).co.y - 0.5) < 1e-6,
                             "summary": scene.latentwalk.last_bake_summary})
        bpy.ops.wm.quit_blender()
        return None
    return 0.05


bpy.app.timers.register(step, first_interval=1.0)
