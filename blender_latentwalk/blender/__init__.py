"""The add-on layer: Blender state in, engine calls out, Blender state back.

Everything here is thin; the work is in ``..engine``, which never imports bpy.
"""

import bpy

from . import environment_setup, models, modulation, operators, panels, preferences, presets, properties, render, walk

_classes = (preferences.classes + environment_setup.classes + operators.classes + walk.classes + modulation.classes
            + render.classes + presets.classes + models.classes + panels.classes)


def register():
    properties.register()
    for cls in _classes:
        bpy.utils.register_class(cls)
    render.register()
    models.register()


def unregister():
    models.unregister()
    render.unregister()
    for cls in reversed(_classes):
        bpy.utils.unregister_class(cls)
    properties.unregister()
