"""Render presets through Blender's preset mechanism: the three that ship, and the artist's own."""

import os

import bpy
import pytest

from blender_latentwalk.blender import presets

MENU = "LATENTWALK_MT_render_presets"


def apply(name):
    path = os.path.join(presets.BUNDLED_FOLDER, f"{name}.py")
    assert bpy.ops.script.execute_preset(filepath=path, menu_idname=MENU) == {"FINISHED"}


@pytest.mark.parametrize("name, expected", [
    ("Fast_Preview", {"model": "none"}),
    ("Turbo", {"model": "stabilityai/sd-turbo", "tiny_vae": "madebyollin/taesd", "steps": 2, "guidance": 0.0}),
    ("Quality", {"model": "stable-diffusion-v1-5/stable-diffusion-v1-5", "tiny_vae": "", "steps": 20,
                 "guidance": 7.5}),
])
def test_a_shipped_preset_sets_the_render_panel(scene, name, expected):
    diffusion = scene.latentwalk.diffusion
    diffusion.model, diffusion.tiny_vae, diffusion.steps, diffusion.guidance = "x", "y", 7, 3.0
    apply(name)
    assert {key: getattr(diffusion, key) for key in expected} == pytest.approx(expected)
    assert getattr(bpy.types, MENU).bl_label == name.replace("_", " ")  # the menu shows the chosen one


def test_the_artists_own_preset_is_saved_listed_applied_and_removed(scene, tmp_path, monkeypatch):
    monkeypatch.setenv("BLENDER_USER_SCRIPTS", str(tmp_path / "scripts"))
    user_folder = bpy.utils.user_resource("SCRIPTS", path=os.path.join("presets", presets.PRESET_SUBDIR))
    if not user_folder.startswith(str(tmp_path)):
        pytest.skip("this Blender reads BLENDER_USER_SCRIPTS only at start")
    diffusion = scene.latentwalk.diffusion
    diffusion.model, diffusion.steps, diffusion.strength = "my/model", 6, 0.35
    assert bpy.ops.latentwalk.render_preset_add(name="My Look") == {"FINISHED"}
    saved = os.path.join(user_folder, "My_Look.py")
    assert os.path.isfile(saved)
    assert bpy.utils.preset_find("My_Look", presets.PRESET_SUBDIR) == saved
    diffusion.model, diffusion.steps, diffusion.strength = "other", 1, 1.0
    assert bpy.ops.script.execute_preset(filepath=saved, menu_idname=MENU) == {"FINISHED"}
    assert (diffusion.model, diffusion.steps, diffusion.strength) == ("my/model", 6, pytest.approx(0.35))
    assert bpy.ops.latentwalk.render_preset_add(remove_active=True) == {"FINISHED"}  # the "-" button
    assert not os.path.exists(saved)
