"""Screenshot the Latent Walk sidebar in the real Blender UI (needs a display, e.g. Xvfb).

    xvfb-run -a -s "-screen 0 1600x1000x24" blender FILE.blend --enable-event-simulate \\
        -P scripts/screenshot_panel.py -- --audio SONG --out docs/screenshots/panel.png \\
        [--out-render docs/screenshots/render_panel.png]

(Opening a .blend, e.g. one saved by scripts/bake.py, skips the splash screen.)

Bakes the song, opens the Graph Editor with the Latent Walk sidebar tab and the
curves shown, saves a PNG of the whole window, and quits. The test suite runs it
and checks the log for Python errors.
"""

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import bpy  # noqa: E402


def parse_args():
    argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else []
    parser = argparse.ArgumentParser()
    parser.add_argument("--audio", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--out-render", help="also scroll the sidebar down to the Render panel and save this PNG")
    return parser.parse_args(argv)


ARGS = parse_args()


def setup():
    import blender_latentwalk
    from blender_latentwalk.blender import compat, operators

    blender_latentwalk.register()
    scene = bpy.context.scene
    scene.latentwalk.audio_path = os.path.abspath(ARGS.audio)
    scene.latentwalk.add_beat_markers = True
    operators.bake(scene)
    scene.latentwalk.active_band_index = 1

    window = bpy.context.window_manager.windows[0]
    screen = window.screen
    areas = sorted(screen.areas, key=lambda a: a.width * a.height, reverse=True)
    sequencer, graph = areas[0], areas[1]
    graph.type, graph.ui_type = "GRAPH_EDITOR", "FCURVES"
    sequencer.type = "SEQUENCE_EDITOR"
    for area in (graph, sequencer):
        area.spaces.active.show_region_ui = True
        for region in area.regions:
            if region.type == "UI":
                compat.show_sidebar_tab(region, "Latent Walk")
    with bpy.context.temp_override(window=window, screen=screen, area=graph):
        bpy.ops.latentwalk.show_curves()
    # Without an active F-curve or strip the editors' own sidebar tabs (F-Curve,
    # Strip...) have nothing to show, so Blender versions that cannot switch tabs
    # from Python (before 4.x) still open on Latent Walk.
    for fcurve in compat.fcurves_of(scene):
        fcurve.select = False
    for strip in compat.all_strips(scene):
        strip.select = False
    scene.sequence_editor.active_strip = None
    scene.frame_set(30)
    return None


def capture(path):
    window = bpy.context.window_manager.windows[0]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with bpy.context.temp_override(window=window, screen=window.screen, area=window.screen.areas[0]):
        bpy.ops.screen.screenshot(filepath=os.path.abspath(path))
    print(f"screenshot written: {os.path.abspath(path)}")


def scroll_sidebar_down():
    """Wheel down over the sequencer sidebar, so the Render sub-panel comes into view."""
    window = bpy.context.window_manager.windows[0]
    area = next(a for a in window.screen.areas if a.type == "SEQUENCE_EDITOR")
    region = next(r for r in area.regions if r.type == "UI")
    x, y = region.x + region.width // 2, region.y + region.height // 2
    window.event_simulate("MOUSEMOVE", "NOTHING", x=x, y=y)
    for _ in range(40):
        window.event_simulate("WHEELDOWNMOUSE", "PRESS", x=x, y=y)


DRAWN = {"sidebar": False}


def watch_sidebar_panel():
    """Note when the sequencer sidebar draws our panel (Blender calls draw only when visible)."""
    from blender_latentwalk.blender.panels import LATENTWALK_PT_sequencer

    original = LATENTWALK_PT_sequencer.draw

    def draw(self, context):
        DRAWN["sidebar"] = True
        original(self, context)

    LATENTWALK_PT_sequencer.draw = draw


def tab_clicks():
    """Window positions down the sequencer sidebar's tab strip, top first."""
    window = bpy.context.window_manager.windows[0]
    area = next(a for a in window.screen.areas if a.type == "SEQUENCE_EDITOR")
    region = next(r for r in area.regions if r.type == "UI")
    x = region.x + region.width - 10
    top = region.y + region.height
    return [(x, top - offset) for offset in range(20, min(region.height, 500), 12)]


def click(x, y):
    window = bpy.context.window_manager.windows[0]
    window.event_simulate("MOUSEMOVE", "NOTHING", x=x, y=y)
    window.event_simulate("LEFTMOUSE", "PRESS", x=x, y=y)
    window.event_simulate("LEFTMOUSE", "RELEASE", x=x, y=y)


STATE = {"step": 0, "clicks": None}


def step():
    """Timer: set up, then (Blender < 4 cannot pick a sidebar tab from Python) click down
    the tab strip until our panel draws, then take the screenshot."""
    if STATE["step"] == 0:
        setup()
        watch_sidebar_panel()
        STATE["step"] = 1
        return 1.0
    if STATE["step"] == 2:
        capture(ARGS.out_render)
        bpy.ops.wm.quit_blender()
        return None
    if DRAWN["sidebar"] or not STATE["clicks"] and STATE["clicks"] is not None:
        capture(ARGS.out)
        if ARGS.out_render and bpy.app.use_event_simulate:
            scroll_sidebar_down()
            STATE["step"] = 2
            return 0.5
        bpy.ops.wm.quit_blender()
        return None
    if STATE["clicks"] is None:
        STATE["clicks"] = tab_clicks() if bpy.app.use_event_simulate else []
        DRAWN["sidebar"] = False
        return 0.5
    click(*STATE["clicks"].pop(0))
    return 0.4


bpy.app.timers.register(step, first_interval=1.0)
