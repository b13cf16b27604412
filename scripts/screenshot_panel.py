"""Screenshots of the Latent Walk sidebar and of Show Curves in the real Blender UI (needs a display, e.g. Xvfb).

    xvfb-run -a -s "-screen 0 1600x1000x24" blender FOLDER/FILE.blend --enable-event-simulate \\
        -P scripts/screenshot_panel.py -- --audio FOLDER/SONG --out-dir docs/screenshots

(Opening a .blend, e.g. one saved by scripts/bake.py, skips the splash screen; a song next to it
is shown as //SONG, so the pictures do not depend on where the files are.)

Bakes the song into the Sequencer's scene, opens the Latent Walk sidebar tab at Blender's default
sidebar width and saves, into --out-dir:

- panel.png: the top of the sidebar (song, bands, Bake Curves / Show Curves), with the Bass band active;
- walk_panel.png and render_panel.png: the sidebar scrolled down to the Walk and Render sub-panels;
- show_curves.png: the window after pressing Show Curves as a click does (the operator invoked from the
  sidebar's button region): the Sequencer above, the new Graph Editor below with its Latent Walk tab;
- graph_editor.png: that Graph Editor maximised (Ctrl Space) with the Sub, Low Mids and Onset curves shown;
- graph_sidebar.png: its sidebar (the narrowest default one) at three scroll positions, side by side.

It prints what Show Curves did as a line ``RESULT {json}`` (the Graph Editor's size, the curves it
draws, the selected keys, the frames and values in view) and the labels that scripts/cut_labels.py
finds cut in every panel drawn at the two default sidebar widths as ``CUT_LABELS {json}``, and
quits; tests/app/test_blender_app.py checks those lines and the log.
"""

import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import bpy  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cut_labels  # noqa: E402


def parse_args():
    argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else []
    parser = argparse.ArgumentParser()
    parser.add_argument("--audio", required=True)
    parser.add_argument("--out-dir", required=True)
    return parser.parse_args(argv)


ARGS = parse_args()
SHOWN_IN_GRAPH_EDITOR = ("latentwalk.bands[0].value", "latentwalk.bands[2].value", "latentwalk.onset")


def window():
    return bpy.context.window_manager.windows[0]


def area_of(kind):
    return max((a for a in window().screen.areas if a.type == kind), key=lambda a: a.width * a.height)


def region_of(area, kind):
    return next(r for r in area.regions if r.type == kind)


def setup():
    import blender_latentwalk
    from blender_latentwalk.blender import compat, operators

    if not hasattr(bpy.types.Scene, "latentwalk"):
        blender_latentwalk.register()
    scene = bpy.context.scene
    audio = os.path.abspath(ARGS.audio)
    scene.latentwalk.audio_path = bpy.path.relpath(audio) if bpy.data.filepath else audio
    scene.latentwalk.add_beat_markers = True
    operators.bake(scene)
    modulation = scene.latentwalk.modulations.add()  # Render > Modulation with one entry, as the tutorial makes
    modulation.target, modulation.curve, modulation.amount = "strength", "band:Bass", 0.4
    if bpy.data.filepath:
        bpy.ops.file.make_paths_relative()  # the song strip shows //song.wav, wherever the test ran
    scene.latentwalk.active_band_index = 1
    screen = window().screen
    sequencer = max(screen.areas, key=lambda a: a.width * a.height)
    sequencer.type = "SEQUENCE_EDITOR"
    sequencer.spaces.active.show_region_ui = True
    compat.show_sidebar_tab(region_of(sequencer, "UI"), "Latent Walk")
    # Without an active strip the Sequencer's own sidebar tabs have nothing to show, so Blender
    # versions that cannot switch tabs from Python (before 4.x) show Latent Walk once it is clicked.
    for strip in compat.all_strips(scene):
        strip.select = False
    scene.sequence_editor.active_strip = None
    scene.frame_set(30)


def capture(name):
    path = os.path.abspath(os.path.join(ARGS.out_dir, name))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with bpy.context.temp_override(window=window(), screen=window().screen, area=window().screen.areas[0]):
        bpy.ops.screen.screenshot(filepath=path)
    if not name.startswith("."):
        print(f"screenshot written: {path}", flush=True)
    return path


def join_sidebar_crops(paths, region, name):
    """One picture of ``region`` (a sidebar) cut from each screenshot, side by side; the inputs after the
    first (hidden files) are removed."""
    import numpy as np

    columns = []
    for path in paths:
        image = bpy.data.images.load(path)
        width, height = image.size
        pixels = np.empty(width * height * 4, dtype=np.float32)
        image.pixels.foreach_get(pixels)
        pixels = pixels.reshape(height, width, 4)  # rows from the bottom, as Blender stores them
        columns.append(pixels[region.y:region.y + region.height, region.x:region.x + region.width])
        bpy.data.images.remove(image)
    gap = np.zeros((region.height, 8, 4), dtype=np.float32)
    gap[..., 3] = 1.0
    joined = np.concatenate([part for column in columns for part in (column, gap)][:-1], axis=1)
    result = bpy.data.images.new("sidebar", joined.shape[1], joined.shape[0], alpha=False)
    result.pixels.foreach_set(joined.ravel())
    path = os.path.abspath(os.path.join(ARGS.out_dir, name))
    result.filepath_raw, result.file_format = path, "PNG"
    result.save()
    bpy.data.images.remove(result)
    for hidden in paths[1:]:
        os.unlink(hidden)
    print(f"screenshot written: {path}", flush=True)


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


DRAWN = set()  # space types whose Latent Walk panel drew since it was last cleared


def watch_panels():
    """Note when a sidebar draws our panel (Blender calls draw only when the panel is visible)."""
    from blender_latentwalk.blender import panels

    def watching(original, space):
        def draw(self, context):
            DRAWN.add(space)
            original(self, context)
        return draw

    for cls in (panels.LATENTWALK_PT_sequencer, panels.LATENTWALK_PT_graph):
        cls.draw = watching(cls.draw, cls.bl_space_type)


def tab_clicks(area):
    """Window positions down a sidebar's tab strip, top first (Blender < 4 cannot pick a tab from Python)."""
    region = region_of(area, "UI")
    x, top = region.x + region.width - 10, region.y + region.height
    return [(x, top - offset) for offset in range(20, min(region.height, 500), 12)]


def open_tab(kind):
    """Steps (for the timer) that click down the sidebar's tab strip until our panel draws there."""
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


def graph_editor_state(scene):
    """What the Graph Editor after Show Curves shows, as the Graph Editor's own context reports it."""
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
    shown = compat.find_fcurve(scene, "latentwalk.bands[1].value")
    values = [shown.evaluate(f) for f in range(scene.frame_start, scene.frame_end + 1)]
    return {"window": [window().width, window().height], "graph": [area.width, area.height],
            "timeline_is_graph": any(a.type == "GRAPH_EDITOR" and a.height < 150 for a in window().screen.areas),
            "types": sorted(a.type for a in window().screen.areas),
            "visible": visible, "selected_channels": selected_channels, "selected_keys": selected_keys,
            "view": view_range(area), "frames": [scene.frame_start, scene.frame_end],
            "values": [min(values), max(values)]}


def press_show_curves():
    """Show Curves as a click on the sidebar button runs it: invoked in the Sequencer's sidebar region."""
    sequencer = area_of("SEQUENCE_EDITOR")
    with bpy.context.temp_override(window=window(), screen=window().screen, area=sequencer,
                                   region=region_of(sequencer, "UI")):
        return sorted(bpy.ops.latentwalk.show_curves("INVOKE_DEFAULT"))


def maximise_graph_editor(scene):
    from blender_latentwalk.blender import compat

    for fcurve in compat.fcurves_of(scene):
        fcurve.hide = fcurve.data_path not in SHOWN_IN_GRAPH_EDITOR
        fcurve.select = False
    area = area_of("GRAPH_EDITOR")
    with bpy.context.temp_override(window=window(), screen=window().screen, area=area,
                                   region=region_of(area, "WINDOW")):
        bpy.ops.screen.screen_full_area()
    area = area_of("GRAPH_EDITOR")
    with bpy.context.temp_override(window=window(), screen=window().screen, area=area,
                                   region=region_of(area, "WINDOW")):
        bpy.ops.graph.view_all()


def steps():
    """The whole session, one timer step per yield (the value: seconds until the next)."""
    scene = bpy.context.scene
    setup()
    watch_panels()
    from blender_latentwalk.blender import panels, walk

    cut_labels.watch([getattr(panels, name) for name in dir(panels) if name.startswith("LATENTWALK_PT_")],
                     [panels.LATENTWALK_UL_bands, walk.LATENTWALK_UL_classes])
    yield 1.0
    yield from open_tab("SEQUENCE_EDITOR")
    yield 0.5
    capture("panel.png")
    sidebar = region_of(area_of("SEQUENCE_EDITOR"), "UI")
    scroll(sidebar, 12)
    yield 0.5
    capture("walk_panel.png")
    scroll(sidebar, 40)
    yield 0.5
    capture("render_panel.png")
    scroll(sidebar, -60)
    yield 0.5
    result = {"show_curves": press_show_curves()}
    yield 1.0
    result.update(graph_editor_state(scene))
    print("RESULT " + json.dumps(result), flush=True)
    yield from open_tab("GRAPH_EDITOR")
    yield 0.5
    capture("show_curves.png")
    maximise_graph_editor(scene)
    yield 1.0
    capture("graph_editor.png")
    # The whole panel in the Graph Editor's sidebar, the narrowest default one: three scroll positions.
    sidebar = region_of(area_of("GRAPH_EDITOR"), "UI")
    parts = [os.path.join(ARGS.out_dir, "graph_editor.png")]
    for index, steps in ((1, 12), (2, 40)):
        scroll(sidebar, steps)
        yield 0.5
        parts.append(capture(f".graph_sidebar_{index}.png"))
    join_sidebar_crops(parts, sidebar, "graph_sidebar.png")
    print("CUT_LABELS " + json.dumps(cut_labels.FOUND), flush=True)


STEPS = steps()


def step():
    try:
        return next(STEPS)
    except StopIteration:
        bpy.ops.wm.quit_blender()
        return None
    except Exception:
        import traceback

        traceback.print_exc()
        bpy.ops.wm.quit_blender()
        return None


bpy.app.timers.register(step, first_interval=1.0)
