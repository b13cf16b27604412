"""What Show Curves leaves for the artist, on the bpy wheel (5.0.1 in .venv, 4.2 LTS in .venv-bpy42).

The Graph Editor itself (its size, what it draws) is tested in Debian's Blender 3.4.1 under Xvfb:
tests/app/test_tutorial_app.py (the Video Editing workspace) and tests/app/test_blender_app.py (General).
"""

import bpy
import numpy as np

from blender_latentwalk.blender import compat, curves, operators

SELECT_FLAGS = ("select_control_point", "select_left_handle", "select_right_handle")


def selected_keys(fcurve):
    count = len(fcurve.keyframe_points)
    total = 0
    for flag in SELECT_FLAGS:
        flags = np.empty(count, dtype=bool)
        fcurve.keyframe_points.foreach_get(flag, flags)
        total += int(flags.sum())
    return total


def test_a_bake_leaves_no_key_selected_so_g_moves_nothing(scene, song):
    scene.latentwalk.audio_path = song
    assert bpy.ops.latentwalk.bake() == {"FINISHED"}
    ours = operators.our_fcurves(scene)
    # 25 curves: a key per frame, but the Section curve's keys, one per section (one here: no structure found)
    assert len(ours) == 25 and all(len(fc.keyframe_points) == (1 if fc.data_path == "latentwalk.section" else 120)
                                   for fc in ours)
    assert [selected_keys(fc) for fc in ours] == [0] * 25
    # A re-bake after the artist selected keys writes new, unselected ones.
    bass = compat.find_fcurve(scene, "latentwalk.bands[1].value")
    bass.keyframe_points.foreach_set("select_control_point", np.ones(120, dtype=bool))
    scene.latentwalk.bands[1].gain = 0.5
    assert bpy.ops.latentwalk.bake(overwrite_edited=True) == {"FINISHED"}
    assert selected_keys(compat.find_fcurve(scene, "latentwalk.bands[1].value")) == 0


def test_show_curves_shows_only_the_active_band_and_that_is_no_edit(scene, song):
    scene.latentwalk.audio_path = song
    bpy.ops.latentwalk.bake()
    scene.latentwalk.active_band_index = 2
    shown = operators.active_curve(scene)
    assert shown.data_path == "latentwalk.bands[2].value"
    shown.group.show_expanded_graph = False
    assert operators.show_only_curve(scene, shown) == 24
    fcurves = list(compat.fcurves_of(scene))
    assert [fc.data_path for fc in fcurves if not fc.hide] == ["latentwalk.bands[2].value"]
    assert [fc.data_path for fc in fcurves if fc.select] == ["latentwalk.bands[2].value"]
    assert shown.group.show_expanded_graph
    # Hiding and selecting channels is not editing: the next bake replaces every curve without asking.
    assert curves.edited_targets(scene, curves.targets_for(scene.latentwalk)) == []
    # Another band, another curve; the one shown before is hidden again.
    scene.latentwalk.active_band_index = 0
    operators.show_only_curve(scene, operators.active_curve(scene))
    assert [fc.data_path for fc in fcurves if not fc.hide] == ["latentwalk.bands[0].value"]


def test_show_curves_without_bands_shows_the_first_baked_curve(scene, song):
    scene.latentwalk.audio_path = song
    bpy.ops.latentwalk.bake()
    scene.latentwalk.active_band_index = -1
    assert operators.active_curve(scene).data_path == "latentwalk.bands[0].value"


def test_show_curves_opens_a_graph_editor_of_working_size_with_the_active_band(scene, song):
    """The bpy module has a window without a display: the operator's screen logic still runs."""
    scene.latentwalk.audio_path = song
    bpy.ops.latentwalk.bake()
    scene.latentwalk.active_band_index = 1
    screen = bpy.context.window.screen
    before = sorted(a.type for a in screen.areas)
    assert bpy.ops.latentwalk.show_curves() == {"FINISHED"}
    graphs = [a for a in screen.areas if a.type == "GRAPH_EDITOR"]
    assert len(graphs) == 1 and graphs[0].ui_type == "FCURVES"
    width = max(a.x + a.width for a in screen.areas)
    height = max(a.y + a.height for a in screen.areas)
    assert graphs[0].width >= 0.4 * width and graphs[0].height >= 0.4 * height
    # An area was split: every editor there before is still there (the Timeline stays a Timeline).
    assert sorted(a.type for a in screen.areas if a != graphs[0]) == before
    assert [fc.data_path for fc in compat.fcurves_of(scene) if not fc.hide] == ["latentwalk.bands[1].value"]
    # Pressed again, it reuses that Graph Editor.
    scene.latentwalk.active_band_index = 3
    assert bpy.ops.latentwalk.show_curves() == {"FINISHED"}
    assert len([a for a in screen.areas if a.type == "GRAPH_EDITOR"]) == 1
    assert [fc.data_path for fc in compat.fcurves_of(scene) if not fc.hide] == ["latentwalk.bands[3].value"]


def test_the_video_editing_workspaces_sequencer_is_halved_side_by_side():
    """Blender 3.4.1's Video Editing workspace at 1600x1000: the Sequencer is 1600x470 below a 453-pixel row
    (measured under Xvfb), so its bottom half (235) would be under 40% of the window; its right half is not."""
    from types import SimpleNamespace as Box

    window = Box(width=1600, height=1000)
    sequencer = Box(x=0, y=49, width=1600, height=470)
    screen = Box(areas=[sequencer, Box(x=0, y=520, width=1600, height=453)])
    assert operators._split_for_graph_editor(sequencer, window, screen) == "VERTICAL"
    # The General workspace's 3D Viewport (1600x850 or so): its bottom half keeps the curves below it, in time.
    viewport = Box(x=0, y=120, width=1250, height=850)
    assert operators._split_for_graph_editor(viewport, window, Box(areas=[viewport])) == "HORIZONTAL"
