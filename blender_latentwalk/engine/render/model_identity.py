"""What a frame key records of a model: its content, so that every copy of the same weights agrees.

A folder model (a diffusers pipeline, a BigGAN folder) is identified by its files' names relative to
the folder and the SHA-256 of their contents; a model file (StyleGAN's .pkl / .pt) by the SHA-256 of
its content. No absolute path and no time enters the identity: farm nodes holding their own copies of
a model, at other paths and with other modification times, compute the same keys, and replacing the
weights (in place or not) changes them.

Hashing a model of several GB costs seconds, so each file is hashed once: its digest is kept in a
per-user cache (``model_hashes.json`` in the cache folder, `cache.cache_folder`) under its real path, and
used again while the file's size, modification and change times (ns) and inode are as they were. A
changed file is hashed again; an unchanged one is not read. The cache is written atomically
(`atomic.write_text`) under a lock, merged with what is on disk just before, so processes sharing it
keep each other's entries; a damaged or unreadable cache is ignored (and rewritten), never an error.
Entries of files that are gone are dropped once the cache holds more than `PRUNE_ABOVE`.
"""

import hashlib
import json
import os
import unicodedata

from .. import atomic
from .. import cache
from ..diffusion import img2img

CACHE_NAME = "model_hashes.json"
CACHE_VERSION = 1
PRUNE_ABOVE = 500  # entries; more, and those of files that are gone are dropped when the cache is written
CACHE_LOCK_TIMEOUT_S = 10.0  # a cache that stays locked longer is not written this time (it only costs time later)
_BLOCK = 4 << 20  # bytes read at a time


def _cache_path():
    return cache.cache_folder(CACHE_NAME)


def sha256_file(path):
    """The SHA-256 (hex) of the file at ``path``, read in blocks."""
    digest, buffer = hashlib.sha256(), bytearray(_BLOCK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as stream:
        while True:
            count = stream.readinto(buffer)
            if not count:
                break
            digest.update(view[:count])  # hashlib releases the GIL for large updates
    return digest.hexdigest()


def _stamp(status):
    """What tells that a file may have changed since it was hashed."""
    return [status.st_size, status.st_mtime_ns, status.st_ctime_ns, status.st_ino]


def _read_cache(path):
    """{real path: {"stamp": [...], "sha256": hex}} from the cache file; {} when it is missing or damaged."""
    try:
        with open(path, encoding="utf-8") as stream:
            data = json.load(stream)
    except (OSError, ValueError):
        return {}
    files = data.get("files") if isinstance(data, dict) and data.get("version") == CACHE_VERSION else None
    if not isinstance(files, dict):
        return {}
    return {name: entry for name, entry in files.items()
            if isinstance(entry, dict) and isinstance(entry.get("stamp"), list)
            and isinstance(entry.get("sha256"), str) and len(entry["sha256"]) == 64}


def _write_cache(path, new_entries):
    """Add ``new_entries`` to the cache file: under its lock, merged with what is there now."""
    import filelock

    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with filelock.FileLock(path + ".lock", timeout=CACHE_LOCK_TIMEOUT_S):
            files = _read_cache(path)
            files.update(new_entries)
            if len(files) > PRUNE_ABOVE:  # forget the files that are gone (models deleted, temporary copies)
                files = {name: entry for name, entry in files.items() if os.path.exists(name)}
            atomic.write_text(path, json.dumps({"version": CACHE_VERSION, "files": files}, sort_keys=True))
    except (OSError, filelock.Timeout):
        pass  # a read-only or busy cache only costs hashing again next time


class _Hasher:
    """File digests through the cache: read once per call of `model_identity`, written once at its end."""

    def __init__(self):
        self.path = _cache_path()
        self.cached = _read_cache(self.path)
        self.new = {}

    def digest(self, path):
        """The SHA-256 of the file at ``path`` (links followed), or None when it cannot be read."""
        real = os.path.realpath(path)
        try:
            stamp = _stamp(os.stat(real))
            entry = self.new.get(real) or self.cached.get(real)
            if entry is not None and entry["stamp"] == stamp:
                return entry["sha256"]
            digest = sha256_file(real)
            if _stamp(os.stat(real)) == stamp:  # not changed while it was read
                self.new[real] = {"stamp": stamp, "sha256": digest}
            return digest
        except OSError:
            return None

    def save(self):
        if self.new:
            _write_cache(self.path, self.new)


def _folder_files(folder):
    """[(name relative to ``folder`` with '/' separators, path)] of the model's files, sorted: hidden
    files and folders skipped (.git, .cache: not the model), links followed (but not a link back to a
    folder above, which would never end), broken links skipped."""
    found = []
    for root, folders, names in os.walk(folder, followlinks=True):
        real_root = os.path.realpath(root)
        kept = []
        for name in sorted(f for f in folders if not f.startswith(".")):
            real = os.path.realpath(os.path.join(root, name))
            if real != real_root and not real_root.startswith(real.rstrip(os.sep) + os.sep):  # no cycle
                kept.append(name)
        folders[:] = kept
        for name in sorted(n for n in names if not n.startswith(".")):
            path = os.path.join(root, name)
            if not os.path.isfile(path):  # a broken link (or no file): not something the loader reads either
                continue
            relative = os.path.relpath(path, folder).replace(os.sep, "/")
            found.append((unicodedata.normalize("NFC", relative), path))
    return sorted(found)


def _unreadable(path):
    try:
        return f"unreadable:{os.stat(path).st_size}"
    except OSError:
        return "unreadable"


def model_identity(name_or_path):
    """What a frame key records of a model (see the module docstring): for a folder, the SHA-256 of
    its files' relative names and contents' SHA-256; for a model file (StyleGAN's .pkl / .pt), its
    SHA-256; for a hub id, the cached snapshot's commit; else the name (BigGAN's named releases never
    change). A file that cannot be read counts by its size (loading it will fail and say why)."""
    if not name_or_path or name_or_path.lower() == img2img.NONE:
        return name_or_path
    if os.path.isdir(name_or_path):
        hasher = _Hasher()
        entries = [[relative, hasher.digest(path) or _unreadable(path)]
                   for relative, path in _folder_files(name_or_path)]
        hasher.save()
        return "folder-sha256:" + hashlib.sha256(json.dumps(entries).encode()).hexdigest()
    if os.path.isfile(name_or_path):
        hasher = _Hasher()
        digest = hasher.digest(name_or_path)
        hasher.save()
        return f"sha256:{digest}" if digest else _unreadable(name_or_path)
    commit = img2img.cached_commit(name_or_path)
    return f"{name_or_path}@{commit}" if commit else name_or_path
