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
from blender_ui import area_of, open_tab, region_of, run_steps, scroll, watch_panels, window  # noqa: E402
import blender_ui  # noqa: E402


def capture(name):
    """A screenshot into --out-dir (a hidden file, for a part of a picture, is not announced)."""
    return blender_ui.capture(os.path.join(ARGS.out_dir, name), announce=not name.startswith("."))


def parse_args():
    argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else []
    parser = argparse.ArgumentParser()
    parser.add_argument("--audio", required=True)
    parser.add_argument("--out-dir", required=True)
    return parser.parse_args(argv)


ARGS = parse_args()
SHOWN_IN_GRAPH_EDITOR = ("latentwalk.bands[0].value", "latentwalk.bands[2].value", "latentwalk.onset")


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
    from blender_latentwalk.blender import panels, walk

    watch_panels([panels.LATENTWALK_PT_sequencer, panels.LATENTWALK_PT_graph])

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
    result.update(blender_ui.graph_editor_state(scene, "latentwalk.bands[1].value"))
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


run_steps(steps())
