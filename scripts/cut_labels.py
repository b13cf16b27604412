"""Find labels that Blender cuts in the Latent Walk panels (used by scripts/screenshot_panel.py).

Blender's Python cannot read back the buttons a layout made, so this records what a panel's draw
asks for: a proxy in front of the real ``UILayout`` forwards every call (the panel draws as always)
and notes each item's text and the container it went into. After the draw it gives each item its
share of the sidebar (a row's items share its width equally, a split gives its first part the
factor, a grid its columns) and measures the text with blf in the UI's font.

The room an item needs beyond its text was measured in Blender 3.4.1 against the cut and uncut
labels of the screenshots (Graph Editor sidebar 229 pixels wide, Sequencer's 297, at 100%): the
sidebar's tabs and margins take 54 pixels; a number field shows its label and value only when both
plus 40 pixels fit (e.g. "Gain 1.00" is cut in half of 229, "High 250" is not; "Prompt Blend (ms)
1000.00" is cut in all of it, "Smoothing (ms) 400.00" is not). A model, not Blender's own layout
code: the screenshots stay the proof, and this check catches a new label that is clearly too long.
"""

import bpy

SIDEBAR_PX = 54  # the tabs, the panel's margins and its scroll bar
NUMBER_PX = 40  # a number field beyond its label and value (arrows, padding)
FIELD_PX = 20  # a text or menu field beyond its text
LABEL_PX = 10  # a label or button beyond its text
EXPANDED_PX = 6  # one button of an expanded menu ("Song | Window") beyond its text
ICON_BUTTON_PX = 26  # a button with an icon and no text, in a row
ICON_PX = 20
CHECKBOX_PX = 20
LIST_PX = 45  # a list's scroll bar and the button column beside it
MENU_LABEL_SHARE = 1 / 3  # a text or menu field with its name inside: the name's part of the field


def text_width(text):
    import blf

    points = bpy.context.preferences.ui_styles[0].widget.points * bpy.context.preferences.system.ui_scale
    try:
        blf.size(0, points)
    except TypeError:  # Blender before 4.0 also wants the dpi
        blf.size(0, points, 72)
    return blf.dimensions(0, text)[0]


class Node:
    def __init__(self, kind, factor=None, columns=None):
        self.kind, self.factor, self.columns, self.children = kind, factor, columns, []


class Recorder:
    """A stand-in for a UILayout that records what is drawn into it and forwards every call."""

    def __init__(self, real, node):
        self._real, self._node = real, node

    def __getattr__(self, name):
        return getattr(self._real, name)

    def __setattr__(self, name, value):
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._real, name, value)

    def _container(self, kind, real, **options):
        node = Node(kind, **options)
        self._node.children.append(node)
        return Recorder(real, node)

    def row(self, *args, **kwargs):
        return self._container("row", self._real.row(*args, **kwargs))

    def column(self, *args, **kwargs):
        return self._container("column", self._real.column(*args, **kwargs))

    def box(self, *args, **kwargs):
        return self._container("box", self._real.box(*args, **kwargs))

    def split(self, *args, factor=0.0, **kwargs):
        return self._container("split", self._real.split(*args, factor=factor, **kwargs), factor=factor)

    def grid_flow(self, *args, columns=0, **kwargs):
        return self._container("grid", self._real.grid_flow(*args, columns=columns, **kwargs), columns=columns or 1)

    def prop(self, data, prop, text=None, **kwargs):
        self._node.children.append(("prop", data, prop, text, kwargs))
        if text is None:
            return self._real.prop(data, prop, **kwargs)
        return self._real.prop(data, prop, text=text, **kwargs)

    def label(self, text="", **kwargs):
        self._node.children.append(("label", text, kwargs))
        return self._real.label(text=text, **kwargs)

    def operator(self, idname, text=None, **kwargs):
        self._node.children.append(("operator", idname, text, kwargs))
        if text is None:
            return self._real.operator(idname, **kwargs)
        return self._real.operator(idname, text=text, **kwargs)


def _icon_only(item):
    kwargs = item[-1]
    text = item[2] if item[0] == "operator" else item[3] if item[0] == "prop" else item[1]
    return text == "" and kwargs.get("icon", "NONE") != "NONE"


def _number_text(data, prop):
    value = getattr(data, prop)
    if isinstance(value, float):
        return f"{value:.{data.bl_rna.properties[prop].precision}f}"
    return str(value)


def _needs(item, width):
    """(text, pixels it needs) for each part of a recorded item that shows text, given the item's width."""
    kind = item[0]
    if kind == "label":
        text, kwargs = item[1], item[2]
        return [(text, width, text_width(text) + LABEL_PX + (ICON_PX if kwargs.get("icon", "NONE") != "NONE" else 0))]
    if kind == "operator":
        idname, text, kwargs = item[1], item[2], item[3]
        if text is None:
            category, name = idname.split(".")
            text = getattr(getattr(bpy.ops, category), name).get_rna_type().name
        icon = ICON_PX if kwargs.get("icon", "NONE") != "NONE" else 0
        return [(text, width, text_width(text) + LABEL_PX + icon)] if text else []
    _, data, prop, text, kwargs = item
    rna = data.bl_rna.properties[prop]
    label = rna.name if text is None else text
    icon = ICON_PX if kwargs.get("icon", "NONE") != "NONE" else 0
    if rna.type == "ENUM" and kwargs.get("expand"):
        names = [enum.name for enum in rna.enum_items]
        return [(name, width / len(names), text_width(name) + EXPANDED_PX) for name in names]
    if rna.type in ("INT", "FLOAT") and not getattr(rna, "is_array", False):
        shown = f"{label} {_number_text(data, prop)}" if label else _number_text(data, prop)
        return [(shown, width, text_width(label) + text_width(_number_text(data, prop)) + NUMBER_PX + icon)]
    if rna.type == "BOOLEAN":
        box = icon + LABEL_PX if kwargs.get("icon") else CHECKBOX_PX + LABEL_PX
        return [(label, width, text_width(label) + box)] if label else []
    if label:  # a text or menu field with its name inside
        return [(label, width * MENU_LABEL_SHARE, text_width(label) + LABEL_PX)]
    if rna.type == "STRING" and kwargs.get("emboss") is False:  # a list row's name
        return [(getattr(data, prop), width, text_width(getattr(data, prop)) + 2 * FIELD_PX)]
    return []


def cut(node, width):
    """The items under ``node`` that do not fit ``width`` pixels: (text, needed, available)."""
    found = []
    children = node.children
    if node.kind == "row":  # icon-only buttons keep their size, the other items share the rest
        icons = [isinstance(c, tuple) and _icon_only(c) for c in children]
        free = (width - sum(icons) * ICON_BUTTON_PX) / max(1, len(children) - sum(icons))
        shares = [ICON_BUTTON_PX if icon else free for icon in icons]
    elif node.kind == "split":
        rest = (1 - node.factor) * width / max(1, len(children) - 1)
        shares = [node.factor * width] + [rest] * (len(children) - 1)
    elif node.kind == "grid":
        shares = [width / node.columns] * len(children)
    else:
        shares = [width] * len(children)
    for child, share in zip(children, shares):
        if isinstance(child, Node):
            found += cut(child, share)
        else:
            found += [(text, round(needed), round(available)) for text, available, needed in _needs(child, share)
                      if needed > available]
    return found


FOUND = {}  # "LATENTWALK_PT_graph at 229 px": [(text, needed, available), ...]


def watch(panel_classes, list_classes):
    """Check every draw of these panels and UI lists from now on; results collect in FOUND."""
    class Proxy:
        def __init__(self, real, layout):
            self._real, self.layout = real, layout

        def __getattr__(self, name):
            return getattr(self._real, name)

    def checked_draw(cls, original):
        def draw(self, context):
            root = Node("column")
            original(Proxy(self, Recorder(self.layout, root)), context)
            width = context.region.width - SIDEBAR_PX * context.preferences.system.ui_scale
            key = f"{cls.__name__} at {context.region.width} px"  # every state drawn counts, not just the last
            FOUND[key] = sorted(set(FOUND.get(key, []) + cut(root, width)))
        return draw

    def checked_item(cls, original):
        # The same parameters as UIList.draw_item: Blender passes as many arguments as the function names.
        def draw_item(self, context, layout, data, item, icon, active_data, active_property, index=0, flt_flag=0):
            root = Node("column")
            original(self, context, Recorder(layout, root), data, item, icon, active_data, active_property, index,
                     flt_flag)
            width = context.region.width - (SIDEBAR_PX + LIST_PX) * context.preferences.system.ui_scale
            key = f"{cls.__name__} at {context.region.width} px"
            FOUND[key] = sorted(set(FOUND.get(key, []) + cut(root, width)))
        return draw_item

    for cls in panel_classes:
        cls.draw = checked_draw(cls, cls.draw)
    for cls in list_classes:
        cls.draw_item = checked_item(cls, cls.draw_item)
