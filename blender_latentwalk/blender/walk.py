"""The walk settings' operators: the ImageNet class picker and the BigGAN preview."""

import os

import bpy
from bpy.props import EnumProperty

from . import engine_client, preferences, sampling, sequencer
from ..engine.errors import LatentWalkError
from ..engine.imagenet import class_names


def _class_items(_self, _context):
    # Blender keeps no reference to dynamic enum items; a module-level list keeps them alive.
    if not _CLASS_ITEMS:
        _CLASS_ITEMS.extend((str(i), f"{name} ({i})", "") for i, name in enumerate(class_names()))
    return _CLASS_ITEMS


_CLASS_ITEMS = []


class LATENTWALK_OT_class_add(bpy.types.Operator):
    """Add an ImageNet class to the walk (type to search the 1000 names)"""

    bl_idname = "latentwalk.class_add"
    bl_label = "Add Class"
    bl_options = {"REGISTER", "UNDO"}
    bl_property = "class_id"

    class_id: EnumProperty(name="Class", items=_class_items)

    def invoke(self, context, event):
        context.window_manager.invoke_search_popup(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        walk = context.scene.latentwalk.walk
        item = walk.classes.add()
        item.index = int(self.class_id)
        item.name = class_names()[item.index]
        walk.active_class_index = len(walk.classes) - 1
        return {"FINISHED"}


class LATENTWALK_OT_class_remove(bpy.types.Operator):
    """Remove the selected class from the walk"""

    bl_idname = "latentwalk.class_remove"
    bl_label = "Remove Class"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        walk = context.scene.latentwalk.walk
        return 0 <= walk.active_class_index < len(walk.classes)

    def execute(self, context):
        walk = context.scene.latentwalk.walk
        walk.classes.remove(walk.active_class_index)
        walk.active_class_index = min(walk.active_class_index, len(walk.classes) - 1)
        return {"FINISHED"}


class LATENTWALK_OT_classes_default(bpy.types.Operator):
    """Use 12 default classes, one per pitch class (bubble, volcano, alp...)"""

    bl_idname = "latentwalk.classes_default"
    bl_label = "Default Classes"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        settings = context.scene.latentwalk
        settings.walk.classes.clear()
        settings.ensure_default_classes()
        return {"FINISHED"}


def preview_folder(scene):
    folder = scene.latentwalk.walk.preview_folder
    if folder.startswith("//") and not bpy.data.filepath:
        raise LatentWalkError("the Preview Folder is relative to the .blend file (//...): save the .blend "
                              "first, or choose an absolute folder.")
    return os.path.abspath(bpy.path.abspath(folder))


def preview_size(scene):
    """(width, height) of preview frames: Preview Width wide, the render's aspect."""
    render = scene.render
    aspect = (render.resolution_y * render.pixel_aspect_y) / (render.resolution_x * render.pixel_aspect_x)
    width = scene.latentwalk.walk.preview_width
    return width, max(2, int(round(width * aspect / 2)) * 2)


def render_preview(scene, python=None):
    """BigGAN-only frames at low resolution, straight into the sequencer; returns the strip."""
    settings = scene.latentwalk
    settings.ensure_default_classes()
    plan = sampling.sample_plan(scene)
    folder = preview_folder(scene)
    if python is None:
        python = engine_client.engine_python(preferences.get().engine_python)
    # Resumable like any render: unchanged frames are kept, changed ones redone.
    paths = engine_client.render_frames(plan, settings.walk.model, "none", folder, preview_size(scene),
                                        settings.walk.device, python)
    song = sequencer.find_sound_strip(scene, settings.audio_path) if settings.audio_path else None
    return sequencer.replace_image_strip(scene, sequencer.PREVIEW_STRIP_NAME, paths, plan.frame_start,
                                         song.channel if song is not None else 0)


class LATENTWALK_OT_preview(bpy.types.Operator):
    """Render a quick BigGAN-only preview at low resolution into the Sequencer, to judge the motion"""

    bl_idname = "latentwalk.preview"
    bl_label = "Preview Walk"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        try:
            strip = render_preview(context.scene)
        except LatentWalkError as error:
            self.report({"ERROR"}, f"Latent Walk: {error}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"Preview: {strip.frame_final_duration} frames on channel {strip.channel}")
        return {"FINISHED"}


class LATENTWALK_UL_classes(bpy.types.UIList):
    def draw_item(self, context, layout, data, item, icon, active_data, active_property, index=0, flt_flag=0):
        pitch = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
        prefix = f"{pitch[index]}: " if data.class_mode == "chroma" and index < 12 else ""
        layout.label(text=f"{prefix}{item.name} ({item.index})")


classes = (LATENTWALK_OT_class_add, LATENTWALK_OT_class_remove, LATENTWALK_OT_classes_default,
           LATENTWALK_OT_preview, LATENTWALK_UL_classes)
