"""The engine's per-user cache folder (cached filter banks, model file hashes)."""

import os

CACHE_ENV = "LATENTWALK_CACHE_DIR"  # overrides the folder (tests, a farm node's local disk)


def cache_folder(*parts):
    """$LATENTWALK_CACHE_DIR, else $XDG_CACHE_HOME (else ~/.cache) / blender_latentwalk, joined with ``parts``.
    Not created here: the writer creates it when it first writes."""
    base = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "blender_latentwalk")
    return os.path.join(base, *parts)
