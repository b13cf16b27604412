"""Modulation: a render setting follows a baked curve (base + amount x curve) without a driver."""

import bpy
import numpy as np
import pytest

from blender_latentwalk.blender import compat, sampling


@pytest.fixture
def baked(scene, song):
    scene.latentwalk.audio_path = song
    assert bpy.ops.latentwalk.bake() == {"FINISHED"}
    scene.latentwalk.ensure_default_classes()
    return scene


def _add(scene, target, curve, amount):
    assert bpy.ops.latentwalk.modulation_add() == {"FINISHED"}
    item = scene.latentwalk.modulations[-1]
    item.target, item.curve_choice, item.amount = target, curve, amount
    return item


def test_strength_follows_a_band_with_amount_and_limits(baked):
    settings = baked.latentwalk
    bass = [b.title for b in settings.bands].index("Presence")
    settings.diffusion.strength = 0.2
    _add(baked, "strength", "band:Presence", 0.5)

    plan = sampling.sample_plan(baked)

    bass_curve = plan.bands[bass]
    assert bass_curve.max() - bass_curve.min() > 0.5  # the clicks move the song's presence band (its bass is a held note), so strength must
    np.testing.assert_allclose(plan.strength, np.clip(0.2 + 0.5 * bass_curve, 0, 1), atol=1e-6)
    assert not baked.animation_data.drivers  # nothing in the scene depends on itself

    # Several modulations of one setting add up, and the sum stays inside the setting's range.
    _add(baked, "strength", "onset", 1.0)
    plan = sampling.sample_plan(baked)
    expected = np.clip(0.2 + 0.5 * bass_curve + plan.onset, 0.0, 1.0)
    np.testing.assert_allclose(plan.strength, expected, atol=1e-6)
    assert plan.strength.max() == pytest.approx(1.0)  # the clicks push it past 1: clipped


def test_an_animated_amount_and_a_muted_modulation(baked):
    settings = baked.latentwalk
    settings.walk.pulse = 0.5
    item = _add(baked, "pulse", "onset", 0.0)
    item.keyframe_insert("amount", frame=1)
    item.amount = 1.0
    item.keyframe_insert("amount", frame=61)

    plan = sampling.sample_plan(baked)
    # The song's first click, 0.5 s in (frame 1 holds a hit too: the held tones start there): amount still small.
    first_click = 1 + int(np.argmax(plan.onset[1:] > 0.5))
    assert first_click == 15
    assert 0 < plan.pulse[first_click] - 0.5 < 0.5 * plan.onset[first_click]
    assert plan.pulse[60:] == pytest.approx(0.5 + plan.onset[60:], abs=1e-6)  # amount 1 from frame 61
    assert plan.pulse[60:].max() > 1.2

    item.mute = True
    np.testing.assert_allclose(sampling.sample_plan(baked).pulse, 0.5)


def test_steps_stay_whole_and_at_least_one(baked):
    baked.latentwalk.diffusion.steps = 2
    _add(baked, "steps", "onset", -3.0)
    plan = sampling.sample_plan(baked)
    expected = np.clip(np.round(2 - 3.0 * plan.onset), 1, None)
    np.testing.assert_array_equal(plan.steps, expected)
    assert set(np.unique(plan.steps)) == {1.0, 2.0}  # the clicks take it down to the minimum


def test_the_choice_follows_its_band_and_a_removed_band_is_refused(baked):
    settings = baked.latentwalk
    item = _add(baked, "strength", "band:Mids", 0.5)
    settings.active_band_index = [b.title for b in settings.bands].index("Mids")
    assert bpy.ops.latentwalk.band_move(direction="UP") == {"FINISHED"}
    assert item.curve_choice == "band:Mids"  # stored by name, not by the menu's number

    settings.active_band_index = [b.title for b in settings.bands].index("Mids")
    assert bpy.ops.latentwalk.band_remove() == {"FINISHED"}
    with pytest.raises(Exception, match="follows the band 'Mids', which is not in the band list"):
        sampling.sample_plan(baked)


def test_removing_a_modulation_keeps_the_others_keys(baked):
    first = _add(baked, "strength", "onset", 0.1)
    second = _add(baked, "jitter", "onset", 0.2)
    second.keyframe_insert("amount", frame=1)
    second.amount = 0.4
    second.keyframe_insert("amount", frame=50)
    first.keyframe_insert("amount", frame=1)

    assert bpy.ops.latentwalk.modulation_remove(index=0) == {"FINISHED"}

    settings = baked.latentwalk
    assert len(settings.modulations) == 1 and settings.modulations[0].target == "jitter"
    fcurve = compat.find_fcurve(baked, "latentwalk.modulations[0].amount", 0)
    assert fcurve is not None and [k.co.y for k in fcurve.keyframe_points] == pytest.approx([0.2, 0.4])
    assert compat.find_fcurve(baked, "latentwalk.modulations[1].amount", 0) is None


def test_a_renamed_band_keeps_its_modulation_and_two_bands_of_one_name_are_refused(baked):
    settings = baked.latentwalk
    bass = [b.title for b in settings.bands].index("Presence")
    item = _add(baked, "strength", "band:Presence", 0.5)
    settings.bands[bass].title = "Low End"
    assert item.curve == "band:Low End" and item.curve_choice == "band:Low End"
    plan = sampling.sample_plan(baked)
    np.testing.assert_allclose(plan.strength, np.clip(settings.diffusion.strength + 0.5 * plan.bands[bass], 0, 1),
                               atol=1e-6)

    settings.bands[bass + 1].title = "Low End"  # now two bands answer to the name
    assert item.curve == "band:Low End"
    with pytest.raises(Exception, match="2 bands have that name"):
        sampling.sample_plan(baked)


def test_a_driver_on_a_setting_that_reads_the_scenes_own_curves_is_named_in_the_panel(baked):
    """Blender reports a dependency cycle for it (one ID drives itself); the Modulation panel says so."""
    from blender_latentwalk.blender import modulation

    scene = baked
    assert modulation.self_reading_drivers(scene) == []
    driver = scene.driver_add("latentwalk.diffusion.strength").driver
    driver.type, driver.expression = "SCRIPTED", "0.5 + 0.4 * bass"
    variable = driver.variables.new()
    variable.name, variable.type = "bass", "SINGLE_PROP"
    variable.targets[0].id_type = "SCENE"
    variable.targets[0].id = scene
    variable.targets[0].data_path = "latentwalk.bands[1].value"
    assert modulation.self_reading_drivers(scene) == ["Strength"]
