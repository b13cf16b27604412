"""The song's structure on the timeline: section and drop markers, section looks, Snap Markers to Bars.

A bake places a marker ``section: A`` where each section starts and ``drop`` on each drop (the names are
parsed in ``engine/walk/prompts.py``), and records what it placed (``settings.baked_markers``). The
artist may move, delete or add them: a re-bake replaces them only while they are exactly what the last
bake placed; otherwise they are kept (retimed with the curves when the frame rate or the song's start
changed) and the bake's report says so.

Each label has a look (``settings.section_looks``: a prompt, a walk seed) that the render applies from
each of its markers to the next section marker (`sampling.sample_plan`). The bars Snap Markers to Bars
snaps to are read from the baked Bar curve, as the artist left it: the frames where it is 1.
"""

import json

import bpy
import numpy as np
from bpy.props import IntProperty

from . import compat
from ..engine.analysis.structure import label_name
from ..engine.walk.prompts import (DROP_MARKER_NAME, is_drop_marker, is_structure_marker, marker_prompt,
                                   marker_section, section_marker_name)

# Stands for the section and drop markers among the keys Overwrite Edited Curves replaces (operators.py).
MARKERS_KEY = "markers:section+drop"
MARKERS_LABEL = "Section and drop markers: moved, added or deleted"
BAR_CURVE = "latentwalk.bar"
BAR_PEAK = 1.0 - 1e-4  # a frame is a bar's when the Bar curve reaches 1 there


# --- Markers the bake places, and whether the artist changed them -------------------------------------

def structure_markers(scene):
    """The scene's ``section: X`` and ``drop`` markers."""
    return [m for m in scene.timeline_markers if is_structure_marker(m.name)]


def _as_record(pairs):
    return sorted([str(name), int(frame)] for name, frame in pairs)


def recorded_markers(settings):
    """The [[name, frame], ...] the last bake placed, or None when no bake recorded any."""
    try:
        record = json.loads(settings.baked_markers or "null")
    except ValueError:
        return None
    return _as_record(record) if isinstance(record, list) else None


def _record(settings, pairs):
    settings.baked_markers = json.dumps(_as_record(pairs))


def markers_edited(scene):
    """True when the section and drop markers are not what the last bake placed (moved, renamed, added or
    deleted), or, with no record (a file baked before markers were placed), when there are any: the bake never
    replaces markers it did not make."""
    now = _as_record((m.name, m.frame) for m in structure_markers(scene))
    record = recorded_markers(scene.latentwalk)
    return bool(now) if record is None else now != record


def has_structure(features):
    """True when the analysis found the song's structure (its bars); features without it (an older features
    file, an analysis without the structure) hold one section "A" and no bars, and get no markers."""
    return len(features.downbeats) > 0


def place_markers(scene, features, first_frame):
    """Replace the section and drop markers with the structure of ``features`` (frame indices from
    ``first_frame``, the song's first frame) and record them; returns how many were placed."""
    markers = scene.timeline_markers
    for marker in structure_markers(scene):
        markers.remove(marker)
    placed = []
    if has_structure(features):
        placed += [(section_marker_name(label), first_frame + int(start))
                   for start, label in zip(features.section_starts, features.section_labels)]
        placed += [(DROP_MARKER_NAME, first_frame + int(drop)) for drop in features.drops]
    for name, frame in placed:
        markers.new(name, frame=frame).select = False  # a selected one would be all Snap Markers to Bars moves
    _record(scene.latentwalk, placed)
    return len(placed)


def retime_markers(scene, frame_map):
    """Move the section and drop markers (and the record, so unchanged ones stay unchanged) by ``frame_map``;
    returns how many moved."""
    markers = structure_markers(scene)
    for marker in markers:
        marker.frame = int(round(float(frame_map(marker.frame))))
    record = recorded_markers(scene.latentwalk)
    if record is not None:
        _record(scene.latentwalk, [(name, int(round(float(frame_map(frame))))) for name, frame in record])
    return len(markers)


# --- Section looks -------------------------------------------------------------------------------------

def section_markers(scene):
    """[(frame, label)] of the ``section: X`` markers, by frame."""
    found = [(m.frame, marker_section(m.name)) for m in scene.timeline_markers]
    return sorted((frame, label) for frame, label in found if label is not None)


def _label_order(label):
    return (len(label), label)  # A..Z, then AA...


def ensure_looks(settings, labels):
    """One look per label of ``labels`` (added in label order); a look the artist filled in (a prompt, a seed)
    is kept even when its label is gone, an empty one whose label is gone is removed. Returns the labels added."""
    wanted = set(labels)
    for index in reversed(range(len(settings.section_looks))):
        look = settings.section_looks[index]
        if look.label not in wanted and not look.prompt.strip() and not look.use_seed:
            settings.section_looks.remove(index)
    have = {look.label for look in settings.section_looks}
    added = sorted(wanted - have, key=_label_order)
    looks = settings.section_looks
    active = looks[settings.active_section_look_index].label if 0 <= settings.active_section_look_index < len(
        looks) else None
    for label in added:
        look = looks.add()
        look.label = look.name = label
    # In label order (A, B, C, ...), the selected row staying selected.
    for position in range(len(looks)):
        smallest = min(range(position, len(looks)), key=lambda i: _label_order(looks[i].label))
        if smallest != position:
            looks.move(smallest, position)
    labels = [look.label for look in looks]
    settings.active_section_look_index = labels.index(active) if active in labels else 0
    return added


def looks(settings):
    """(prompts, seeds): {label: prompt} of the looks with a prompt, {label: seed} of those with Own Seed."""
    prompts = {look.label: look.prompt for look in settings.section_looks if look.prompt.strip()}
    seeds = {look.label: look.seed for look in settings.section_looks if look.use_seed}
    return prompts, seeds


# --- Bars ----------------------------------------------------------------------------------------------

def bar_frames(scene):
    """The frames where the Bar curve (as edited: keys and modifiers) reaches 1, increasing; empty when there is
    no Bar curve. Frames from the curve's first key to its last (with a modifier: the scene's range too)."""
    fcurve = compat.find_fcurve(scene, BAR_CURVE, 0)
    if fcurve is None or not len(fcurve.keyframe_points):
        return np.zeros(0, np.int64)
    first_key, last_key = fcurve.range()
    if len(fcurve.modifiers):  # a modifier (Cycles, Noise) may put bars beyond the keys: the scene's range too
        first_key, last_key = min(first_key, scene.frame_start), max(last_key, scene.frame_end)
    # Without one, frames outside the keys only hold the end keys' values (a song starting on a bar line would
    # make every frame before it "a bar").
    first, last = int(np.floor(first_key)), int(np.ceil(last_key))
    frames = np.arange(first, last + 1)
    values = np.array([fcurve.evaluate(float(frame)) for frame in frames])
    return frames[values >= BAR_PEAK]


def nearest(frames, frame):
    """The frame of ``frames`` (increasing, not empty) nearest to ``frame``; the earlier one of two as near."""
    index = int(np.searchsorted(frames, frame))
    candidates = [frames[i] for i in (index - 1, index) if 0 <= i < len(frames)]
    return int(min(candidates, key=lambda f: (abs(f - frame), f)))


def _snappable(marker):
    return marker_prompt(marker.name) is not None or is_structure_marker(marker.name)


class LATENTWALK_OT_snap_markers_to_bars(bpy.types.Operator):
    """Move the prompt, section and drop markers (the selected ones, if any is selected) to the nearest bar: the
    nearest frame where the baked Bar curve is 1"""

    bl_idname = "latentwalk.snap_markers_to_bars"
    bl_label = "Snap Markers to Bars"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        scene = context.scene
        markers = [m for m in scene.timeline_markers if _snappable(m)]
        selected = [m for m in markers if m.select]
        chosen = selected or markers
        which = "selected " if selected else ""
        if not chosen:
            self.report({"WARNING"}, "Latent Walk: no prompt, section or drop markers to snap: add a marker named "
                                     "'prompt: ...' or 'section: A', or bake with Section Markers on.")
            return {"CANCELLED"}
        bars = bar_frames(scene)
        if not len(bars):
            self.report({"WARNING"}, "Latent Walk: the Bar curve has no bars (no frame where it is 1): press Bake "
                                     "Curves, or key the Bar curve to 1 where bars start.")
            return {"CANCELLED"}
        moved = 0
        for marker in chosen:
            frame = nearest(bars, marker.frame)
            if frame != marker.frame:
                marker.frame = frame
                moved += 1
        self.report({"INFO"}, f"Latent Walk: moved {moved} of {len(chosen)} {which}marker(s) to the nearest bar"
                              + (f" ({len(chosen) - moved} were on a bar)" if moved < len(chosen) else ""))
        return {"FINISHED"}


class LATENTWALK_OT_section_look_add(bpy.types.Operator):
    """Add a section look: for the label of a section marker that has none, else the next free letter"""

    bl_idname = "latentwalk.section_look_add"
    bl_label = "Add Section Look"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        settings = context.scene.latentwalk
        have = {look.label for look in settings.section_looks}
        on_timeline = [label for _frame, label in section_markers(context.scene) if label not in have]
        free = (label_name(i) for i in range(len(have) + 1))  # A .. Z, AA ..: the analysis's names
        label = on_timeline[0] if on_timeline else next(name for name in free if name not in have)
        look = settings.section_looks.add()
        look.label = look.name = label
        settings.active_section_look_index = len(settings.section_looks) - 1
        return {"FINISHED"}


class LATENTWALK_OT_section_look_remove(bpy.types.Operator):
    """Remove the selected section look (its sections then use the base Prompt and Seed)"""

    bl_idname = "latentwalk.section_look_remove"
    bl_label = "Remove Section Look"
    bl_options = {"REGISTER", "UNDO"}

    index: IntProperty(options={"HIDDEN"}, default=-1)

    @classmethod
    def poll(cls, context):
        settings = context.scene.latentwalk
        return 0 <= settings.active_section_look_index < len(settings.section_looks)

    def execute(self, context):
        settings = context.scene.latentwalk
        index = self.index if self.index >= 0 else settings.active_section_look_index
        if not 0 <= index < len(settings.section_looks):
            return {"CANCELLED"}
        settings.section_looks.remove(index)
        settings.active_section_look_index = min(index, len(settings.section_looks) - 1)
        return {"FINISHED"}


class LATENTWALK_UL_section_looks(bpy.types.UIList):
    def draw_item(self, context, layout, data, look, icon, active_data, active_property, index=0, flt_flag=0):
        # The label, then what the look changes: short enough for the Graph Editor's narrow sidebar.
        split = layout.split(factor=0.25, align=True)
        split.label(text=look.label or "?")
        what = look.prompt.strip() or "base prompt"
        split.label(text=f"{what}, seed {look.seed}" if look.use_seed else what)


def _count(number, noun):
    return f"{number} {noun}{'' if number == 1 else 's'}"


def draw(layout, context, labelled):
    """The Sections panel's body (panels.py): the bake's structure settings, the looks, Snap Markers to Bars.
    ``labelled``: panels.labelled."""
    scene = context.scene
    settings = scene.latentwalk
    layout.prop(settings, "add_section_markers")
    layout.label(text="Keep on re-bake:")
    grid = layout.grid_flow(row_major=True, columns=2, even_columns=True, align=True)
    for curve in ("beat", "bar", "section", "drop"):
        locked = getattr(settings, f"lock_{curve}")
        grid.prop(settings, f"lock_{curve}", text=curve.title(), icon="LOCKED" if locked else "UNLOCKED")
    count = len(section_markers(scene))
    drops = sum(is_drop_marker(m.name) for m in scene.timeline_markers)
    layout.label(text=f"{_count(count, 'section')}, {_count(drops, 'drop')}", icon="MARKER_HLT")
    row = layout.row()
    row.template_list("LATENTWALK_UL_section_looks", "", settings, "section_looks", settings,
                      "active_section_look_index", rows=3)
    buttons = row.column(align=True)
    buttons.operator("latentwalk.section_look_add", icon="ADD", text="")
    buttons.operator("latentwalk.section_look_remove", icon="REMOVE", text="")
    if 0 <= settings.active_section_look_index < len(settings.section_looks):
        look = settings.section_looks[settings.active_section_look_index]
        box = layout.box()
        labelled(box, look, "label", "Label")
        labelled(box, look, "prompt", "Prompt")
        column = box.column(align=True)
        column.prop(look, "use_seed")
        seed = column.row(align=True)
        seed.active = look.use_seed
        seed.prop(look, "seed")
    layout.operator("latentwalk.snap_markers_to_bars", icon="SNAP_ON")


classes = (LATENTWALK_OT_snap_markers_to_bars, LATENTWALK_OT_section_look_add, LATENTWALK_OT_section_look_remove,
           LATENTWALK_UL_section_looks)
