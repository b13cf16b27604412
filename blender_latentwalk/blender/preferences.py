"""Add-on preferences: which Python runs the engine."""

import bpy
from bpy.props import StringProperty

# The add-on's module name: "blender_latentwalk" as a legacy add-on,
# "bl_ext.<repository>.blender_latentwalk" as a 4.2+ extension.
ADDON_ID = __package__.rpartition(".")[0]


class LatentWalkPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    engine_python: StringProperty(
        name="Engine Python",
        description="Python interpreter with the engine's requirements (librosa, torch, diffusers...), e.g. "
        "the project's .venv/bin/python. It runs the analysis and the render worker. Empty: Blender's own Python",
        subtype="FILE_PATH",
    )

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "engine_python")
        layout.label(text="Empty: Blender's own Python (it needs librosa, torch and diffusers installed).")


class _Defaults:
    engine_python = ""


def get():
    """The preferences, or defaults when the add-on runs without being installed (tests, scripts)."""
    addon = bpy.context.preferences.addons.get(ADDON_ID) if bpy.context.preferences else None
    return addon.preferences if addon is not None and addon.preferences is not None else _Defaults()


classes = (LatentWalkPreferences,)
