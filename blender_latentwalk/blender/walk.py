"""The walk settings' operators: the ImageNet class picker."""

import bpy
from bpy.props import EnumProperty

from ..engine.walk.imagenet import class_names


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


class LATENTWALK_UL_classes(bpy.types.UIList):
    def draw_item(self, context, layout, data, item, icon, active_data, active_property, index=0, flt_flag=0):
        pitch = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
        prefix = f"{pitch[index]}: " if data.class_mode == "chroma" and index < 12 else ""
        layout.label(text=f"{prefix}{item.name} ({item.index})")


classes = (LATENTWALK_OT_class_add, LATENTWALK_OT_class_remove, LATENTWALK_OT_classes_default,
           LATENTWALK_UL_classes)
