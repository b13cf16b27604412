"""The song's structure in the real Blender UI (run by test_sections_app.py under Xvfb).

    xvfb-run -a -s "-screen 0 1600x1000x24" blender --factory-startup --enable-event-simulate --python-exit-code 1 \\
        -P tests/app/sections_ui.py -- --song SONG --blend FOLDER/sections.blend --shots SHOTS

File > New > Video Editing, Save As, the Song (a song with a form: A B A C, a drop), Bake Curves pressed in the
sidebar; the section and drop markers in the Timeline, the Sequencer and, after Show Curves, the Graph Editor
(the Section, Bar and Drop curves shown); the Sections panel's picture. Then a look's prompt typed for the second
label, Use Stand-in Models, the frame range around that label's first marker, Render Frames (BigGAN + img2img
stand-ins): the plan the worker rendered switches prompt on the marker's frame. Then a marker moved by hand, Bake
Curves again (its dialog confirmed with Return: the markers are kept), and Snap Markers to Bars.

The steps are tutorial_ui.py's helpers. Prints ``RESULT {json}`` lines, ``CUT_LABELS {json}`` and
``REPORTS {json}`` as tutorial_ui.py does.
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "scripts"))  # blender_ui, cut_labels

import bpy  # noqa: E402

argv = sys.argv[sys.argv.index("--") + 1:]
parser = argparse.ArgumentParser()
for name in ("--song", "--blend", "--shots"):
    parser.add_argument(name, required=True)
ARGS = parser.parse_args(argv)
LOOK_PROMPT = "a forest at dawn"
BASE_PROMPT = "a volcano"
TIMEOUT_S = 600

import tutorial_ui  # noqa: E402 (its helpers: it walks the tutorial only when run by -P)
import blender_ui  # noqa: E402
from blender_ui import area_of, override, region_of, result, view_range, window  # noqa: E402
from tutorial_ui import confirm_dialog, scroll_sidebar, sequencer, shot, sidebar_click, wait_for_jobs  # noqa: E402


def structure_markers(scene):
    from blender_latentwalk.engine.walk.prompts import is_structure_marker

    return sorted([m.frame, m.name] for m in scene.timeline_markers if is_structure_marker(m.name))


def shown_in(area, frames):
    """Whether ``area`` draws markers and its view spans ``frames`` (first, last)."""
    first, last, _low, _high = view_range(area)
    return {"show_markers": bool(area.spaces.active.show_markers),
            "in_view": bool(first <= frames[0] and frames[1] <= last)}


def bake_and_look_at_the_markers():
    from blender_latentwalk.blender import compat, operators

    scene = bpy.context.scene
    result(bake=sidebar_click(bpy.ops.latentwalk.bake))
    yield from wait_for_jobs()
    markers = structure_markers(scene)
    result(baked=scene.latentwalk.last_bake_summary, markers=markers,
           looks=[look.label for look in scene.latentwalk.section_looks],
           song_frames=[scene.frame_start, scene.frame_end])
    frames = [markers[0][0], markers[-1][0]] if markers else [scene.frame_start, scene.frame_end]
    timeline = min((a for a in window().screen.areas if a.type == "DOPESHEET_EDITOR"), key=lambda a: a.height)
    with bpy.context.temp_override(**override(timeline)):  # Home over the Timeline: the whole song
        bpy.ops.action.view_all()
    strips = sequencer()
    with bpy.context.temp_override(**override(strips)):  # Home over the strips
        bpy.ops.sequencer.view_all()
    # Show Curves: the Graph Editor; then the Section, Bar and Drop curves shown in it (Alt+H, then H) and framed.
    result(show_curves=sidebar_click(bpy.ops.latentwalk.show_curves))
    yield 1.0
    shown = [compat.find_fcurve(scene, f"latentwalk.{name}") for name in ("section", "bar", "drop")]
    for fcurve in compat.fcurves_of(scene):
        fcurve.hide = fcurve not in shown
        fcurve.select = fcurve == shown[0]
    graph = area_of("GRAPH_EDITOR")
    with bpy.context.temp_override(**override(graph)):
        bpy.ops.graph.view_all()
    yield 0.5
    with bpy.context.temp_override(window=window(), screen=window().screen, area=graph,
                                   region=region_of(graph, "WINDOW")):
        visible = [fc.data_path for fc in bpy.context.visible_fcurves]
    result(timeline=shown_in(timeline, frames), sequencer=shown_in(strips, frames), graph=shown_in(graph, frames),
           graph_curves=visible, section_interpolation=sorted({k.interpolation for k in shown[0].keyframe_points}),
           section_keys=[[round(k.co.x), round(k.co.y)] for k in shown[0].keyframe_points],
           drop_peaks=[frame for frame in range(scene.frame_start, scene.frame_end + 1)
                       if shown[2].evaluate(frame) >= 1.0 - 1e-4])
    assert operators.active_curve(scene) is not None
    # The second label's look: its row picked in the Sections panel's list, a prompt typed into its Prompt field.
    settings = scene.latentwalk
    second = next(name for _frame, name in markers if name.startswith("section: ") and name != markers[0][1])
    settings.active_section_look_index = [look.label for look in settings.section_looks].index(
        second[len("section: "):])
    settings.section_looks[settings.active_section_look_index].prompt = LOOK_PROMPT
    scroll_sidebar(60)  # down to the Sections panel, under Render
    yield 1.0
    shot("sections.png")
    scroll_sidebar(-80)


def look_and_render():
    """A prompt for the second label's look, the stand-in models, Render Frames around that label's first marker."""
    import numpy as np

    from blender_latentwalk.blender import encode, output, sections
    from blender_latentwalk.engine.walk.plan import RenderPlan

    scene = bpy.context.scene
    settings = scene.latentwalk
    labels = [look.label for look in settings.section_looks]
    marked = sections.section_markers(scene)
    second = next(label for _frame, label in marked if label != marked[0][1])  # the first label after the first
    switch = next(frame for frame, label in marked if label == second)
    look = settings.section_looks[labels.index(second)]  # its prompt typed in the first step
    settings.diffusion.prompt, settings.diffusion.prompt_blend_ms = BASE_PROMPT, 0.0
    result(stand_ins=sidebar_click(bpy.ops.latentwalk.use_stand_in_models))
    yield from wait_for_jobs()
    settings.walk.device = "cpu"
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 64, 48, 100
    scene.frame_start, scene.frame_end = switch - 4, switch + 3  # eight frames, the switch in the middle
    result(look=[look.label, look.prompt], switch_frame=switch, render_range=[scene.frame_start, scene.frame_end])
    result(render=sidebar_click(bpy.ops.latentwalk.render))
    yield from wait_for_jobs()
    folder = output.resolve_folder(settings.diffusion.output_folder, "Output folder", scene)
    plan = RenderPlan.load(os.path.join(folder, "plan.npz"))  # what the worker was asked to render
    index = plan.settings["prompts"].index(LOOK_PROMPT) if LOOK_PROMPT in plan.settings["prompts"] else None
    weights = plan.prompt_weights[:, index] if index is not None else np.zeros(plan.n_frames)
    first_look_frame = plan.frame_start + int(np.argmax(weights > 0)) if weights.any() else None
    checked = encode.last_check(scene)
    result(plan_prompts=plan.settings["prompts"], first_look_frame=first_look_frame,
           look_weight_around_switch=[float(w) for w in weights[switch - plan.frame_start - 1:
                                                                 switch - plan.frame_start + 1]],
           frames_written=len([n for n in os.listdir(folder) if n.endswith(".png")]),
           frames_status=checked.status.summary() if checked else None)
    scroll_sidebar(40)
    yield 1.0
    shot("sections_after_render.png")
    scroll_sidebar(-80)


def moved_marker_rebake_and_snap():
    """A section marker moved by hand; Bake Curves again (its dialog lists the markers; Return keeps them); then a
    prompt marker added off the bar line and Snap Markers to Bars."""
    from blender_latentwalk.blender import sections

    scene = bpy.context.scene
    scene.frame_start = 1
    moved = next(m for m in scene.timeline_markers if m.name.startswith("section:") and m.frame > 1)
    moved.frame += 5
    result(moved_to=moved.frame)
    result(rebake=sidebar_click(bpy.ops.latentwalk.bake))
    yield 0.5
    shot("sections_rebake_dialog.png")
    confirm_dialog()
    yield from wait_for_jobs()
    result(markers_after_rebake=structure_markers(scene))
    bars = [int(frame) for frame in sections.bar_frames(scene)]
    city = scene.timeline_markers.new("prompt: a city at night", frame=bars[2] + 3)  # M: the new one is selected
    for marker in scene.timeline_markers:
        marker.select = marker == city
    result(snap=sidebar_click(bpy.ops.latentwalk.snap_markers_to_bars))
    result(city_snapped_to=city.frame, bar_near_city=bars[2], moved_after_snap=moved.frame)


PARTS = (bake_and_look_at_the_markers, look_and_render, moved_marker_rebake_and_snap)
blender_ui.run_steps(tutorial_ui.walk_parts(PARTS, TIMEOUT_S))
