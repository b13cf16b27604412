"""Build the add-on as one zip that installs both ways:

    .venv/bin/python scripts/build_extension.py [--out dist/]

- as a Blender 4.2+ extension (Preferences > Get Extensions > Install from Disk, or
  ``blender --command extension install-file``): Blender's own extension tool builds and
  validates it from ``blender_latentwalk/blender_manifest.toml``;
- as a legacy add-on on Blender 3.x (Preferences > Add-ons > Install): the files sit in
  one top-level folder, ``blender_latentwalk/``, which Blender 3.x unpacks into its add-ons
  folder and Blender 4.2+ also accepts.

Blender's extension tool (``blender_ext.py``) is taken from the bpy wheel in this Python,
or from a Blender given with ``--blender-ext PATH``. Prints the zip's path.
"""

import argparse
import glob
import importlib.util
import os
import subprocess
import sys
import tempfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.path.join(ROOT, "blender_latentwalk")
TOP_FOLDER = "blender_latentwalk"


def find_blender_ext():
    """Blender's extension command-line tool inside the bpy wheel, or None."""
    spec = importlib.util.find_spec("bpy")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        found = sorted(glob.glob(os.path.join(folder, "*", "scripts", "addons_core", "bl_pkg", "cli", "blender_ext.py")))
        if found:
            return found[-1]
    return None


def run_tool(blender_ext, *arguments):
    result = subprocess.run([sys.executable, blender_ext, *arguments], capture_output=True, text=True)
    if result.returncode != 0:
        message = (result.stdout + result.stderr).strip().splitlines()
        sys.exit(f"error: Blender's extension tool failed ({' '.join(arguments[:1])}): "
                 f"{message[-1] if message else result.returncode}")
    return result.stdout


def build(out_folder, blender_ext):
    """Build, repack under one top-level folder, validate; returns the zip's path."""
    os.makedirs(out_folder, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="latentwalk-build-") as temp:
        run_tool(blender_ext, "build", "--source-dir", SOURCE, "--output-dir", temp)
        (built,) = glob.glob(os.path.join(temp, "*.zip"))
        path = os.path.join(os.path.abspath(out_folder), os.path.basename(built))
        partial = path + ".partial"
        with zipfile.ZipFile(built) as source, zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as target:
            for item in source.infolist():
                target.writestr(f"{TOP_FOLDER}/{item.filename}", source.read(item.filename))
        run_tool(blender_ext, "validate", partial)  # what Blender checks when it installs the zip
        os.replace(partial, path)
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.path.join(ROOT, "dist"), help="folder for the zip (default: dist/)")
    parser.add_argument("--blender-ext", help="path to Blender's blender_ext.py (default: the bpy wheel's)")
    args = parser.parse_args()
    blender_ext = args.blender_ext or find_blender_ext()
    if blender_ext is None or not os.path.isfile(blender_ext):
        sys.exit("error: Blender's extension tool (blender_ext.py) was not found: run this with the project's "
                 ".venv/bin/python (it has the bpy wheel), or give --blender-ext PATH from a Blender 4.2+ install "
                 "(<blender>/<version>/scripts/addons_core/bl_pkg/cli/blender_ext.py).")
    print(build(args.out, blender_ext))


if __name__ == "__main__":
    main()
