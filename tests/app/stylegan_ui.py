"""A StyleGAN3 model file walked in the real Blender UI (run by test_stylegan_app.py under Xvfb).

    xvfb-run -a -s "-screen 0 1600x1000x24" blender --factory-startup --enable-event-simulate --python-exit-code 1 \\
        -P tests/app/stylegan_ui.py -- --song SONG --blend FOLDER/stylegan.blend --shots SHOTS --model TINY.pkl

File > New > Video Editing, Save As, the Song, Bake Curves (pressed in the sidebar), then the Walk panel: the
StyleGAN3 file chosen, Walk Presets > StyleGAN3 Turn, Rotation keyed at two frames, the panel's picture; the
Render model "none", Render Frames and Encode Video pressed in the sidebar, and the Sequencer's picture.

The steps are tutorial_ui.py's helpers (the Video Editing file, the sidebar click, the wait for a job).
Prints ``RESULT {json}`` lines, ``CUT_LABELS {json}`` and ``REPORTS {json}`` as tutorial_ui.py does.
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))  # tests/: engine_python (the video's streams, read with PyAV)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "scripts"))  # blender_ui, cut_labels

import bpy  # noqa: E402

argv = sys.argv[sys.argv.index("--") + 1:]
parser = argparse.ArgumentParser()
for name in ("--song", "--blend", "--shots", "--model"):
    parser.add_argument(name, required=True)
ARGS = parser.parse_args(argv)
KEYS = {1: 0.0, 72: 180.0}  # Rotation keyed: frame -> degrees (the song's first and last frame at 24 fps)
TIMEOUT_S = 600


import tutorial_ui  # noqa: E402 (its helpers: it walks the tutorial only when run by -P)
import blender_ui  # noqa: E402
from blender_ui import override, result  # noqa: E402
from tutorial_ui import scroll_sidebar, sequencer, shot, sidebar_click, wait_for_jobs  # noqa: E402


def bake():
    result(bake=sidebar_click(bpy.ops.latentwalk.bake))
    yield from wait_for_jobs()
    result(baked=bpy.context.scene.latentwalk.last_bake_summary)


def stylegan_walk():
    """The Walk panel: the StyleGAN3 file, the StyleGAN3 Turn preset, Rotation keyed at two frames."""
    from blender_latentwalk.blender import models, presets

    scene = bpy.context.scene
    walk = scene.latentwalk.walk
    # Choose StyleGAN File (the file button beside the Generator field) opens Blender's own file browser, which
    # is not driven here: picking a file there runs the operator's execute with its path, as this does (Relative
    # Path ticked, its default).
    with bpy.context.temp_override(**override(sequencer(), "UI")):
        chosen = bpy.ops.latentwalk.choose_model_file(filepath=ARGS.model, relative_path=True)
    kind = models.stylegan_kind(walk)
    result(choose_model_file=sorted(chosen), generator=walk.model, kind_label=f"{kind} model file" if kind else None)
    turn = os.path.join(presets.WALK_BUNDLED_FOLDER, "StyleGAN3_Turn.py")  # Walk Presets > StyleGAN3 Turn
    with bpy.context.temp_override(**override(sequencer(), "UI")):
        preset = bpy.ops.script.execute_preset(filepath=turn, menu_idname="LATENTWALK_MT_walk_presets")
    result(preset=sorted(preset), latent_space=walk.latent_space, psi=round(walk.truncation, 3),
           modulations=[[m.target, m.curve, m.amount] for m in scene.latentwalk.modulations])
    for frame, degrees in KEYS.items():  # I over the Rotation field at each frame
        scene.frame_set(frame)
        walk.rotation_deg = degrees
        walk.keyframe_insert("rotation_deg", frame=frame)
    scene.frame_set(36)
    result(rotation_at_36=round(walk.rotation_deg, 2))
    scene.latentwalk.diffusion.model = "none"  # the Render panel's Model field: frames as the generator draws them
    scene.latentwalk.walk.device = "cpu"
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 64, 48, 100
    scroll_sidebar(19)  # past the Song and its bands: the Walk panel from its header to Translate Y
    yield 1.0
    shot("stylegan_walk_panel.png")


def render_and_encode():
    """Render Frames and Encode Video, pressed in the sidebar and waited for; the Sequencer's picture."""
    import numpy as np

    import engine_python
    from blender_latentwalk.blender import encode, output

    scene = bpy.context.scene
    result(render=sidebar_click(bpy.ops.latentwalk.render))
    yield from wait_for_jobs()
    folder = output.resolve_folder(scene.latentwalk.diffusion.output_folder, "Output folder", scene)
    rotation = np.load(os.path.join(folder, "plan.npz"))["rotation_deg"]  # what the worker was asked to draw
    checked = encode.last_check(scene)
    result(frames_written=len([n for n in os.listdir(folder) if n.endswith(".png")]), fps=scene.render.fps,
           frames_status=checked.status.summary() if checked else None,
           plan_rotation=[round(float(rotation[0]), 2), round(float(rotation[-1]), 2)],
           strips=sorted([s.name, s.type, s.channel, s.frame_final_start, s.frame_final_duration]
                         for s in scene.sequence_editor.sequences_all))
    result(encode=sidebar_click(bpy.ops.latentwalk.encode_video))
    yield from wait_for_jobs()
    video = output.video_path(scene)
    python = os.environ.get("LATENTWALK_ENGINE_PYTHON") or engine_python.VENV_PYTHON
    result(video=video, streams=engine_python.video_streams(python, video) if os.path.isfile(video) else None)
    strips = sequencer()
    with bpy.context.temp_override(**override(strips)):  # Home over the strips: all of them in view
        bpy.ops.sequencer.view_all()
    for strip in scene.sequence_editor.sequences_all:
        strip.select = False
    scene.frame_set(36)
    bpy.ops.file.make_paths_relative()  # before the wait (shot() does it too): the strips drawn as //...
    scroll_sidebar(40)  # the Render panel: the frame count, Render Frames, Encode Video
    yield 1.0
    shot("stylegan_after_render.png")


blender_ui.run_steps(tutorial_ui.walk_parts((bake, stylegan_walk, render_and_encode), TIMEOUT_S))
