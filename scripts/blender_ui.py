"""Driving Blender's real UI from a script, as a person's clicks do (shared by the screenshot and tutorial
scripts that run under Xvfb with ``--enable-event-simulate``).

Positions are window pixels from the bottom left, as Blender's regions give them.
"""

import json
import os

import bpy


def result(**values):
    """One ``RESULT {json}`` line: what a step did, for the test that runs the script (tests/app/ui_results.py)."""
    print("RESULT " + json.dumps(values), flush=True)


def window():
    return bpy.context.window_manager.windows[0]


def area_of(kind):
    """The largest area of ``kind`` ("SEQUENCE_EDITOR", "GRAPH_EDITOR", ...) in the first window."""
    return max((a for a in window().screen.areas if a.type == kind), key=lambda a: a.width * a.height)


def region_of(area, kind):
    return next(r for r in area.regions if r.type == kind)


def override(area, region_kind="WINDOW"):
    """Keyword arguments for ``bpy.context.temp_override``: a button pressed in ``area``'s region."""
    return dict(window=window(), screen=window().screen, area=area, region=region_of(area, region_kind))


def capture(path, announce=True):
    """A screenshot of the whole window into ``path``."""
    path = os.path.abspath(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with bpy.context.temp_override(window=window(), screen=window().screen, area=window().screen.areas[0]):
        bpy.ops.screen.screenshot(filepath=path)
    if announce:
        print(f"screenshot written: {path}", flush=True)
    return path


def mouse_over(region):
    x, y = region.x + region.width // 2, region.y + region.height // 2
    window().event_simulate("MOUSEMOVE", "NOTHING", x=x, y=y)
    return x, y


def scroll(region, steps):
    """Wheel over a region: positive steps scroll down."""
    x, y = mouse_over(region)
    for _ in range(abs(steps)):
        window().event_simulate("WHEELDOWNMOUSE" if steps > 0 else "WHEELUPMOUSE", "PRESS", x=x, y=y)
    window().event_simulate("MOUSEMOVE", "NOTHING", x=2, y=2)  # no button highlighted under the mouse


def click(x, y):
    window().event_simulate("MOUSEMOVE", "NOTHING", x=x, y=y)
    window().event_simulate("LEFTMOUSE", "PRESS", x=x, y=y)
    window().event_simulate("LEFTMOUSE", "RELEASE", x=x, y=y)


def press(key, x=None, y=None):
    """A key pressed and released (e.g. "RET" to confirm a dialog, "ESC"), the mouse at x, y if given."""
    if x is not None:
        window().event_simulate("MOUSEMOVE", "NOTHING", x=x, y=y)
    window().event_simulate(key, "PRESS")
    window().event_simulate(key, "RELEASE")


DRAWN = set()  # space types whose Latent Walk panel drew since it was last cleared


def watch_panels(panel_classes):
    """Note when a sidebar draws one of ``panel_classes`` (Blender calls draw only when it is visible)."""

    def watching(original, space):
        def draw(self, context):
            DRAWN.add(space)
            original(self, context)
        return draw

    for cls in panel_classes:
        cls.draw = watching(cls.draw, cls.bl_space_type)


def tab_clicks(area):
    """Window positions down a sidebar's tab strip, top first (Blender < 4 cannot pick a tab from Python)."""
    region = region_of(area, "UI")
    x, top = region.x + region.width - 10, region.y + region.height
    return [(x, top - offset) for offset in range(20, min(region.height, 500), 12)]


def open_tab(kind):
    """Timer steps (seconds to wait) that click down the sidebar's tab strip until our panel draws there."""
    if not bpy.app.use_event_simulate:
        return
    DRAWN.discard(kind)
    yield 0.5
    for position in tab_clicks(area_of(kind)):
        if kind in DRAWN:
            return
        click(*position)
        yield 0.4


def view_range(area):
    """(first frame, last frame, lowest value, highest value) the Graph Editor shows."""
    region = region_of(area, "WINDOW")
    left, bottom = region.view2d.region_to_view(0, 0)
    right, top = region.view2d.region_to_view(region.width, region.height)
    return [left, right, bottom, top]


def graph_editor_state(scene, shown_path):
    """What the Graph Editor after Show Curves shows, as the Graph Editor's own context reports it; ``shown_path``:
    the curve it should show (its values' range is reported)."""
    from blender_latentwalk.blender import compat
    area = area_of("GRAPH_EDITOR")
    with bpy.context.temp_override(window=window(), screen=window().screen, area=area,
                                   region=region_of(area, "WINDOW")):
        visible = [fc.data_path for fc in bpy.context.visible_fcurves]
        selected_channels = [fc.data_path for fc in bpy.context.selected_visible_fcurves]
    selected_keys = 0
    for fcurve in compat.fcurves_of(scene):
        for key in fcurve.keyframe_points:
            selected_keys += key.select_control_point or key.select_left_handle or key.select_right_handle
    shown = compat.find_fcurve(scene, shown_path)
    values = [shown.evaluate(f) for f in range(scene.frame_start, scene.frame_end + 1)]
    return {"window": [window().width, window().height], "graph": [area.width, area.height],
            "timeline_is_graph": any(a.type == "GRAPH_EDITOR" and a.height < 150 for a in window().screen.areas),
            "types": sorted(a.type for a in window().screen.areas),
            "visible": visible, "selected_channels": selected_channels, "selected_keys": selected_keys,
            "view": view_range(area), "frames": [scene.frame_start, scene.frame_end],
            "values": [min(values), max(values)]}


def reports():
    """Every report Blender showed in this session (the Info editor's lines, Python tracebacks included), as
    text: the smallest area becomes an Info editor for a moment, and its reports are copied."""
    area = min(window().screen.areas, key=lambda a: a.width * a.height)
    kind = area.type
    area.type = "INFO"
    try:
        with bpy.context.temp_override(**override(area)):
            bpy.ops.info.select_all(action="SELECT")
            bpy.ops.info.report_copy()
    finally:
        area.type = kind
    return bpy.context.window_manager.clipboard


def run_steps(steps):
    """Run the generator ``steps`` on Blender's timer (each yield: seconds until the next step), then quit;
    a step that raises prints its traceback and quits."""

    def step():
        try:
            return next(steps)
        except StopIteration:
            bpy.ops.wm.quit_blender()
            return None
        except Exception:
            import traceback

            traceback.print_exc()
            bpy.ops.wm.quit_blender()
            return None

    bpy.app.timers.register(step, first_interval=1.0, persistent=True)  # File > New must not end it
