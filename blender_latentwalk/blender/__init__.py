"""The add-on layer: Blender state in, engine calls out, Blender state back.

Everything here is thin; the work is in ``..engine``, which never imports bpy.

The modules by role:

Settings and what the artist sees
    properties.py    ``scene.latentwalk``: every setting, the baked curves' properties
    preferences.py   the add-on preferences: Engine Python, and the set-up's choices
    panels.py        the "Latent Walk" sidebar tab (Sequencer and Graph Editor)
    presets.py       render presets (Blender's preset menu)
Baking the song into curves
    operators.py     Bake, Show Curves, the band list
    curves.py        writing baked features into F-curves, noticing hand edits
    bake_state.py    is the bake current for the scene's fps and song start?
    walk.py          the ImageNet class picker
    modulation.py    "setting follows curve" entries
    sections.py      section and drop markers, section looks, Snap Markers to Bars
Rendering
    sampling.py      Blender state -> RenderPlan, frame by frame
    output.py        the frames folder (and the frames it brings along on Save As), frame size, video path
    render_job.py    RenderJob: one render in the worker(s), its devices, its result
    render_operators.py  Render Frames, Preview Walk, Cancel Render, Release Models
    encode.py        Check Frames and Encode Video (the files decide)
    sequencer.py     the song strip, the frames' strips, beat markers, FFmpeg output
Running the engine
    jobs.py          one job at a time (render, download, set-up): start, poll, Esc, clean up
    engine_client.py which Python runs the engine; analysis, frame checks and model lists in it
    worker_client.py the render worker processes, spoken to in engine/worker/messages.py
    models.py        which models are on this machine; Download Model; Use Stand-in Models
    environment_setup.py  Set Up Render Environment (the worker's Python)
Everything else
    compat.py        every difference between Blender 3.4, 4.2 and 5.0 (feature detection)
    headless.py      what the headless scripts share (``blender -b -P``)
"""

import bpy

from . import (encode, environment_setup, jobs, models, modulation, operators, output, panels, preferences, presets,
               properties, render_operators, sections, walk, worker_client)

_classes = (preferences.classes + environment_setup.classes + operators.classes + walk.classes + modulation.classes
            + sections.classes + render_operators.classes + encode.classes + presets.classes + models.classes
            + panels.classes)


def register():
    properties.register()
    for cls in _classes:
        bpy.utils.register_class(cls)
    jobs.register()
    encode.register()
    models.register()
    output.register()  # Save As brings the rendered frames along to the new file's folders


def unregister():
    output.unregister()
    models.unregister()
    encode.unregister()
    jobs.unregister()  # stops a running render, download or set-up
    worker_client.release(timeout_s=2.0)  # disabling the add-on frees the models' memory too
    for cls in reversed(_classes):
        bpy.utils.unregister_class(cls)
    properties.unregister()
