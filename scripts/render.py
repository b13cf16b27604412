"""Render a Latent Walk music video, headless: runs the add-on's own script,
blender_latentwalk/scripts/render.py (the one a farm worker with the add-on installed runs;
its docstring lists the options).

    blender -b FILE.blend --python-exit-code 1 -P scripts/render.py -- --audio SONG --output DIR ...
    python scripts/render.py -- [--blend FILE.blend] --audio SONG --output DIR ...   (where `import bpy` works)
"""

import os
import runpy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
runpy.run_path(os.path.join(ROOT, "blender_latentwalk", "scripts", "render.py"), run_name="__main__")
