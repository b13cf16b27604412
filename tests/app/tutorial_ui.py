"""docs/tutorial.md, click by click, in the real Blender UI (run by test_tutorial_app.py under Xvfb).

    xvfb-run -a -s "-screen 0 1600x1000x24" blender --factory-startup --enable-event-simulate \\
        -P tests/app/tutorial_ui.py -- --song SONG --blend FOLDER/tutorial.blend --shots docs/screenshots \\
        [--only-show-curves]

Each tutorial step as a person does it: File > New > Video Editing, the sidebar's Latent Walk tab,
Save As, the Song, Bake Curves and Show Curves pressed in the sidebar (invoked, not executed), the
Mids channel clicked in the Graph Editor's channel list, a Noise modifier added from its sidebar, a
re-bake confirmed in its dialog with Return, a driver on a cube, the Turbo preset and a modulation,
Use Stand-in Models, Preview Walk, Render Frames stopped with Esc and resumed, Encode Video, then the
frame rate changed and Re-bake pressed in the "out of date" box.

Prints ``RESULT {json}`` lines (what each step did), ``CUT_LABELS {json}`` (scripts/cut_labels.py over
every panel state drawn) and ``REPORTS {json}`` (every report the UI showed), writes the tutorial's
pictures into --shots, and quits. A step that raises prints its traceback (the test fails on it).
"""

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import bpy  # noqa: E402

import blender_ui  # noqa: E402
import cut_labels  # noqa: E402
from blender_ui import area_of, click, open_tab, override, press, region_of, result, window  # noqa: E402

argv = sys.argv[sys.argv.index("--") + 1:]
parser = argparse.ArgumentParser()
parser.add_argument("--song", required=True)
parser.add_argument("--blend", required=True)
parser.add_argument("--shots", required=True)
parser.add_argument("--only-show-curves", action="store_true")
ARGS, _ = parser.parse_known_args(argv)  # another UI script importing these helpers has flags of its own
MIDS = "latentwalk.bands[3].value"  # Sub, Bass, Low Mids, Mids: the fourth default band
BASS = "latentwalk.bands[1].value"
TIMEOUT_S = 900


def shot(name):
    bpy.ops.file.make_paths_relative()  # the strips show //song.wav, wherever the test ran
    return blender_ui.capture(os.path.join(ARGS.shots, name))


def sequencer():
    """The Sequencer's strips area (not the Video Editing workspace's preview, also a SEQUENCE_EDITOR)."""
    return max((a for a in window().screen.areas if a.type == "SEQUENCE_EDITOR"
                and a.spaces.active.view_type == "SEQUENCER"), key=lambda a: a.width * a.height)


def sidebar_click(operator, *args, **kwargs):
    """``operator`` as its button in the Sequencer's Latent Walk sidebar runs it: invoked in that region."""
    with bpy.context.temp_override(**override(sequencer(), "UI")):
        return sorted(operator("INVOKE_DEFAULT", *args, **kwargs))


def wait_for_jobs(limit_s=600):
    """Timer steps until no job of ours runs (a bake, preview, render, encode)."""
    from blender_latentwalk.blender import jobs

    started = time.monotonic()
    yield 0.3
    while jobs.busy():
        if time.monotonic() - started > limit_s:
            raise TimeoutError("a job did not end")
        yield 0.3


def confirm_dialog():
    """Return pressed over the dialog a button opened (it opens under the mouse)."""
    press("RET")


def scroll_sidebar(steps):
    """The Sequencer's sidebar scrolled ``steps`` wheel steps down (negative: up), as a picture needs."""
    blender_ui.scroll(region_of(sequencer(), "UI"), steps)


def graph_context(region="WINDOW"):
    return override(area_of("GRAPH_EDITOR"), region)


def walk_parts(parts, timeout_s):
    """A UI walk of its own (stylegan_ui.py, sections_ui.py): the Video Editing file, each part in turn (the time
    after each in a RESULT line), the .blend saved, then the CUT_LABELS and REPORTS lines its test reads."""
    started = time.monotonic()
    yield from new_video_editing_file()
    for part in parts:
        yield from part()
        result(**{f"seconds_after_{part.__name__}": round(time.monotonic() - started, 1)})
    bpy.ops.wm.save_mainfile()
    print("CUT_LABELS " + json.dumps(cut_labels.FOUND), flush=True)
    print("REPORTS " + json.dumps(blender_ui.reports()), flush=True)
    if time.monotonic() - started > timeout_s:
        result(error="timed out")


def new_video_editing_file():
    """File > New > Video Editing, the add-on registered, the sidebar's Latent Walk tab open, Save As."""
    bpy.ops.wm.read_homefile(app_template="Video_Editing")
    yield 1.0
    import blender_latentwalk
    from blender_latentwalk.blender import panels, walk

    if not hasattr(bpy.types.Scene, "latentwalk"):
        blender_latentwalk.register()
    blender_ui.watch_panels([panels.LATENTWALK_PT_sequencer, panels.LATENTWALK_PT_graph])
    cut_labels.watch([getattr(panels, name) for name in dir(panels) if name.startswith("LATENTWALK_PT_")],
                     [panels.LATENTWALK_UL_bands, walk.LATENTWALK_UL_classes])
    strips = sequencer()
    strips.spaces.active.show_region_ui = True  # N
    yield 0.5
    yield from open_tab("SEQUENCE_EDITOR")
    bpy.ops.wm.save_as_mainfile(filepath=ARGS.blend)
    bpy.context.scene.latentwalk.audio_path = bpy.path.relpath(ARGS.song)  # typed into the Song field: //song.wav
    result(workspace=bpy.context.workspace.name, window=[window().width, window().height])


def bake_and_show_curves():
    """Step 2: Bake Curves, then Show Curves for the active band, then for Mids."""
    scene = bpy.context.scene
    result(bake=sidebar_click(bpy.ops.latentwalk.bake))
    yield from wait_for_jobs()
    result(baked=scene.latentwalk.last_bake_summary)
    scene.latentwalk.active_band_index = 1  # Bass picked in the band list
    result(show_curves=sidebar_click(bpy.ops.latentwalk.show_curves))
    yield 1.0
    result(show_curves_state=blender_ui.graph_editor_state(scene, BASS))
    yield from open_tab("GRAPH_EDITOR")
    yield 0.5
    shot("tutorial_show_curves.png")


def click_channel(data_path):
    """Click down the Graph Editor's channel list until ``data_path``'s channel is the one selected (a click
    on a channel's name also makes it the active one, which the sidebar's Modifiers tab edits)."""
    from blender_latentwalk.blender import compat

    channels = region_of(area_of("GRAPH_EDITOR"), "CHANNELS")
    x = channels.x + 110  # on the names, right of every row's eye and checkbox icons
    def selected():
        return [fc.data_path for fc in compat.fcurves_of(bpy.context.scene) if fc.select]

    for y in range(channels.y + channels.height - 12, channels.y + 12, -10):
        before = selected()
        click(x, y)
        yield 0.2
        if selected() == [data_path] and before != [data_path]:  # this click picked it
            return
    raise AssertionError(f"no channel of {data_path} to click in the Graph Editor")


def noise_modifier_and_rebake():
    """Step 3: Mids shown, its channel clicked, Add Modifier > Noise, then Bake Curves again: the dialog
    lists the edited curve; Return keeps it."""
    from blender_latentwalk.blender import compat

    scene = bpy.context.scene
    scene.latentwalk.active_band_index = 3  # Mids picked in the band list
    result(show_mids=sidebar_click(bpy.ops.latentwalk.show_curves))
    yield 0.5
    yield from click_channel(MIDS)
    with bpy.context.temp_override(**graph_context("UI")):  # Modifiers tab > Add Modifier > Noise
        added = bpy.ops.graph.fmodifier_add(type="NOISE", only_active=True)
    mids = compat.find_fcurve(scene, MIDS)
    noise = mids.modifiers[-1]
    noise.scale, noise.strength = 4.0, 0.4
    result(noise_added=sorted(added), mids_modifiers=[m.type for m in mids.modifiers],
           visible_modifiers=[m.type for fc in compat.fcurves_of(scene) if not fc.hide for m in fc.modifiers])
    yield 0.5
    shot("tutorial_noise_modifier.png")
    result(rebake=sidebar_click(bpy.ops.latentwalk.bake))
    yield 0.5
    shot("tutorial_rebake_dialog.png")
    confirm_dialog()
    yield from wait_for_jobs()
    mids = compat.find_fcurve(scene, MIDS)
    result(rebaked=scene.latentwalk.last_bake_summary, mids_after_rebake=[m.type for m in mids.modifiers])


def driver_on_a_cube():
    """Step 4: the preview area becomes a 3D Viewport, a cube, its Z scale driven by the Bass curve."""
    scene = bpy.context.scene
    preview = next(a for a in window().screen.areas
                   if a.type == "SEQUENCE_EDITOR" and a.spaces.active.view_type == "PREVIEW")
    preview.type = "VIEW_3D"
    yield 0.5
    with bpy.context.temp_override(**override(preview)):
        bpy.ops.mesh.primitive_cube_add()
    cube = bpy.context.view_layer.objects.active
    driver = cube.driver_add("scale", 2).driver
    driver.type, driver.expression = "SCRIPTED", "1 + 2 * bass"
    variable = driver.variables.new()
    variable.name, variable.type = "bass", "SINGLE_PROP"
    variable.targets[0].id_type = "SCENE"
    variable.targets[0].id = scene
    variable.targets[0].data_path = BASS
    followed = []
    for frame in (scene.frame_start + 5, scene.frame_start + 12):
        scene.frame_set(frame)
        yield 0.2
        followed.append([cube.scale[2], 1 + 2 * scene.latentwalk.bands[1].value])
    result(cube_follows_bass=followed)


def preset_and_modulation():
    """Step 5: Render Presets > Turbo, then Add Modulation: Strength follows Bass by 0.4."""
    from blender_latentwalk.blender import presets

    scene = bpy.context.scene
    turbo = os.path.join(presets.BUNDLED_FOLDER, "Turbo.py")
    with bpy.context.temp_override(**override(sequencer(), "UI")):
        bpy.ops.script.execute_preset(filepath=turbo, menu_idname="LATENTWALK_MT_render_presets")
    result(modulation=sidebar_click(bpy.ops.latentwalk.modulation_add))
    modulation = scene.latentwalk.modulations[-1]
    modulation.target, modulation.curve, modulation.amount = "strength", "band:Bass", 0.4
    result(strength_after_preset=scene.latentwalk.diffusion.strength)
    yield 0.3


def preview_render_encode():
    """Step 6: Use Stand-in Models, Preview Walk, a prompt marker, Render Frames with Esc and again, Encode."""
    from blender_latentwalk.blender import encode, jobs

    scene = bpy.context.scene
    view_3d = area_of("VIEW_3D")  # back to the Sequencer's preview (the editor-type menu), to judge the frames
    view_3d.type = "SEQUENCE_EDITOR"
    view_3d.spaces.active.view_type = "PREVIEW"
    result(stand_ins=sidebar_click(bpy.ops.latentwalk.use_stand_in_models))
    yield from wait_for_jobs()
    scene.latentwalk.walk.device = "cpu"
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 64, 48, 100
    result(preview=sidebar_click(bpy.ops.latentwalk.preview))
    yield from wait_for_jobs()
    scene.timeline_markers.new("prompt: a city at night", frame=scene.frame_start + 30)
    scene.latentwalk.diffusion.batch_size = 1  # a stop is checked before each batch: room for the Esc
    result(render=sidebar_click(bpy.ops.latentwalk.render))
    while jobs.running("render") is not None and jobs.running("render").done < 2:  # a few frames written
        yield 0.3
    press("ESC")  # at once: with the tiny stand-ins the render can finish in the time a screenshot takes
    shot("tutorial_render_progress.png")  # the status bar still shows the render while it stops
    yield from wait_for_jobs()
    result(cancelled_frames=len([n for n in os.listdir(encode.output.resolve_folder(
        scene.latentwalk.diffusion.output_folder, "Output folder", scene)) if n.endswith(".png")]))
    result(render_again=sidebar_click(bpy.ops.latentwalk.render))
    yield from wait_for_jobs()
    checked = encode.last_check(scene)
    result(frames_after_render=checked.status.summary() if checked else None)
    result(encode=sidebar_click(bpy.ops.latentwalk.encode_video))
    yield 0.5
    result(windows_while_encoding=len(bpy.context.window_manager.windows))
    yield from wait_for_jobs()
    scroll_sidebar(40)  # the Render panel: the frame count
    yield 0.5
    shot("tutorial_after_render.png")
    scroll_sidebar(-60)


def fps_change_and_rebake():
    """Step 7: the scene at 30 fps: the sidebar says the bake and the frames are out of date; Re-bake."""
    from blender_latentwalk.blender import encode

    scene = bpy.context.scene
    scene.render.fps = 30
    yield 0.5
    checked = encode.last_check(scene)
    result(frames_status_applies_after_fps_change=checked.still_applies(scene) if checked else None)
    scroll_sidebar(10)  # the "out of date" box above Bake Curves
    yield 0.5
    shot("tutorial_out_of_date.png")
    result(rebake_after_fps=sidebar_click(bpy.ops.latentwalk.bake))
    yield 0.5
    confirm_dialog()
    yield from wait_for_jobs()
    result(rebaked_at_30=scene.latentwalk.last_bake_summary)


def models_panel_open():
    """Refresh Models, then Render > Models opened with a click on its header (the last one, at the bottom of
    each sidebar scrolled down), so the label check sees its model rows."""
    result(models_refresh=sidebar_click(bpy.ops.latentwalk.models_refresh))
    yield from wait_for_jobs()
    for area, panel in ((sequencer(), "LATENTWALK_PT_sequencer_models"),
                        (area_of("GRAPH_EDITOR"), "LATENTWALK_PT_graph_models")):
        sidebar = region_of(area, "UI")
        blender_ui.scroll(sidebar, 80)  # to the bottom
        yield 0.5
        for offset_px in range(4, 30, 5):  # up from the bottom edge, below the Add Modulation button
            if any(key.startswith(panel + " ") for key in cut_labels.FOUND):
                break
            click(sidebar.x + sidebar.width // 2, sidebar.y + offset_px)
            yield 0.4
        blender_ui.scroll(sidebar, 80)
    yield 1.0
    shot("tutorial_models.png")


def steps():
    started = time.monotonic()
    yield from new_video_editing_file()
    yield from bake_and_show_curves()
    if not ARGS.only_show_curves:
        for part in (noise_modifier_and_rebake, driver_on_a_cube, preset_and_modulation, preview_render_encode,
                     fps_change_and_rebake, models_panel_open):
            yield from part()
            result(**{f"seconds_after_{part.__name__}": round(time.monotonic() - started, 1)})
        bpy.ops.wm.save_mainfile()
    print("CUT_LABELS " + json.dumps(cut_labels.FOUND), flush=True)
    print("REPORTS " + json.dumps(blender_ui.reports()), flush=True)
    if time.monotonic() - started > TIMEOUT_S:
        result(error="timed out")


if __name__ == "__main__":  # run by Blender's -P; an import (stylegan_ui.py) takes the helpers only
    blender_ui.run_steps(steps())
