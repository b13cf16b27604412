"""Add-on preferences: which Python runs the engine, and how Set Up Render Environment makes one."""

import textwrap

import bpy
from bpy.props import EnumProperty, StringProperty

from ..engine.setup.environment import DEFAULT_INDEX
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
        "for the build (download.pytorch.org); 'default': pip's configured index (PyPI), as for the other "
        "packages: the fix where download.pytorch.org cannot be reached; or the URL of a mirror. The "
        "LATENTWALK_TORCH_INDEX_URL environment variable does the same",
    )

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "engine_python")
        layout.label(text="Empty: Blender's own Python (it needs librosa, torch and diffusers installed).")
        self.draw_setup(layout.box(), context)

    def draw_setup(self, box, context=None):
        """Set Up Render Environment (environment_setup.py): its button and choices, or the running set-up."""
        job = jobs.running("setup")
        if job is not None:
            box.label(text=job.status_line(), icon="SORTTIME")
            box.operator("latentwalk.setup_render_environment_cancel", icon="CANCEL")
            return
        row = box.row()
        row.operator("latentwalk.setup_render_environment", icon="CONSOLE")
        row.prop(self, "torch_build", text="PyTorch")
        failure = _last_setup_failure
        if failure is not None:
            self.draw_failure(box.box(), failure, _characters_per_line(context))
        else:
            box.prop(self, "torch_index_url")
        if not compat.online_access_allowed():
            box.label(text="Needs online access: " + compat.ALLOW_ONLINE_ACCESS, icon="ERROR")

    def draw_failure(self, box, failure, width_chars):
        """The last set-up's failure: what failed and what to do, the PyTorch Index field right there (the
        fix for an index that cannot be reached, with a button that sets it), pip's own words, and the log
        behind buttons (its path is too long for the report)."""
        column = box.column(align=True)
        for index, line in enumerate(textwrap.wrap(f"Set-up failed: {failure.message}.", width_chars)
                                     + textwrap.wrap(failure.advice() + ".", width_chars)):
            column.label(text=line, icon="ERROR" if index == 0 else "BLANK1")
        column = box.column(align=True)
        column.alert = failure.torch_index_to_blame
        column.prop(self, "torch_index_url")
        if failure.torch_index_to_blame and self.torch_index_url != DEFAULT_INDEX:
            use_pypi = column.operator("wm.context_set_string", text="Use 'default' (PyPI) as PyTorch Index",
                                       icon="CHECKMARK")
            use_pypi.data_path = f'preferences.addons["{ADDON_ID}"].preferences.torch_index_url'
            use_pypi.value = DEFAULT_INDEX
        for line in textwrap.wrap(f"Output: {failure.reason}", width_chars)[:3]:
            box.label(text=line)
        row = box.row(align=True)
        copy = row.operator("latentwalk.copy_text", text="Copy Log Path", icon="COPYDOWN")
        copy.text, copy.what = failure.log_path, "the set-up's log path"
        row.operator("wm.path_open", text="Open Log", icon="TEXT").filepath = failure.log_path
        copy = row.operator("latentwalk.copy_text", text="Copy Command", icon="CONSOLE")
        copy.text, copy.what = failure.command, "the failed step as a terminal command"


def _characters_per_line(context):
    """About how many characters of label text fit a line of the add-on's box in the preferences (its
    margins and an icon take about 70 pixels; a character about 7, at 100%)."""
    region = getattr(context, "region", None) if context is not None else None
    if region is None:
        return 80
    scale = context.preferences.system.ui_scale
    return max(40, int((region.width - 70 * scale) / (7 * scale)))


# The last Set Up Render Environment's failure (environment_setup.Failure), shown in the preferences
# until the next set-up; None when the last one did not fail.
_last_setup_failure = None


def remember_setup_failure(failure):
    global _last_setup_failure
    _last_setup_failure = failure


def last_setup_failure():
    return _last_setup_failure


class _Defaults:
    engine_python = ""
    torch_build = "auto"
    torch_index_url = ""


def get():
    """The preferences, or defaults when the add-on runs without being installed (tests, scripts)."""
    addon = bpy.context.preferences.addons.get(ADDON_ID) if bpy.context.preferences else None
    return addon.preferences if addon is not None and addon.preferences is not None else _Defaults()


classes = (LatentWalkPreferences,)
