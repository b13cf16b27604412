"""What a frame key records of a model: enough to tell when its weights change."""

import hashlib
import json
import os

from ..diffusion import img2img


def model_identity(name_or_path):
    """What a frame key records of a model: for a folder, its files' names, sizes and
    modification times (so replacing the weights in place re-renders), and the same of a
    model file (StyleGAN's .pkl / .pt); for a hub id,
    the cached snapshot's commit; else the name (BigGAN's named releases never change)."""
    if not name_or_path or name_or_path.lower() == img2img.NONE:
        return name_or_path
    if os.path.isdir(name_or_path):
        entries = []
        for root, folders, names in os.walk(name_or_path, followlinks=True):
            folders[:] = sorted(f for f in folders if not f.startswith("."))  # .git, .cache: not the model
            for name in sorted(n for n in names if not n.startswith(".")):
                try:
                    status = os.stat(os.path.join(root, name))
                except OSError:  # a broken link: not something the loader reads either
                    continue
                entries.append([os.path.relpath(os.path.join(root, name), name_or_path), status.st_size,
                                status.st_mtime_ns])
        return f"{os.path.abspath(name_or_path)}#{hashlib.sha256(json.dumps(entries).encode()).hexdigest()[:16]}"
    if os.path.isfile(name_or_path):  # a StyleGAN .pkl / .pt: replaced weights re-render, as for a folder
        status = os.stat(name_or_path)
        stamp = json.dumps([os.path.basename(name_or_path), status.st_size, status.st_mtime_ns])
        return f"{os.path.abspath(name_or_path)}#{hashlib.sha256(stamp.encode()).hexdigest()[:16]}"
    commit = img2img.cached_commit(name_or_path)
    return f"{name_or_path}@{commit}" if commit else name_or_path
