"""Drive Set Up Render Environment in the real Blender UI (run by test_blender_app.py under Xvfb).

    blender --factory-startup --enable-event-simulate -P tests/app/setup_env_ui.py -- --song WAV --out DIR

Enables the add-on as a user does (so its preferences exist), presses the button as a click
does (INVOKE_DEFAULT: the modal timer path), records the status line while it installs, and
when it has ended bakes the song and renders a BigGAN preview through the new Engine Python
(tiny models made by that Python). Prints what happened as RESULT lines, and quits.
"""

import argparse
import json
import os
import subprocess
import sys

import bpy

argv = sys.argv[sys.argv.index("--") + 1:]
parser = argparse.ArgumentParser()
parser.add_argument("--song", required=True)
parser.add_argument("--out", required=True)
ARGS = parser.parse_args(argv)
STATE = {"step": "enable", "ticks": 0, "status": [], "progress": []}


def result(**values):
    print("RESULT " + json.dumps(values), flush=True)


def quit_with(**values):
    result(**values)
    bpy.ops.wm.quit_blender()


def step():
    STATE["ticks"] += 1
    if STATE["ticks"] > 6000:  # 10 minutes
        quit_with(error="timed out")
        return None
    try:
        return _step()
    except Exception as error:  # noqa: BLE001  (the test reads the RESULT line)
        import traceback

        traceback.print_exc()
        quit_with(error=f"{type(error).__name__}: {error}")
        return None


def _step():
    if STATE["step"] == "enable":
        result(enabled=sorted(bpy.ops.preferences.addon_enable(module="blender_latentwalk")))
        from blender_latentwalk.blender import preferences

        result(engine_python_before=preferences.get().engine_python,
               has_preferences=not isinstance(preferences.get(), preferences._Defaults))
        window = bpy.context.window_manager.windows[0]
        with bpy.context.temp_override(window=window, screen=window.screen, area=window.screen.areas[0]):
            result(invoked=sorted(bpy.ops.latentwalk.setup_render_environment("INVOKE_DEFAULT")))
        STATE["step"] = "installing"
    elif STATE["step"] == "installing":
        from blender_latentwalk.blender import environment_setup, jobs, preferences

        job = jobs.running("setup")
        if job is not None:
            line = job.status_line()
            if not STATE["status"] or STATE["status"][-1] != line:
                STATE["status"].append(line)
            return 0.1
        prefs = preferences.get()
        result(status=STATE["status"], engine_python=prefs.engine_python,
               folder=environment_setup.environment_folder())
        STATE["step"] = "render"
    elif STATE["step"] == "render":
        from blender_latentwalk.blender import preferences

        python = preferences.get().engine_python
        made = subprocess.run([python, "-m", "blender_latentwalk.engine", "make-tiny-models", ARGS.out],
                              capture_output=True, text=True, env={k: v for k, v in os.environ.items()
                                                                  if k != "PYTHONPATH"})
        result(tiny_models=made.returncode, tiny_models_log=made.stderr[-2000:])
        scene = bpy.context.scene
        settings = scene.latentwalk
        settings.audio_path = ARGS.song
        result(bake=sorted(bpy.ops.latentwalk.bake()), summary=settings.last_bake_summary)
        settings.walk.model = os.path.join(ARGS.out, "biggan-tiny-UNTRAINED")
        settings.walk.device = "cpu"
        settings.walk.preview_width = 32
        settings.walk.preview_folder = os.path.join(ARGS.out, "preview")
        result(preview=sorted(bpy.ops.latentwalk.preview()))
        frames = sorted(n for n in os.listdir(settings.walk.preview_folder) if n.endswith(".png"))
        quit_with(preview_frames=len(frames))
        return None
    return 0.1


bpy.app.timers.register(step, first_interval=1.0)
