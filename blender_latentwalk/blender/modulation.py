"""Modulation operators: add and remove "setting follows curve" entries (engine/walk/modulation.py)."""

import bpy
from bpy.props import IntProperty

from . import curves
from ..engine.walk.modulation import curve_key_for_band


class LATENTWALK_OT_modulation_add(bpy.types.Operator):
    """Make a render or walk setting follow a baked curve (setting + amount x curve), without a driver"""

    bl_idname = "latentwalk.modulation_add"
    bl_label = "Add Modulation"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        settings = context.scene.latentwalk
        item = settings.modulations.add()
        if len(settings.bands):  # the active band is the likeliest wish; the onset otherwise
            band = settings.bands[min(max(settings.active_band_index, 0), len(settings.bands) - 1)]
            item.curve = curve_key_for_band(band.title)
        return {"FINISHED"}


class LATENTWALK_OT_modulation_remove(bpy.types.Operator):
    """Remove this modulation (and the keys on its amount); the others keep theirs"""

    bl_idname = "latentwalk.modulation_remove"
    bl_label = "Remove Modulation"
    bl_options = {"REGISTER", "UNDO"}

    index: IntProperty(options={"HIDDEN"})

    @classmethod
    def poll(cls, context):
        return len(context.scene.latentwalk.modulations) > 0

    def execute(self, context):
        settings = context.scene.latentwalk
        if not 0 <= self.index < len(settings.modulations):
            return {"CANCELLED"}
        count = len(settings.modulations)
        curves.move_item_curves(context.scene, "modulations",
                                [i if i < self.index else (None if i == self.index else i - 1) for i in range(count)])
        settings.modulations.remove(self.index)
        return {"FINISHED"}


def self_reading_drivers(scene):
    """Labels of the Latent Walk settings whose driver reads this scene's own ``latentwalk`` curves: the
    driver and what it reads are one ID, so Blender's depsgraph reports a cycle on every update (a
    modulation does the same without one)."""
    settings = scene.latentwalk
    found = []
    for driver_curve in scene.animation_data.drivers if scene.animation_data else []:
        if not driver_curve.data_path.startswith("latentwalk."):
            continue
        targets = [t for v in driver_curve.driver.variables for t in v.targets]
        if any(t.id == scene and (t.data_path or "").startswith("latentwalk.") for t in targets):
            found.append(curves.curve_label(settings, driver_curve.data_path, driver_curve.array_index))
    return found


classes = (LATENTWALK_OT_modulation_add, LATENTWALK_OT_modulation_remove)
