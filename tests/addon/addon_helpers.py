"""What the render tests share besides fixtures (those are in conftest.py)."""

import os

FPS = 24  # the render tests' scene rate


def pngs(folder):
    """{file name: bytes} of the PNG frames in ``folder``."""
    return {name: open(os.path.join(folder, name), "rb").read()
            for name in sorted(os.listdir(folder)) if name.endswith(".png")}
