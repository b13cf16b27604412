"""Writing baked features into F-curves, and noticing when the artist edited them.

Keys are written in bulk (``keyframe_points.add`` + ``foreach_set``), never with a
``keyframe_insert`` per key. Each bake records a fingerprint of every curve it
wrote; a curve whose keys, handles or modifiers no longer match its fingerprint
has been edited by hand and is kept on the next bake unless the artist says to
overwrite it.
"""

import hashlib
import json
import re
from dataclasses import dataclass

import numpy as np

from . import compat
from ..engine.analysis.features import PITCH_CLASSES

GROUP_NAME = "Latent Walk"


@dataclass(frozen=True)
class CurveTarget:
    """One curve the bake writes: where it goes and what it holds."""

    data_path: str
    index: int
    label: str  # for messages: "Bass (60-250 Hz)", "Onset", "Chroma C#"
    values: np.ndarray  # shape (n_frames,); None when only the address matters
    locked: bool
    # A held curve (the section's label number): keys only where the value changes, constant interpolation, so
    # it steps from one section to the next and an artist moves a section's start by moving one key.
    hold: bool = False

    @property
    def key(self):
        return f"{self.data_path}[{self.index}]"


def targets_for(settings, features=None):
    """Every curve a bake of ``features`` writes, in Graph Editor order.

    Without features the targets carry no values: enough to check for edits.
    """
    def values(get):
        return get(features) if features is not None else None

    targets = []
    for i, band in enumerate(settings.bands):
        targets.append(CurveTarget(f"latentwalk.bands[{i}].value", 0, band.name,
                                   values(lambda f: f.bands[i]), band.locked))
    targets.append(CurveTarget("latentwalk.onset", 0, "Onset", values(lambda f: f.onset), settings.lock_onset))
    targets.append(CurveTarget("latentwalk.rms", 0, "Loudness", values(lambda f: f.rms), settings.lock_rms))
    # The song's structure (features.py): beat and bar pulses, the section's label number (held), the drop pulse.
    targets.append(CurveTarget("latentwalk.beat", 0, "Beat", values(lambda f: f.beat), settings.lock_beat))
    targets.append(CurveTarget("latentwalk.bar", 0, "Bar", values(lambda f: f.bar), settings.lock_bar))
    targets.append(CurveTarget("latentwalk.section", 0, "Section", values(lambda f: f.section),
                               settings.lock_section, hold=True))
    targets.append(CurveTarget("latentwalk.drop", 0, "Drop", values(lambda f: f.drop), settings.lock_drop))
    for i, pitch in enumerate(PITCH_CLASSES):
        targets.append(CurveTarget(f"latentwalk.chroma[{i}].value", 0, f"Chroma {pitch}",
                                   values(lambda f: f.chroma[:, i]), settings.lock_chroma))
    return targets


def fingerprint(fcurve):
    """A hash of everything an artist can edit on a curve's keys and modifiers."""
    count = len(fcurve.keyframe_points)
    digest = hashlib.sha1(str(count).encode())
    for attribute in ("co", "handle_left", "handle_right"):
        buffer = np.empty(count * 2, dtype=np.float32)
        fcurve.keyframe_points.foreach_get(attribute, buffer)
        digest.update(buffer.tobytes())
    interpolation = np.empty(count, dtype=np.int32)
    fcurve.keyframe_points.foreach_get("interpolation", interpolation)
    digest.update(interpolation.tobytes())
    digest.update(repr([(m.type, m.mute, m.influence) for m in fcurve.modifiers]).encode())
    digest.update(repr((fcurve.mute, fcurve.extrapolation)).encode())
    return digest.hexdigest()


def load_fingerprints(settings):
    try:
        return json.loads(settings.baked_fingerprints or "{}")
    except ValueError:
        return {}


def edited_targets(scene, targets):
    """The targets whose existing curve was changed since the last bake.

    A curve with no recorded fingerprint (keyed by hand before any bake) counts
    as edited too: the bake never replaces work it did not make.
    """
    recorded = load_fingerprints(scene.latentwalk)
    edited = []
    for target in targets:
        fcurve = compat.find_fcurve(scene, target.data_path, target.index)
        if fcurve is not None and recorded.get(target.key) != fingerprint(fcurve):
            edited.append(target)
    return edited


def write_curve(scene, target, first_frame):
    """Replace the curve's keys with one linear key per frame from ``first_frame`` (a held target: a constant
    key on the first frame and on each frame where the value changes)."""
    fcurve = compat.ensure_fcurve(scene, target.data_path, target.index, GROUP_NAME)
    values = np.asarray(target.values, dtype=np.float32)
    frames = np.arange(len(values), dtype=np.float64)
    if target.hold and len(values):
        changes = np.flatnonzero(np.diff(values) != 0) + 1
        frames = np.concatenate([[0], changes]).astype(np.float64)
        values = values[frames.astype(np.int64)]
    count = len(values)
    coordinates = np.empty((count, 2), dtype=np.float32)
    coordinates[:, 0] = frames + first_frame
    coordinates[:, 1] = values
    # A written curve is the bake's alone: the artist's modifiers, mute and extrapolation go with their keys.
    for modifier in list(fcurve.modifiers):
        fcurve.modifiers.remove(modifier)
    fcurve.mute, fcurve.extrapolation = False, "CONSTANT"
    points = fcurve.keyframe_points
    points.clear()
    points.add(count)
    points.foreach_set("co", coordinates.ravel())
    # Linear keys on every frame: the curve evaluates to the analysed value on each
    # frame and never overshoots between them. Held keys: constant, the value stays until the next key.
    points.foreach_set("interpolation", np.full(count, _CONSTANT if target.hold else _LINEAR, dtype=np.int32))
    # New keys come selected: thousands of them, which G in the Graph Editor would all move.
    unselected = np.zeros(count, dtype=bool)
    for flag in ("select_control_point", "select_left_handle", "select_right_handle"):
        points.foreach_set(flag, unselected)
    fcurve.update()
    return fcurve


# RNA enum values of 'CONSTANT' and 'LINEAR' in Keyframe.interpolation (stable since 2.8).
_CONSTANT, _LINEAR = 0, 1


def write_bake(scene, targets, first_frame, skip_keys=()):
    """Write every target not in ``skip_keys``; record fingerprints of what was written.

    Returns the list of targets written.
    """
    settings = scene.latentwalk
    recorded = load_fingerprints(settings)
    written = []
    for target in targets:
        if target.locked or target.key in skip_keys:
            continue
        fcurve = write_curve(scene, target, first_frame)
        recorded[target.key] = fingerprint(fcurve)
        written.append(target)
    settings.baked_fingerprints = json.dumps(recorded, sort_keys=True)
    return written


# --- Retiming: keep what the artist keyed at the same time in the song -------------------------------

class FrameMap:
    """Blender frame at the old timing -> frame at the new one, keeping seconds from the song's start.

    frame' = new_start + (frame - old_start) * ratio, ratio = new fps / old fps.
    """

    def __init__(self, old_start, new_start, ratio):
        self.old_start, self.new_start, self.ratio = float(old_start), float(new_start), float(ratio)

    @property
    def is_identity(self):
        return self.old_start == self.new_start and self.ratio == 1.0

    def __call__(self, frame):
        return self.new_start + (np.asarray(frame, dtype=np.float64) - self.old_start) * self.ratio


# Modifiers whose output depends on the frame number in a way no parameter change maps exactly.
_UNRETIMABLE_MODIFIERS = {"GENERATOR": "Generator", "PYTHON": "Python"}


def retime_fcurve(fcurve, frame_map):
    """Move ``fcurve``'s keys, handles and frame-based modifier settings by ``frame_map``.

    Returns what could not be retimed (phrases; empty when all of it was).
    """
    points = fcurve.keyframe_points
    count = len(points)
    for attribute in ("co", "handle_left", "handle_right"):
        buffer = np.empty(count * 2, dtype=np.float32)
        points.foreach_get(attribute, buffer)
        buffer[0::2] = frame_map(buffer[0::2])
        points.foreach_set(attribute, buffer)
    problems = []
    ratio = frame_map.ratio
    for modifier in fcurve.modifiers:
        if modifier.use_restricted_range:
            start, end = frame_map([modifier.frame_start, modifier.frame_end])
            modifier.frame_start, modifier.frame_end = float(start), float(end)
            modifier.frame_start = float(start)  # the setters clamp against each other
            modifier.blend_in, modifier.blend_out = modifier.blend_in * ratio, modifier.blend_out * ratio
        if modifier.type == "NOISE":  # noise of (frame - offset) / scale
            modifier.scale *= ratio
            modifier.offset = float(frame_map(modifier.offset))
            if compat.is_legacy_noise(modifier):
                problems.append("its Noise modifier (Blender's legacy noise) keeps its speed in seconds but not "
                                "its exact pattern")
        elif modifier.type == "STEPPED":
            modifier.frame_step *= ratio
            modifier.frame_offset = float(frame_map(modifier.frame_offset))
        elif modifier.type == "ENVELOPE":
            # Read every frame first, then set each by index: no Python reference to a control point
            # is held across a write (a crash was seen once in bpy 4.2 while iterating and writing).
            points = modifier.control_points
            for index, frame in enumerate(frame_map([point.frame for point in points])):
                points[index].frame = float(frame)
        elif modifier.type == "LIMITS":
            modifier.min_x, modifier.max_x = (float(x) for x in frame_map([modifier.min_x, modifier.max_x]))
        elif modifier.type == "FNGENERATOR":  # fn(multiplier * frame + offset)
            multiplier = modifier.phase_multiplier
            modifier.phase_multiplier = multiplier / ratio
            modifier.phase_offset = (modifier.phase_offset + multiplier * frame_map.old_start
                                     - multiplier * frame_map.new_start / ratio)
        elif modifier.type in _UNRETIMABLE_MODIFIERS:
            problems.append(f"its {_UNRETIMABLE_MODIFIERS[modifier.type]} modifier (a function of the frame "
                            "number) was left as it is")
    fcurve.update()
    return problems


def curve_label(settings, data_path, index=0):
    """A name an artist recognises for an F-curve on the scene: "Bass (60-250 Hz) Weight", "Onset"."""
    baked = next((t.label for t in targets_for(settings) if t.data_path == data_path and t.index == index), None)
    if baked is not None:
        return baked
    match = _BAND_PATH.match(data_path)
    if match and int(match.group(1)) < len(settings.bands):
        band = settings.bands[int(match.group(1))]
        prop = match.group(2).lstrip(".").split(".")[-1]
        return f"{band.name} {prop.replace('_', ' ').title()}"
    name = data_path.replace("latentwalk.", "").replace("diffusion.", "").replace("walk.", "")
    return name.replace("_", " ").title() + (f"[{index}]" if index else "")


def modifier_names(fcurve):
    """The F-curve's modifiers as the Graph Editor names them ("Noise", "Cycles")."""
    return [compat.modifier_name(m) for m in fcurve.modifiers]


# --- Band identity: bands are addressed by index, so every path follows its band ------------------

_BAND_PATH = re.compile(r"^latentwalk\.bands\[(\d+)\](.*)$")
_BAND_REFERENCE = re.compile(r"latentwalk\.bands\[(\d+)\]")
REMOVED_BAND_PREFIX = "removed band: "


def move_item_curves(scene, collection, new_index_of):
    """Move the F-curves and drivers on ``scene.latentwalk.<collection>[i]`` to item i's new index.

    new_index_of : list, one entry per item before the change: its index after it, or None
        for a removed item, whose curves and drivers are deleted.
    Returns the path mapping used: old data path -> new one (None: removed).
    """
    pattern = re.compile(rf"^latentwalk\.{collection}\[(\d+)\](.*)$")

    def new_path(path):
        match = pattern.match(path)
        if match is None or int(match.group(1)) >= len(new_index_of):
            return path
        new = new_index_of[int(match.group(1))]
        return None if new is None else f"latentwalk.{collection}[{new}]{match.group(2)}"

    for fcurves in compat.fcurve_collections(scene) + [scene.animation_data.drivers if scene.animation_data else []]:
        moves = []
        for fcurve in list(fcurves):
            path = new_path(fcurve.data_path)
            if path is None:
                fcurves.remove(fcurve)
            elif path != fcurve.data_path:
                moves.append((fcurve, path))
        for fcurve, path in moves:  # all paths computed first: a move never meets a half-moved list
            fcurve.data_path = path
    return new_path


def remap_bands(scene, new_index_of):
    """Keep every animation and driver on its band after the band list changed order.

    new_index_of : list, one entry per band before the change: its index after the
        change, or None for a removed band.

    F-curves (the action and NLA strips) and drivers on a removed band's properties are
    deleted; driver variables that read a removed band are pointed at a path that
    resolves to nothing (Blender shows them as invalid) rather than at another band.
    Returns one phrase per driver variable left reading nothing.
    """
    settings = scene.latentwalk
    old_titles = [b.title for b in settings.bands]

    new_path = move_item_curves(scene, "bands", new_index_of)

    recorded = load_fingerprints(settings)
    renamed = {}
    for key, value in recorded.items():
        path = new_path(key)
        if path is not None:
            renamed[path] = value
    settings.baked_fingerprints = json.dumps(renamed, sort_keys=True)

    orphaned = []
    removed_read = []

    def reference(match):
        old = int(match.group(1))
        if old >= len(new_index_of):
            return match.group(0)
        new = new_index_of[old]
        if new is None:
            removed_read.append(old_titles[old])
            return f'latentwalk.bands["{REMOVED_BAND_PREFIX}{old_titles[old]}"]'
        return f"latentwalk.bands[{new}]"

    for id_data, driver_curve in compat.all_drivers():
        for variable in driver_curve.driver.variables:
            for target in variable.targets:
                reads_scene = target.id == scene or (
                    variable.type == "CONTEXT_PROP" and getattr(target, "context_property", "") == "ACTIVE_SCENE")
                if not reads_scene or not target.data_path:
                    continue
                removed_read.clear()
                path = _BAND_REFERENCE.sub(reference, target.data_path)
                if path != target.data_path:
                    target.data_path = path
                for title in removed_read:
                    orphaned.append(f"the driver on {id_data.name} {driver_curve.data_path} (variable "
                                    f"'{variable.name}') read the removed band {title} and now reads nothing")
    return orphaned


def remove_band(scene, index):
    """Remove band ``index`` with its animation and drivers; the other bands keep theirs.

    Returns phrases for driver variables elsewhere that read the removed band.
    """
    settings = scene.latentwalk
    mapping = [i if i < index else (None if i == index else i - 1) for i in range(len(settings.bands))]
    orphaned = remap_bands(scene, mapping)
    settings.bands.remove(index)
    return orphaned


def move_band(scene, index, new_index):
    """Move band ``index`` to ``new_index``; its animation and drivers move with it."""
    settings = scene.latentwalk
    order = list(range(len(settings.bands)))
    order.insert(new_index, order.pop(index))  # order[new position] = old index
    mapping = [order.index(i) for i in range(len(order))]
    remap_bands(scene, mapping)
    settings.bands.move(index, new_index)
