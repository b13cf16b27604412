"""One atomic write for every file the engine writes: a failure leaves the old file and no temp file."""

import errno
import os

import numpy as np
import pytest

from blender_latentwalk.engine import atomic
from blender_latentwalk.engine.analysis import features
from blender_latentwalk.engine.analysis import filterbanks
from blender_latentwalk.engine.render import claims
from blender_latentwalk.engine.render import png_writer
from blender_latentwalk.engine.render import trust
from blender_latentwalk.engine.walk.plan import DEFAULT_SETTINGS, RenderPlan


def disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "notes.txt"
    atomic.write_text(str(target), "old")

    def half_then_fail(stream):
        stream.write(b"new, but only ha")
        raise KeyboardInterrupt  # Ctrl+C in the middle of a write

    with pytest.raises(KeyboardInterrupt):
        atomic.write_via(str(target), half_then_fail)
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["notes.txt"]
    atomic.write_bytes(str(target), b"new")
    assert target.read_bytes() == b"new" and os.listdir(tmp_path) == ["notes.txt"]


def tiny_plan():
    n = 3
    return RenderPlan(frame_start=1, fps=24, fps_base=1.0, seed=0, band_names=["a"], bands=np.zeros((1, n)),
                      band_weights=np.ones((1, n)), onset=np.zeros(n), chroma=np.zeros((n, 12)),
                      truncation=np.full(n, 0.5), pulse=np.ones(n), speed=np.ones(n), jitter=np.zeros(n),
                      settings=dict(DEFAULT_SETTINGS))


def tiny_features():
    n = 3
    return features.Features(band_names=["a"], band_low_hz=np.array([20.0]), band_high_hz=np.array([200.0]),
                             bands=np.zeros((1, n), np.float32), onset=np.zeros(n, np.float32),
                             rms=np.zeros(n, np.float32), chroma=np.zeros((n, 12), np.float32),
                             beats=np.zeros(0, np.int64))


WRITERS = {
    "plan": ("plan.npz", lambda path: tiny_plan().save(path)),
    "features": ("features.npz", lambda path: tiny_features().save_npz(path)),
    "frame": ("frame_000001.png", lambda path: png_writer.write_png(path, np.zeros((4, 4, 3), np.uint8))),
    "manifest": ("manifest.json",  # a new key in the journal, folded into the snapshot by a compaction
                 lambda path: (trust.update_manifest(os.path.dirname(path), {1: {"key": os.urandom(8).hex()}}),
                               trust.compact_manifest(os.path.dirname(path)))),
}


@pytest.mark.parametrize("step", ["fsync", "replace"])
@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_every_engine_writer_is_atomic_on_a_full_disk(tmp_path, monkeypatch, kind, step):
    name, write = WRITERS[kind]
    path = str(tmp_path / name)
    write(path)
    before = open(path, "rb").read()
    monkeypatch.setattr(atomic.os, step, disk_full)  # the data does not fit, or the rename fails
    with pytest.raises(OSError) as error:
        write(path)
    assert error.value.errno == errno.ENOSPC
    assert open(path, "rb").read() == before
    # The manifest's lock file stays, and so does the journal the compaction could not fold in: its line is
    # the change, still there for the next compaction.
    expected = [name] + ([claims.LOCK_NAME, trust.JOURNAL_NAME] if kind == "manifest" else [])
    assert sorted(os.listdir(tmp_path)) == sorted(expected)
    if kind == "manifest":
        monkeypatch.undo()
        changed = trust.load_manifest(str(tmp_path))[1]
        trust.compact_manifest(str(tmp_path))
        assert trust.load_manifest(str(tmp_path))[1] == changed and trust.JOURNAL_NAME not in os.listdir(tmp_path)


def test_a_journal_append_that_fails_leaves_a_manifest_that_reads(tmp_path, monkeypatch):
    """A full disk in the middle of a batch's lines: what was appended is whole lines and a torn one; the
    torn one is ignored, cut off by the next append, and the error reaches the caller."""
    folder = str(tmp_path)
    trust.update_manifest(folder, {1: {"key": "one"}})
    real_write = os.write

    def half_then_full(handle, data):
        real_write(handle, bytes(data)[:len(data) // 2 + 3])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(trust.os, "write", half_then_full)
    with pytest.raises(OSError) as error:
        trust.update_manifest(folder, {2: {"key": "two"}, 3: {"key": "three"}})
    assert error.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert trust.load_manifest(folder) == {1: {"key": "one"}, 2: {"key": "two"}}  # line 3 torn: not there
    trust.update_manifest(folder, {4: {"key": "four"}})
    assert trust.load_manifest(folder) == {1: {"key": "one"}, 2: {"key": "two"}, 4: {"key": "four"}}
    with open(tmp_path / trust.JOURNAL_NAME, "rb") as journal:
        assert all(line.startswith(b'{"frame": ') for line in journal.read().splitlines())


def test_the_filter_bank_cache_survives_a_full_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(atomic.os, "fsync", disk_full)
    matrix = filterbanks.mel(8000, 256, 16)  # computed; the cache could not be written
    assert matrix.shape == (16, 129)
    folder = tmp_path / "blender_latentwalk" / "filterbanks"
    assert os.listdir(folder) == []


def test_processes_updating_one_manifest_at_once_lose_no_entries(tmp_path):
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = ("import sys; from blender_latentwalk.engine.render import trust\n"
            "first = int(sys.argv[2])\n"
            "for frame in range(first, first + 40):\n"
            "    trust.update_manifest(sys.argv[1], {frame: {'key': str(frame)}, frame - 1000: None})\n")
    writers = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path), str(first)], cwd=root)
               for first in (0, 100, 200, 300)]
    assert [writer.wait(120) for writer in writers] == [0, 0, 0, 0]
    manifest = trust.load_manifest(str(tmp_path))
    assert sorted(manifest) == [f + n for f in (0, 100, 200, 300) for n in range(40)]


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_honour_the_umask_in_a_fresh_process(tmp_path, umask, mode):
    """Frames, the manifest (its snapshot and its journal) and the lock as another account on shared storage sees
    them: 0644 under 022."""
    import subprocess
    import sys

    code = ("import os, sys; os.umask(int(sys.argv[2], 8)); "
            "from blender_latentwalk.engine import atomic; "
            "from blender_latentwalk.engine.render import trust; "
            "atomic.write_bytes(os.path.join(sys.argv[1], 'frame_000001.png'), b'png'); "
            "trust.update_manifest(sys.argv[1], {1: {'key': 'k', 'bytes': 3, 'mtime_ns': 0}})")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path), oct(umask)], capture_output=True, text=True,
                          cwd=root)
    assert done.returncode == 0, done.stderr
    for name in ("frame_000001.png", "manifest.json", "manifest.journal", ".latentwalk.lock"):
        assert os.stat(tmp_path / name).st_mode & 0o777 == mode, name
