"""Writing frames: PNG files named by Blender frame number, written atomically."""

import os
import tempfile

from . import atomic
from .errors import LatentWalkError

FRAME_PATTERN = "frame_{:06d}.png"


def frame_path(folder, blender_frame):
    return os.path.join(folder, FRAME_PATTERN.format(blender_frame))


def ensure_writable_folder(folder):
    try:
        os.makedirs(folder, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-", delete=True)
        probe.close()
    except OSError as error:
        raise LatentWalkError(
            f"cannot write frames to '{folder}' ({error.strerror}): choose a folder you can write to."
        ) from None


def write_png(path, image, size=None, temp_prefix=None):
    """Write an (height, width, 3) uint8 image as PNG atomically (`atomic.write_via`).

    ``size`` (width, height) resizes with Lanczos first. A crash never leaves a
    half-written frame under the final name. temp_prefix : see `atomic.write_via`.
    """
    from PIL import Image  # here, not at the top: Blender's own Python may lack Pillow

    picture = Image.fromarray(image, mode="RGB") if hasattr(image, "shape") else image
    if size is not None and picture.size != tuple(size):
        picture = picture.resize(tuple(size), Image.LANCZOS)
    atomic.write_via(path, lambda stream: picture.save(stream, format="PNG"), temp_prefix=temp_prefix)
