"""The Blender-free engine: analysis, walk math, models, rendering.

Nothing in this package imports ``bpy``; it runs in Blender, in a worker process,
on a render node or in a notebook alike.
"""

from .errors import LatentWalkError

__all__ = ["LatentWalkError"]
