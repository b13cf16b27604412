"""Render and walk presets through Blender's own preset mechanism (the menu with + and -).

Render presets ship with the add-on in ``presets/render/`` (Fast Preview, Turbo, Quality), walk presets in
``presets/walk/`` (StyleGAN3 Turn, StyleGAN2 Noise Hits, Calm Drift; each sets walk values and modulations). The
artist's own are written by + into Blender's user presets folder
(``<user scripts>/presets/latentwalk/render/`` or ``.../walk/``), where Blender keeps presets of its own.
A preset is a small Python file that sets panel values, as Blender's presets are.
"""

import os

import bpy
from bl_operators.presets import AddPresetBase

PRESET_SUBDIR = os.path.join("latentwalk", "render")
BUNDLED_FOLDER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "presets", "render")
# What a preset records: the Render panel's model choice and its img2img values.
PRESET_VALUES = ["diffusion.model", "diffusion.tiny_vae", "diffusion.steps", "diffusion.strength",
                 "diffusion.guidance"]


class _PresetMenu:
    """A preset menu: the add-on's own presets (``bundled_folder``) first, then the user's (Blender's preset
    folders for ``preset_subdir``)."""

    preset_operator = "script.execute_preset"

    def draw(self, _context):
        self.path_menu([self.bundled_folder, *bpy.utils.preset_paths(self.preset_subdir)], self.preset_operator,
                       filter_ext=lambda ext: ext.lower() == ".py",
                       display_name=lambda name: bpy.path.display_name(name, title_case=False))


class LATENTWALK_MT_render_presets(_PresetMenu, bpy.types.Menu):
    bl_label = "Render Presets"
    preset_subdir = PRESET_SUBDIR
    bundled_folder = BUNDLED_FOLDER


class LATENTWALK_OT_render_preset_add(AddPresetBase, bpy.types.Operator):
    """Save the Render panel's model and img2img values as a preset (or remove the chosen one)"""

    bl_idname = "latentwalk.render_preset_add"
    bl_label = "Add Render Preset"
    preset_menu = "LATENTWALK_MT_render_presets"
    preset_subdir = PRESET_SUBDIR
    preset_defines = ["diffusion = bpy.context.scene.latentwalk.diffusion"]
    preset_values = PRESET_VALUES


def draw_menu(layout):
    """The render preset row: the menu, + and -."""
    _draw_row(layout, LATENTWALK_MT_render_presets, LATENTWALK_OT_render_preset_add)


def _draw_row(layout, menu, add_operator):
    row = layout.row(align=True)
    row.menu(menu.__name__, text=menu.bl_label)
    row.operator(add_operator.bl_idname, text="", icon="ADD")
    row.operator(add_operator.bl_idname, text="", icon="REMOVE").remove_active = True


WALK_PRESET_SUBDIR = os.path.join("latentwalk", "walk")
WALK_BUNDLED_FOLDER = os.path.join(os.path.dirname(BUNDLED_FOLDER), "walk")
# What a walk preset records: the walk's numbers as they stand on the current frame (not its animation).
WALK_PRESET_VALUES = [f"walk.{name}" for name in (
    "mode", "truncation", "pulse", "speed", "jitter", "class_mode", "class_smoothing_ms", "latent_space",
    "palette_seeds", "noise_strength", "noise_pulse", "rotation_deg", "translate_x", "translate_y")]


class LATENTWALK_MT_walk_presets(_PresetMenu, bpy.types.Menu):
    bl_label = "Walk Presets"
    preset_subdir = WALK_PRESET_SUBDIR
    bundled_folder = WALK_BUNDLED_FOLDER


class LATENTWALK_OT_walk_preset_add(AddPresetBase, bpy.types.Operator):
    """Save the Walk panel's values as a preset (or remove the chosen one)"""

    bl_idname = "latentwalk.walk_preset_add"
    bl_label = "Add Walk Preset"
    preset_menu = "LATENTWALK_MT_walk_presets"
    preset_subdir = WALK_PRESET_SUBDIR
    preset_defines = ["walk = bpy.context.scene.latentwalk.walk"]
    preset_values = WALK_PRESET_VALUES


def draw_walk_menu(layout):
    """The walk preset row: the menu, + and -."""
    _draw_row(layout, LATENTWALK_MT_walk_presets, LATENTWALK_OT_walk_preset_add)


classes = (LATENTWALK_MT_render_presets, LATENTWALK_OT_render_preset_add, LATENTWALK_MT_walk_presets,
           LATENTWALK_OT_walk_preset_add)
