"""The add-on as users install it: scripts/build_extension.py builds one zip, Blender's own
extension tool validates it, and it installs, enables and bakes a song as an extension on
bpy 5.0.1 (here) and as a legacy add-on on Debian's Blender 3.4.1 (tests/app)."""

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import synth

pytest.importorskip("bpy")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

def build(out_folder):
    result = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "build_extension.py"), "--out",
                             str(out_folder)], capture_output=True, text=True, cwd=str(out_folder))
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    return build(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    signal = synth.clicks(np.arange(0.5, 3.0, 0.5), 44100, 3.0) + synth.tone(100, 44100, 3.0, 0.2)
    return synth.write(tmp_path_factory.mktemp("song") / "song.wav", signal, 44100)


def test_the_zip_is_a_valid_extension_and_a_legacy_add_on(package):
    from build_extension import find_blender_ext

    assert os.path.basename(package) == "blender_latentwalk-0.1.0.zip"
    validate = subprocess.run([sys.executable, find_blender_ext(), "validate", package], capture_output=True,
                              text=True)
    assert validate.returncode == 0, validate.stdout + validate.stderr
    with zipfile.ZipFile(package) as archive:
        names = archive.namelist()
    # One top-level folder (what Blender 3.x's add-on install unpacks), the manifest in it, no caches.
    assert {name.split("/")[0] for name in names} == {"blender_latentwalk"}
    assert "blender_latentwalk/blender_manifest.toml" in names and "blender_latentwalk/__init__.py" in names
    assert "blender_latentwalk/engine/walk/data/imagenet_classes.tsv" in names
    # What a farm worker with the add-on installed runs, and the job type a Flamenco Manager loads.
    assert "blender_latentwalk/scripts/render.py" in names
    assert "blender_latentwalk/farm/latentwalk_flamenco.js" in names
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]


def test_an_invalid_manifest_is_refused_by_the_build(tmp_path, monkeypatch):
    import shutil

    import build_extension

    source = tmp_path / "blender_latentwalk"
    shutil.copytree(build_extension.SOURCE, source, ignore=shutil.ignore_patterns("__pycache__"))
    manifest = source / "blender_manifest.toml"
    manifest.write_text(manifest.read_text().replace('tagline = "', 'tagline = "' + "x" * 70))
    monkeypatch.setattr(build_extension, "SOURCE", str(source))
    with pytest.raises(SystemExit, match="tagline"):
        build_extension.build(str(tmp_path / "dist"), build_extension.find_blender_ext())


def test_installed_extension_enables_and_bakes_a_song(package, song, tmp_path):
    script = tmp_path / "install_and_bake.py"
    script.write_text("""
import json, sys, bpy
zip_path, song = sys.argv[sys.argv.index("--") + 1:]
status = bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
module = "bl_ext.user_default.blender_latentwalk"
scene = bpy.context.scene
scene.latentwalk.audio_path = song
baked = bpy.ops.latentwalk.bake()
print("RESULT " + json.dumps({
    "install": sorted(status), "enabled": module in bpy.context.preferences.addons, "bake": sorted(baked),
    "from": sys.modules[module].__file__, "summary": scene.latentwalk.last_bake_summary}))
""")
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "user"))
    env.pop("PYTHONPATH", None)
    result = subprocess.run([sys.executable, str(script), "--", package, song], capture_output=True, text=True,
                            env=env, cwd=str(tmp_path))  # not the repository: only the installed copy can import
    line = next((l for l in result.stdout.splitlines() if l.startswith("RESULT ")), None)
    assert line is not None, result.stdout[-2000:] + result.stderr[-2000:]
    found = json.loads(line[7:])
    assert found["install"] == ["FINISHED"] and found["enabled"] and found["bake"] == ["FINISHED"]
    assert found["from"].startswith(str(tmp_path / "user" / "extensions" / "user_default" / "blender_latentwalk"))
    assert "25 curves" in found["summary"], found
