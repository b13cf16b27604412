"""Latent Walk: audio-reactive BigGAN + Stable Diffusion music videos in Blender.

Importing this package does not import ``bpy``: the engine (``.engine``) runs in
any Python. Blender calls `register` / `unregister`, which load the add-on layer.
"""

bl_info = {
    "name": "Latent Walk",
    "author": "blender_latentwalk developers",
    "version": (0, 1, 0),
    "blender": (3, 4, 0),
    "location": "Sequencer / Graph Editor > Sidebar > Latent Walk",
    "description": "Bake a song's bands, onsets and chroma into editable F-curves and render an "
    "audio-reactive latent walk",
    "category": "Animation",
}


def register():
    from . import blender

    blender.register()


def unregister():
    from . import blender

    blender.unregister()
