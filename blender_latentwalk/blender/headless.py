"""What the headless scripts (scripts/bake.py, the add-on's scripts/render.py) share.

They run as ``blender -b [FILE.blend] --python-exit-code 1 -P SCRIPT -- ARGS`` or as
``python SCRIPT -- ARGS`` where ``import bpy`` works; a failure prints one line
starting with ``error:`` on stderr and exits with status 1.
"""

import argparse
import os
import sys

import bpy


def script_arguments(argv=None):
    """The arguments after ``--`` (Blender keeps the ones before it for itself)."""
    argv = sys.argv if argv is None else argv
    return argv[argv.index("--") + 1:] if "--" in argv else []


def ensure_registered():
    """Register the add-on unless Blender already has it enabled."""
    if not hasattr(bpy.types.Scene, "latentwalk"):
        from .. import register  # the package this module was imported under (an extension's bl_ext name too)

        register()


def fail(message):
    """Print one ``error:`` line on stderr and exit with status 1."""
    text = " | ".join(line.strip() for line in str(message).splitlines() if line.strip())
    print(f"error: {text}", file=sys.stderr, flush=True)
    sys.exit(1)


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose mistakes are one ``error:`` line and exit status 1, like every other failure."""

    def error(self, message):
        fail(f"{message} (see {self.prog} --help)")


def open_blend(path):
    if not os.path.isfile(path):
        fail(f"no .blend file at '{path}'.")
    try:
        bpy.ops.wm.open_mainfile(filepath=os.path.abspath(path))
    except RuntimeError as error:
        fail(f"cannot open '{path}': {str(error).strip().splitlines()[-1]}")


def save_blend(path):
    """Save the open file as ``path`` (creating its folder); exits on failure."""
    path = os.path.abspath(path)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    except OSError as error:
        fail(f"cannot create the folder for '{path}' ({error.strerror})")
    try:
        bpy.ops.wm.save_as_mainfile(filepath=path)
    except RuntimeError as error:
        fail(f"cannot save '{path}': {str(error).strip().splitlines()[-1]}")
    return path


def parse_frames(text):
    """--frames TEXT (Blender frames: 'A-B', 'A', or a farm chunk such as '1-3,5') -> merged
    [[first, last], ...]; exits with a line naming the bad part."""
    from ..engine.render import frame_ranges
    from ..engine.errors import LatentWalkError

    try:
        return frame_ranges.parse(text, "--frames")
    except LatentWalkError as error:
        fail(error)


def parse_size(text):
    try:
        width, height = (int(value) for value in text.lower().split("x"))
        if width >= 8 and height >= 8:
            return width, height
    except ValueError:
        pass
    fail(f"--size '{text}' is not WIDTHxHEIGHT (e.g. 1280x720).")
