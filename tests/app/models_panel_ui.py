"""The Models panel and the set-up's failure in the real Blender UI (run by test_models_app.py under Xvfb).

    blender --factory-startup --enable-event-simulate -P tests/app/models_panel_ui.py -- --out DIR

Enables the add-on as a user does, opens the Models panel in the Sequencer's sidebar at its default
width, refreshes the list, presses Use Stand-in Models as a click does (INVOKE_DEFAULT: the job
that makes them in the Engine Python), then shows the panel in the Graph Editor's sidebar (the
narrowest default one) with the stand-ins and, after Use Own Models, with the catalogue. Last, the
add-on's preferences with a set-up failure. Writes screenshots of each sidebar into --out, prints
what happened as RESULT lines and the labels scripts/cut_labels.py finds cut as CUT_LABELS, and
quits. The environment (the test's) points the Engine Python, the caches and Blender's user
folders into a temporary folder.
"""

import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import bpy  # noqa: E402

import cut_labels  # noqa: E402
from blender_ui import capture, open_tab, region_of, result, run_steps, scroll, watch_panels, window  # noqa: E402,E501

argv = sys.argv[sys.argv.index("--") + 1:]
parser = argparse.ArgumentParser()
parser.add_argument("--out", required=True)
ARGS = parser.parse_args(argv)


def to_the_models_panel(area):
    """Timer steps: the sidebar scrolled to its end, where the Models panel is."""
    scroll(region_of(area, "UI"), 60)
    yield 0.5


def sidebar_picture(area, name):
    """The sidebar of ``area``, cut from a screenshot of the window, as ARGS.out/name."""
    import numpy as np

    region = region_of(area, "UI")
    path = capture(os.path.join(ARGS.out, "." + name), announce=False)
    image = bpy.data.images.load(path)
    width, height = image.size
    pixels = np.empty(width * height * 4, dtype=np.float32)
    image.pixels.foreach_get(pixels)
    crop = pixels.reshape(height, width, 4)[region.y:region.y + region.height, region.x:region.x + region.width]
    bpy.data.images.remove(image)
    os.unlink(path)
    picture = bpy.data.images.new(name, crop.shape[1], crop.shape[0], alpha=False)
    picture.pixels.foreach_set(crop.ravel())
    picture.filepath_raw, picture.file_format = os.path.join(ARGS.out, name), "PNG"
    picture.save()
    bpy.data.images.remove(picture)
    return region.width


def models_panel_first():
    """The Walk and Render sub-panels closed and Models open, so the Models panel shows without scrolling
    (a user clicks those headers; Blender cannot open a panel from Python)."""
    from blender_latentwalk.blender import panels

    ordered = [panels.LATENTWALK_PT_sequencer_walk, panels.LATENTWALK_PT_graph_walk,
               panels.LATENTWALK_PT_sequencer_render, panels.LATENTWALK_PT_graph_render,
               panels.LATENTWALK_PT_sequencer_modulation, panels.LATENTWALK_PT_graph_modulation,
               panels.LATENTWALK_PT_sequencer_models, panels.LATENTWALK_PT_graph_models]
    for cls in reversed(ordered):
        bpy.utils.unregister_class(cls)
    for cls in ordered:
        cls.bl_options = set() if "models" in cls.__name__ else {"DEFAULT_CLOSED"}
        bpy.utils.register_class(cls)


def show_sidebar(kind):
    area = max(window().screen.areas, key=lambda a: a.width * a.height)
    area.type = kind
    area.spaces.active.show_region_ui = True
    return area


def fields():
    settings = bpy.context.scene.latentwalk
    return [settings.walk.model, settings.diffusion.model, settings.diffusion.tiny_vae]


def steps():
    from blender_latentwalk.blender import environment_setup, jobs, models, panels, preferences

    result(enabled=sorted(bpy.ops.preferences.addon_enable(module="blender_latentwalk")))
    models_panel_first()
    watch_panels([panels.LATENTWALK_PT_sequencer_models, panels.LATENTWALK_PT_graph_models])
    cut_labels.watch([panels.LATENTWALK_PT_sequencer_models, panels.LATENTWALK_PT_graph_models], [])
    area = show_sidebar("SEQUENCE_EDITOR")
    result(refreshed=sorted(bpy.ops.latentwalk.models_refresh()), fields_before=fields())
    yield from open_tab("SEQUENCE_EDITOR")
    yield from to_the_models_panel(area)
    result(sequencer_sidebar_px=sidebar_picture(area, "models_sequencer.png"))

    with bpy.context.temp_override(window=window(), screen=window().screen, area=area,
                                   region=region_of(area, "UI")):
        result(stand_ins_invoked=sorted(bpy.ops.latentwalk.use_stand_in_models("INVOKE_DEFAULT")))
    status = []
    for _ in range(1200):  # a minute at most
        job = jobs.running("stand-ins")
        if job is None:
            break
        status.append(job.status_line())
        yield 0.05
    result(stand_in_status=status[:1], fields_with_stand_ins=fields(),
           stand_ins_in_use=models.stand_ins_in_use(bpy.context.scene))
    yield from to_the_models_panel(area)
    sidebar_picture(area, "stand_ins_sequencer.png")

    area = show_sidebar("GRAPH_EDITOR")
    yield from open_tab("GRAPH_EDITOR")
    yield from to_the_models_panel(area)
    result(graph_sidebar_px=sidebar_picture(area, "stand_ins_graph.png"))
    result(own_models=sorted(bpy.ops.latentwalk.use_own_models()), fields_after=fields())
    yield from to_the_models_panel(area)
    sidebar_picture(area, "models_graph.png")

    failure = environment_setup.Failure(
        step="Installing PyTorch (CPU only)", step_name="torch", kind="network", host="download.pytorch.org",
        torch_index=True,
        message="the network: PyTorch's index download.pytorch.org cannot be reached (its name does not resolve)",
        reason="No matching distribution found for filelock (exit status 1)",
        log_path=os.path.join(ARGS.out, "setup-env-example.log"), command="python -m pip install torch==2.13.0")
    preferences.remember_setup_failure(failure)
    result(report=failure.report())
    bpy.ops.screen.userpref_show()
    yield 1.0
    bpy.context.preferences.active_section = "ADDONS"
    bpy.context.window_manager.addon_search = "Latent"
    yield 1.0  # the list draws once: only then does the add-on's entry exist to expand
    import addon_utils

    bpy.ops.preferences.addon_expand(module="blender_latentwalk")
    fake = addon_utils.addons_fake_modules.get("blender_latentwalk")
    result(preferences_expanded=bool(fake and addon_utils.module_bl_info(fake)["show_expanded"]))
    prefs_window = bpy.context.window_manager.windows[-1]
    for area in prefs_window.screen.areas:
        area.tag_redraw()
    yield 1.0
    path = os.path.join(ARGS.out, "preferences_failure.png")
    with bpy.context.temp_override(window=prefs_window, screen=prefs_window.screen,
                                   area=prefs_window.screen.areas[0]):
        bpy.ops.screen.screenshot(filepath=path)
    result(preferences_picture=path)
    print("CUT_LABELS " + json.dumps(cut_labels.FOUND), flush=True)


run_steps(steps())
