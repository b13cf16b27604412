"""The one exception type a user sees.

Every ``LatentWalkError`` message says what was wrong, with which file or field,
and what to do about it. The add-on shows it in the status bar; the CLI prints it
on stderr and exits with status 2. Anything else escaping is a bug.
"""


# What to do when the engine's Python lacks a package: every such message ends with it.
GET_THE_RENDER_STACK = (
    "In Blender press Preferences > Add-ons > Latent Walk > Set Up Render Environment, or set Engine Python "
    "(headless: --engine-python PATH, or the LATENTWALK_ENGINE_PYTHON environment variable) to a Python that "
    "has the render stack (in a developer checkout: .venv/bin/python, made by scripts/setup.sh).")


class LatentWalkError(Exception):
    """A problem the user can fix; ``str(error)`` is the whole message."""
