"""Render presets through Blender's own preset mechanism (the menu with + and -).

Three ship with the add-on (``presets/render/``: Fast Preview, Turbo, Quality); the
artist's own are written by + into Blender's user presets folder
(``<user scripts>/presets/latentwalk/render/``), where Blender keeps presets of its own.
A preset is a small Python file that sets Render panel values, as Blender's presets are.
"""

import os

import bpy
from bl_operators.presets import AddPresetBase

PRESET_SUBDIR = os.path.join("latentwalk", "render")
BUNDLED_FOLDER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "presets", "render")
# What a preset records: the Render panel's model choice and its img2img values.
PRESET_VALUES = ["diffusion.model", "diffusion.tiny_vae", "diffusion.steps", "diffusion.strength",
                 "diffusion.guidance"]


class LATENTWALK_MT_render_presets(bpy.types.Menu):
    bl_label = "Render Presets"
    preset_subdir = PRESET_SUBDIR
    preset_operator = "script.execute_preset"

    def draw(self, _context):
        # The add-on's own presets first, then the user's (Blender's preset folders).
        self.path_menu([BUNDLED_FOLDER, *bpy.utils.preset_paths(PRESET_SUBDIR)], self.preset_operator,
                       filter_ext=lambda ext: ext.lower() == ".py",
                       display_name=lambda name: bpy.path.display_name(name, title_case=False))


class LATENTWALK_OT_render_preset_add(AddPresetBase, bpy.types.Operator):
    """Save the Render panel's model and img2img values as a preset (or remove the chosen one)"""

    bl_idname = "latentwalk.render_preset_add"
    bl_label = "Add Render Preset"
    preset_menu = "LATENTWALK_MT_render_presets"
    preset_subdir = PRESET_SUBDIR
    preset_defines = ["diffusion = bpy.context.scene.latentwalk.diffusion"]
    preset_values = PRESET_VALUES


def draw_menu(layout):
    """The preset row: the menu, + and -."""
    row = layout.row(align=True)
    row.menu(LATENTWALK_MT_render_presets.__name__, text=LATENTWALK_MT_render_presets.bl_label)
    row.operator(LATENTWALK_OT_render_preset_add.bl_idname, text="", icon="ADD")
    row.operator(LATENTWALK_OT_render_preset_add.bl_idname, text="", icon="REMOVE").remove_active = True


classes = (LATENTWALK_MT_render_presets, LATENTWALK_OT_render_preset_add)
