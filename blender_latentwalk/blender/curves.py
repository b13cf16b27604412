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
from ..engine.features import PITCH_CLASSES

GROUP_NAME = "Latent Walk"


@dataclass(frozen=True)
class CurveTarget:
    """One curve the bake writes: where it goes and what it holds."""

    data_path: str
    index: int
    label: str  # for messages: "Bass (60-250 Hz)", "Onset", "Chroma C#"
    values: np.ndarray  # shape (n_frames,); None when only the address matters
    locked: bool

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
    """Replace the curve's keys with one linear key per frame from ``first_frame``."""
    fcurve = compat.ensure_fcurve(scene, target.data_path, target.index, GROUP_NAME)
    count = len(target.values)
    coordinates = np.empty((count, 2), dtype=np.float32)
    coordinates[:, 0] = np.arange(count, dtype=np.float64) + first_frame
    coordinates[:, 1] = target.values
    points = fcurve.keyframe_points
    points.clear()
    points.add(count)
    points.foreach_set("co", coordinates.ravel())
    # Linear keys on every frame: the curve evaluates to the analysed value on each
    # frame and never overshoots between them.
    points.foreach_set("interpolation", np.full(count, _LINEAR, dtype=np.int32))
    fcurve.update()
    return fcurve


# RNA enum value of 'LINEAR' in Keyframe.interpolation (stable since 2.8).
_LINEAR = 1


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


def remove_band_curve(scene, band_index, band_count):
    """Delete band ``band_index``'s curve and move later bands' curves down one index.

    Keeps every remaining band attached to its own curve after a band is removed
    from the list (curves are addressed by index).
    """
    settings = scene.latentwalk
    recorded = load_fingerprints(settings)
    doomed = compat.find_fcurve(scene, f"latentwalk.bands[{band_index}].value", 0)
    if doomed is not None:
        compat.remove_fcurve(scene, doomed)
    recorded.pop(f"latentwalk.bands[{band_index}].value[0]", None)
    for index in range(band_index + 1, band_count):
        old_path, new_path = f"latentwalk.bands[{index}].value", f"latentwalk.bands[{index - 1}].value"
        fcurve = compat.find_fcurve(scene, old_path, 0)
        if fcurve is not None:
            fcurve.data_path = new_path
        if f"{old_path}[0]" in recorded:
            recorded[f"{new_path}[0]"] = recorded.pop(f"{old_path}[0]")
    settings.baked_fingerprints = json.dumps(recorded, sort_keys=True)
    _renumber_band_drivers(scene, band_index)


def _renumber_band_drivers(scene, removed_index):
    """Point drivers that read bands after ``removed_index`` at their band's new index."""
    pattern = re.compile(r"latentwalk\.bands\[(\d+)\]")

    def renumber(match):
        index = int(match.group(1))
        return f"latentwalk.bands[{index - 1 if index > removed_index else index}]"

    for collection in compat.animatable_id_collections():
        for id_data in collection:
            animation_data = getattr(id_data, "animation_data", None)
            if animation_data is None:
                continue
            for driver_curve in animation_data.drivers:
                for variable in driver_curve.driver.variables:
                    for target in variable.targets:
                        if target.id == scene and target.data_path:
                            target.data_path = pattern.sub(renumber, target.data_path)
