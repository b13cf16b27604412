"""An artist's steps (bake, edit, change, re-bake or render) with what they must see,
as plain functions: the add-on tests run them on the bpy wheels (5.0.1, 4.2) and
tests/app runs them inside Debian's Blender 3.4.1 (`blender -b -P`), which has no pytest.

Each takes a fresh scene with the add-on registered and the path of a 4 s song.
"""

import bpy

from blender_latentwalk.blender import bake_state, compat


def close(a, b, tolerance=1e-4):
    return abs(a - b) <= tolerance


def refusal(operator):
    """The error an operator reports (bpy raises it as RuntimeError), or None when it ran."""
    try:
        result = operator()
    except RuntimeError as error:
        return str(error)
    return None if result == {"FINISHED"} else f"returned {result}"


def band(settings, title):
    return next(b for b in settings.bands if b.title == title)


def fcurve(scene, path):
    return compat.find_fcurve(scene, path, 0)


def fps_change_is_refused_until_a_rebake_that_retimes_edits(scene, song):
    settings = scene.latentwalk
    scene.render.fps, scene.render.fps_base, scene.frame_start = 24, 1.0, 1
    settings.audio_path = song
    assert bpy.ops.latentwalk.bake() == {"FINISHED"}
    assert bake_state.changes(scene) == []
    # The artist lifts Bass at 1.0 s (frame 25), adds noise to it, and keys Bass Weight at 2.0 s (frame 49).
    bass = fcurve(scene, "latentwalk.bands[1].value")
    key = bass.keyframe_points[24]
    assert close(key.co.x, 25.0)
    key.co.y, key.handle_left_type, key.handle_right_type = 0.9, "FREE", "FREE"
    key.handle_left, key.handle_right = (23.0, 0.8), (27.0, 1.0)
    bass.modifiers.new("NOISE").scale = 4.0
    settings.bands[1].weight = 2.5
    scene.keyframe_insert("latentwalk.bands[1].weight", frame=49)
    settings.bands[1].weight = 1.0
    scene.keyframe_insert("latentwalk.bands[1].weight", frame=73)

    scene.render.fps, scene.render.fps_base = 30, 1.001  # 29.97
    changes = bake_state.changes(scene)
    assert len(changes) == 1 and "29.97 fps" in changes[0] and "24 fps" in changes[0], changes
    error = refusal(bpy.ops.latentwalk.preview)
    assert error is not None and "29.97 fps" in error and "Bake Curves" in error, error
    error = refusal(bpy.ops.latentwalk.render)
    assert error is not None and "out of date" in error, error

    assert bpy.ops.latentwalk.bake() == {"FINISHED"}  # edits kept (the dialog's default) and retimed
    assert bake_state.changes(scene) == []
    rate_ratio = (30 / 1.001) / 24
    bass = fcurve(scene, "latentwalk.bands[1].value")
    assert len(bass.keyframe_points) == 96  # the edited curve keeps its 24 fps keys, moved in time
    key = bass.keyframe_points[24]
    assert close(key.co.x, 1 + 24 * rate_ratio) and close(key.co.y, 0.9), tuple(key.co)
    assert close(key.handle_left.x, 1 + 22 * rate_ratio) and close(key.handle_right.x, 1 + 26 * rate_ratio)
    assert close(bass.keyframe_points[95].co.x, 1 + 95 * rate_ratio)
    assert close(bass.modifiers[0].scale, 4.0 * rate_ratio)
    weight = fcurve(scene, "latentwalk.bands[1].weight")
    assert [round(p.co.x, 4) for p in weight.keyframe_points] == [round(1 + 48 * rate_ratio, 4),
                                                                 round(1 + 72 * rate_ratio, 4)]
    onset = fcurve(scene, "latentwalk.onset")  # not edited: re-baked at the new rate
    assert len(onset.keyframe_points) == 120  # ceil(4 s * 29.97)
    assert scene.frame_end == 120


def removing_and_moving_bands_keeps_animation_and_drivers_on_their_band(scene, song):
    settings = scene.latentwalk
    settings.audio_path = song
    assert bpy.ops.latentwalk.bake() == {"FINISHED"}
    # Keyed Bass Weight, a driver on High Mids Weight, a driver on an object reading High Mids' energy,
    # and a driver on Jitter reading Bass Weight.
    settings.bands[1].weight = 2.5
    scene.keyframe_insert("latentwalk.bands[1].weight", frame=1)
    settings.bands[1].gain = 0.5
    scene.keyframe_insert("latentwalk.bands[1].gain", frame=1)
    weight_driver = scene.driver_add("latentwalk.bands[4].weight").driver
    weight_driver.type, weight_driver.expression = "SCRIPTED", "0.25"
    thing = bpy.data.objects.new("Pulse", None)
    scene.collection.objects.link(thing)
    location_driver = thing.driver_add("location", 0).driver
    location_driver.type = "AVERAGE"
    variable = location_driver.variables.new()
    variable.targets[0].id_type = "SCENE"
    variable.targets[0].id = scene
    variable.targets[0].data_path = "latentwalk.bands[4].value"
    jitter_driver = scene.driver_add("latentwalk.walk.jitter").driver
    jitter_driver.type = "AVERAGE"
    reader = jitter_driver.variables.new()
    reader.targets[0].id_type = "SCENE"
    reader.targets[0].id = scene
    reader.targets[0].data_path = "latentwalk.bands[1].weight"
    high_mids_energy = [fcurve(scene, "latentwalk.bands[4].value").evaluate(f) for f in range(1, 41)]

    def check(step):
        for frame in (10, 40):
            scene.frame_set(frame)
            assert close(band(settings, "Bass").weight, 2.5), step
            assert close(band(settings, "Bass").gain, 0.5), step
            assert close(band(settings, "High Mids").weight, 0.25), step
            assert close(band(settings, "High Mids").value, high_mids_energy[frame - 1]), step
            assert close(thing.location.x, high_mids_energy[frame - 1]), step
            assert close(settings.walk.jitter, 2.5), step
            for other in settings.bands:
                if other.title not in ("Bass", "High Mids"):
                    assert close(other.weight, 1.0) and close(other.gain, 1.0), (step, other.title)

    check("baked")
    settings.active_band_index = 0
    assert bpy.ops.latentwalk.band_remove() == {"FINISHED"}  # Sub
    check("Sub removed")
    settings.active_band_index = [b.title for b in settings.bands].index("High Mids")
    assert bpy.ops.latentwalk.band_move(direction="UP") == {"FINISHED"}
    assert [b.title for b in settings.bands][2] == "High Mids"
    check("High Mids moved up")
    settings.active_band_index = [b.title for b in settings.bands].index("Bass")
    assert bpy.ops.latentwalk.band_move(direction="DOWN") == {"FINISHED"}
    check("Bass moved down")
    assert bpy.ops.latentwalk.band_add() == {"FINISHED"}
    check("band added")
    assert fcurve(scene, f"latentwalk.bands[{len(settings.bands) - 1}].weight") is None
    settings.active_band_index = [b.title for b in settings.bands].index("High Mids")
    bpy.ops.latentwalk.band_remove()  # High Mids: the object's driver must read nothing, not another band
    scene.frame_set(40)
    assert "High Mids" in variable.targets[0].data_path and not location_driver.is_valid
    assert all(close(b.weight, 2.5 if b.title == "Bass" else 1.0) for b in settings.bands)
