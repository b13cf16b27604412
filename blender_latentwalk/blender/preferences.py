"""Add-on preferences: which Python runs the engine, and how Set Up Render Environment makes one."""

import bpy
from bpy.props import EnumProperty, StringProperty

from . import compat, jobs

# The add-on's module name: "blender_latentwalk" as a legacy add-on,
# "bl_ext.<repository>.blender_latentwalk" as a 4.2+ extension.
ADDON_ID = __package__.rpartition(".")[0]


# The PyTorch builds Set Up Render Environment can install (engine/setup/environment.py's variants).
TORCH_BUILD_ITEMS = [
    ("auto", "Automatic", "Detect the GPU: NVIDIA (CUDA), AMD on Linux (ROCm), Apple silicon (MPS), else the CPU"),
    ("cu126", "NVIDIA CUDA 12.6", "PyTorch built for CUDA 12.6 (NVIDIA drivers for CUDA 12.0 and newer)"),
    ("cu128", "NVIDIA CUDA 12.8", "PyTorch built for CUDA 12.8 (NVIDIA drivers for CUDA 12.8 and newer)"),
    ("cu130", "NVIDIA CUDA 13.0", "PyTorch built for CUDA 13.0 (NVIDIA drivers for CUDA 13.0 and newer)"),
    ("rocm6.4", "AMD ROCm 6.4", "PyTorch built for AMD GPUs with ROCm 6.4 (Linux)"),
    ("mps", "Apple Metal (MPS)", "PyPI's PyTorch for macOS on Apple silicon"),
    ("cpu", "CPU only", "PyTorch without GPU support (slow, but runs everywhere)"),
]


class LatentWalkPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    engine_python: StringProperty(
        name="Engine Python",
        description="Python interpreter with the engine's requirements (librosa, torch, diffusers...), e.g. "
        "the project's .venv/bin/python. It runs the analysis and the render worker. Empty: Blender's own Python",
        subtype="FILE_PATH",
    )

    torch_build: EnumProperty(
        name="PyTorch Build", items=TORCH_BUILD_ITEMS, default="auto",
        description="Which PyTorch Set Up Render Environment installs: detected from the GPU, or chosen here",
    )
    torch_index_url: StringProperty(
        name="PyTorch Index",
        description="Package index Set Up Render Environment installs PyTorch from. Empty: PyTorch's own index "
        "for the build (download.pytorch.org); 'default': pip's configured index, as for the other packages; or "
        "the URL of a mirror. The LATENTWALK_TORCH_INDEX_URL environment variable does the same",
    )

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "engine_python")
        layout.label(text="Empty: Blender's own Python (it needs librosa, torch and diffusers installed).")
        self.draw_setup(layout.box())

    def draw_setup(self, box):
        """Set Up Render Environment (environment_setup.py): its button and choices, or the running set-up."""
        job = jobs.running("setup")
        if job is not None:
            box.label(text=job.status_line(), icon="SORTTIME")
            box.operator("latentwalk.setup_render_environment_cancel", icon="CANCEL")
            return
        row = box.row()
        row.operator("latentwalk.setup_render_environment", icon="CONSOLE")
        row.prop(self, "torch_build", text="PyTorch")
        box.prop(self, "torch_index_url")
        if not compat.online_access_allowed():
            box.label(text="Needs online access: " + compat.ALLOW_ONLINE_ACCESS, icon="ERROR")


class _Defaults:
    engine_python = ""
    torch_build = "auto"
    torch_index_url = ""


def get():
    """The preferences, or defaults when the add-on runs without being installed (tests, scripts)."""
    addon = bpy.context.preferences.addons.get(ADDON_ID) if bpy.context.preferences else None
    return addon.preferences if addon is not None and addon.preferences is not None else _Defaults()


classes = (LatentWalkPreferences,)
