"""Runs one scenario of tests/bake_scenarios.py inside the real Blender application:

    blender -b --factory-startup --python-exit-code 1 -P tests/app/bake_trust_in_blender.py -- SCENARIO SONG
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

import bpy  # noqa: E402

from blender_latentwalk.blender import headless  # noqa: E402

headless.ensure_registered()
import bake_scenarios  # noqa: E402

scenario, song = headless.script_arguments()
bpy.ops.wm.read_factory_settings(use_empty=True)
getattr(bake_scenarios, scenario)(bpy.context.scene, song)
print(f"PASSED {scenario} in Blender {bpy.app.version_string}", flush=True)
