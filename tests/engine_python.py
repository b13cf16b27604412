"""The Python that renders, as a user of this Blender has it.

Blender's own Python (the bpy 5.0.1 wheel's .venv here) may have torch and diffusers;
the bpy 4.2 wheel's does not, so a 4.2 user sets the add-on's Engine Python to the
project's .venv/bin/python and the worker runs there. The tests do the same: models,
PNG and video checks run in that Python, never skipped for want of torch in Blender's.
"""

import json
import os
import struct
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_PYTHON = os.path.join(ROOT, ".venv", "bin", "python")
RENDER_MODULES = ("torch", "diffusers", "pytorch_pretrained_biggan", "PIL", "av")


def _has_modules(python):
    code = "import " + ", ".join(RENDER_MODULES)
    return subprocess.run([python, "-c", code], capture_output=True, cwd=ROOT).returncode == 0


def find():
    """Blender's own Python when it can render, else .venv/bin/python; None when neither can."""
    for python in (sys.executable, VENV_PYTHON):
        if os.path.isfile(python) and _has_modules(python):
            return python
    return None


def run(python, code, *arguments):
    """Run ``code`` in ``python`` with the add-on importable; returns its stdout."""
    environment = dict(os.environ, PYTHONPATH=ROOT)
    result = subprocess.run([python, "-c", code, *arguments], capture_output=True, text=True, cwd=ROOT,
                            env=environment)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def make_tiny_biggan(python, folder):
    return run(python, "import sys; from blender_latentwalk.engine.generators import biggan; "
                       "print(biggan.make_tiny_model(sys.argv[1]))", str(folder)).strip()


def make_tiny_models(python, folder):
    """(BigGAN folder, img2img pipeline folder): untrained tiny models in the real formats."""
    return tuple(run(python, "import sys, os; from blender_latentwalk.engine.generators import biggan; from blender_latentwalk.engine.diffusion import img2img; "
                             "print(biggan.make_tiny_model(os.path.join(sys.argv[1], 'biggan-tiny-UNTRAINED'))); "
                             "print(img2img.make_tiny_pipeline(os.path.join(sys.argv[1], 'sd-tiny-UNTRAINED')))",
                     str(folder)).split())


def png_size(path):
    """(width, height) from a PNG's IHDR chunk."""
    with open(path, "rb") as file:
        header = file.read(24)
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", header[16:24])


def video_streams(python, path):
    """{stream type: {"codec", "seconds", "width", "height"}} of a video, read with PyAV."""
    code = ("import av, json, sys\n"
            "with av.open(sys.argv[1]) as c:\n"
            "    print(json.dumps({s.type: {'codec': s.codec_context.name, 'seconds': float(s.duration * s.time_base),"
            " 'width': getattr(s.codec_context, 'width', 0), 'height': getattr(s.codec_context, 'height', 0)}"
            " for s in c.streams}))\n")
    return json.loads(run(python, code, str(path)))
