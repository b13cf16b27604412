"""Atomic file writes: a reader sees the old file or the whole new one, never a part.

Every file the engine writes for a user (frames, the manifest, plans, features,
cached filter banks) goes through `write_via`: the data goes into a temporary file
in the same folder, is flushed to disk (fsync), and is renamed over the target.
On any error (a full disk, a lost permission, an exception in the writer, Ctrl+C)
the temporary file is removed and the target is left as it was.

A written file gets the permissions a plain ``open`` would give it (0666 less the umask: 0644 under the
usual 022), not the owner-only 0600 of a temporary file: on shared farm storage another account
reads the frames, the manifest and the plan.

A process killed with SIGKILL cannot remove its temporary file; the render names
its temporary files after its lock (``temp_prefix``) so that the next render in
the folder can tell them apart from a live render's and remove them.
"""

import os
import tempfile

TEMP_SUFFIX = ".tmp"


def _process_umask():
    """The process's umask, read without changing it where the system says it (Linux), else set and put back
    once at import (os.umask has no read-only form; at import no other thread of ours writes files)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_process_umask()  # what open() gives a new file in this process


def write_via(path, write, binary=True, temp_prefix=None):
    """Call ``write(stream)`` on a temporary file, then rename it to ``path``.

    binary : open the stream in binary mode (else text, UTF-8)
    temp_prefix : name prefix of the temporary file (default: "." + the target's name + ".")
    Returns ``path``. Raises what the writer or the file system raised, with nothing left behind.
    """
    folder = os.path.dirname(os.path.abspath(path))
    prefix = temp_prefix if temp_prefix is not None else f".{os.path.basename(path)}."
    handle, temp_path = tempfile.mkstemp(prefix=prefix, suffix=TEMP_SUFFIX, dir=folder)
    try:
        with os.fdopen(handle, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as stream:
            write(stream)
            stream.flush()
            if hasattr(os, "fchmod"):  # POSIX: mkstemp made it 0600
                os.fchmod(stream.fileno(), FILE_MODE)
            os.fsync(stream.fileno())  # the rename must not reach the disk before the data
        os.replace(temp_path, path)
    except BaseException:
        try:
            os.unlink(temp_path)
        except OSError:
            pass
        raise
    return path


def write_bytes(path, data, temp_prefix=None):
    """Write ``data`` (bytes) to ``path`` atomically."""
    return write_via(path, lambda stream: stream.write(data), True, temp_prefix)


def write_text(path, text, temp_prefix=None):
    """Write ``text`` (str, UTF-8) to ``path`` atomically."""
    return write_via(path, lambda stream: stream.write(text), False, temp_prefix)


def commit_file(temp_path, path):
    """Make the finished ``temp_path`` (a download written in place, resumable) ``path``: flushed to
    disk first, then renamed, so ``path`` is the whole file or absent."""
    with open(temp_path, "rb+") as stream:
        os.fsync(stream.fileno())
    os.replace(temp_path, path)
    return path
