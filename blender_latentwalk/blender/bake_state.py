"""Is the bake current? The timing the curves were baked at, against the scene now.

Curves are keyed one per frame at the bake's frame rate, from the song strip's
start. After the scene's fps (or fps base), the song strip's start, or the song
itself changes, the keys no longer sit on the music: Preview, Render and Encode
refuse (`check_current`), the panel says what changed, and headless scripts
re-bake. The record is a small JSON string on the scene, written by each bake.
"""

import json
import os

import bpy

from ..engine.errors import LatentWalkError
from . import sequencer


def _file_size(path):
    """The size of the file at a Blender path, or None when there is no file (an empty Song included)."""
    absolute = os.path.abspath(bpy.path.abspath(path)) if path else ""
    return os.path.getsize(absolute) if os.path.isfile(absolute) else None


def rate(fps, fps_base):
    return fps / fps_base


def format_rate(fps, fps_base):
    """'30 fps', '29.97 fps', '23.976 fps'."""
    return f"{rate(fps, fps_base):.5g} fps"


def record(scene, song_start, fitted_end):
    """Remember what the bake was timed against. ``fitted_end``: the end frame it set, or a negative mark."""
    audio_path = scene.latentwalk.audio_path
    scene.latentwalk.baked_timing = json.dumps({
        "fps": scene.render.fps, "fps_base": scene.render.fps_base, "song_start": int(song_start),
        # The Song as the artist set it ("//song.wav" stays valid when the project folder moves) and where it was.
        "audio": audio_path, "audio_absolute": os.path.abspath(bpy.path.abspath(audio_path)),
        "audio_size": _file_size(audio_path), "fitted_end": int(fitted_end),
    }, sort_keys=True)


def recorded(settings):
    """The last bake's timing record (dict), or None when there is no usable one."""
    try:
        timing = json.loads(settings.baked_timing or "null")
    except ValueError:
        return None
    return timing if isinstance(timing, dict) and "fps" in timing else None


def is_baked(settings):
    return bool(settings.baked_fingerprints)


def same_song(path_a, path_b):
    from .sequencer import same_file

    return bool(path_a) and bool(path_b) and same_file(path_a, path_b)


def is_baked_song(timing, audio_path):
    """True when ``audio_path`` is the song of the bake ``timing`` records."""
    return (audio_path == timing["audio"] or same_song(audio_path, timing["audio"])
            or same_song(audio_path, timing.get("audio_absolute", "")))


def changes(scene, audio_path=None):
    """What changed since the bake, one phrase each; empty when the bake is current.

    audio_path: the song a caller is about to use (headless ``--audio``), if not the scene's.
    """
    settings = scene.latentwalk
    if not is_baked(settings):
        return ["nothing is baked yet"]
    timing = recorded(settings)
    if timing is None:
        return ["the bake has no record of its frame rate (it was made by an older version)"]
    found = []
    now, then = (scene.render.fps, scene.render.fps_base), (timing["fps"], timing["fps_base"])
    if abs(rate(*now) - rate(*then)) > 1e-9 * rate(*then):
        found.append(f"the scene is now {format_rate(*now)}, the curves were baked at {format_rate(*then)}")
    song_name = os.path.basename(bpy.path.abspath(timing["audio"]))
    song_changed = False
    for label, path in (("--audio", audio_path), ("the Song", settings.audio_path)):
        if path and not is_baked_song(timing, path):
            found.append(f"{label} is now {os.path.basename(bpy.path.abspath(path))}, "
                         f"the curves were baked from {song_name}")
            song_changed = True
            break
    else:
        size = _file_size(settings.audio_path)
        if size is not None and timing.get("audio_size") not in (None, size):
            found.append(f"{song_name} changed on disk since the bake")
    strip = sequencer.song_strip(scene)
    if strip is not None:
        if settings.audio_path and not song_changed and not same_song(strip.sound.filepath, settings.audio_path):
            found.append(f"the song strip '{strip.name}' now plays "
                         f"{os.path.basename(bpy.path.abspath(strip.sound.filepath))}, not the Song "
                         f"{os.path.basename(bpy.path.abspath(settings.audio_path))}")
        if int(strip.frame_start) != timing["song_start"]:
            found.append(f"the song strip now starts at frame {int(strip.frame_start)}, the curves were baked "
                         f"from frame {timing['song_start']}")
    return found


REBAKE_HINT = "press Bake Curves to re-bake (curves you edited are kept and retimed)"


def check_current(scene):
    """Raise a `LatentWalkError` saying what changed unless the bake matches the scene."""
    found = changes(scene)
    if found == ["nothing is baked yet"]:
        raise LatentWalkError("nothing is baked yet: press Bake Curves first.")
    if found:
        raise LatentWalkError(f"the bake is out of date ({'; '.join(found)}): {REBAKE_HINT}.")
