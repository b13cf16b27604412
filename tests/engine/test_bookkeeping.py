"""The manifest's bookkeeping: a snapshot (manifest.json) and an append-only journal (manifest.journal).

A batch appends its lines in one write without reading the snapshot; a render folds the journal into the
snapshot as it starts and ends. What the two files say together is what the manifest said when it was
rewritten whole at each batch: the same forgets, records and last-wins, across processes."""

import builtins
import json
import os
import subprocess
import sys
import time

import pytest
from render_helpers import ROOT

from blender_latentwalk.engine.render import claims
from blender_latentwalk.engine.render import trust


def entry(key, size=3):
    return {"key": key, "bytes": size, "mtime_ns": 1, "sha256": "0" * 64, "batch_size": 4}


def operations(base, count=60):
    """A render's manifest changes as the old design applied them: batches of records and forgets, frames
    written again (the last wins), in Blender frames base ... base + 19."""
    changes = []
    for n in range(count):
        frame = base + (n * 7) % 20
        if n % 5 == 3:
            changes.append({frame: None, frame + 1: None})  # a batch forgotten before its files change
        else:
            changes.append({frame: entry(f"{base}-{n}"), frame + 1: entry(f"{base}-{n}b")})
    return changes


def old_semantics(*histories):
    """The manifest the rewrite-whole design ends with: each change applied in order (pop or set)."""
    manifest = {}
    for history in histories:
        for change in history:
            for frame, value in change.items():
                if value is None:
                    manifest.pop(frame, None)
                else:
                    manifest[frame] = value
    return manifest


APPLY = """
import json, os, sys, time
from blender_latentwalk.engine.render import trust
folder, history, go = sys.argv[1], json.load(open(sys.argv[2])), sys.argv[3]
open(sys.argv[2] + ".ready", "w").close()
while not os.path.exists(go):  # both start at once, imports done
    time.sleep(0.001)
for n, change in enumerate(history):
    trust.update_manifest(folder, {int(frame): value for frame, value in change.items()})
    if n % 100 == 50:  # a render starting or ending meanwhile: the journal folded into the snapshot
        trust.compact_manifest(folder)
"""


def test_two_processes_writing_disjoint_frames_end_with_the_old_designs_manifest(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    histories = [operations(100, 400), operations(500, 400)]
    writers = []
    for number, history in enumerate(histories):
        history_path = tmp_path / f"history{number}.json"
        history_path.write_text(json.dumps(history))
        writers.append(subprocess.Popen([sys.executable, "-c", APPLY, str(folder), str(history_path),
                                         str(tmp_path / "go")], cwd=ROOT))
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"history{number}.json.ready").exists() for number in (0, 1)):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    (tmp_path / "go").touch()
    assert [writer.wait(120) for writer in writers] == [0, 0]
    expected = old_semantics(*histories)
    assert trust.load_manifest(str(folder)) == expected
    compacted = trust.compact_manifest(str(folder))
    assert compacted.frames == expected and trust.JOURNAL_NAME not in os.listdir(folder)
    with open(folder / trust.MANIFEST_NAME, encoding="utf-8") as stream:
        snapshot = json.load(stream)
    assert snapshot["version"] == trust.MANIFEST_VERSION
    assert {int(frame): value for frame, value in snapshot["frames"].items()} == expected


def test_a_torn_last_line_is_ignored_and_cut_off_by_the_next_append(tmp_path):
    folder = str(tmp_path)
    trust.update_manifest(folder, {1: entry("a"), 2: entry("b")})
    with open(tmp_path / trust.JOURNAL_NAME, "ab") as journal:  # a process killed in the middle of its write
        journal.write(b'{"frame": 3, "entry": {"key": "c", "by')
    assert trust.load_manifest(folder) == {1: entry("a"), 2: entry("b")}
    trust.update_manifest(folder, {2: None, 4: entry("d")})
    assert trust.load_manifest(folder) == {1: entry("a"), 4: entry("d")}
    lines = (tmp_path / trust.JOURNAL_NAME).read_bytes().split(b"\n")
    assert lines[-1] == b"" and all(json.loads(line)["frame"] in (1, 2, 4) for line in lines[:-1])


def test_lines_of_nul_bytes_a_power_cut_left_are_ignored(tmp_path):
    folder = str(tmp_path)
    trust.update_manifest(folder, {1: entry("a")})
    with open(tmp_path / trust.JOURNAL_NAME, "ab") as journal:
        journal.write(b"\0" * 40 + b"\n" + json.dumps({"frame": 2, "entry": entry("b")}).encode() + b"\n" + b"\0" * 9)
    assert trust.load_manifest(folder) == {1: entry("a"), 2: entry("b")}


@pytest.mark.parametrize("line", [b"not json", b'{"frame": "7", "forget": true}', b'{"frame": 7}',
                                  b'{"frame": 7, "entry": {"bytes": 3}}', b'[1, 2]',
                                  b'{"frame": 7, "forget": true}, {"frame": 8, "forget": true}'])
def test_a_damaged_line_before_the_last_is_refused_naming_the_journal_and_the_line(tmp_path, line):
    folder = str(tmp_path)
    trust.update_manifest(folder, {1: entry("a")})
    with open(tmp_path / trust.JOURNAL_NAME, "ab") as journal:
        journal.write(line + b"\n" + json.dumps({"frame": 2, "entry": entry("b")}).encode() + b"\n")
    with pytest.raises(trust.ManifestError) as error:
        trust.load_manifest(folder)
    message = str(error.value)
    assert str(tmp_path / trust.JOURNAL_NAME) in message and "line 2 is not a frame record" in message
    assert "move that file away" in message and "\n" not in message
    snapshot = (tmp_path / trust.MANIFEST_NAME).read_bytes()
    with pytest.raises(trust.ManifestError):  # never folded into the snapshot
        trust.compact_manifest(folder)
    assert (tmp_path / trust.MANIFEST_NAME).read_bytes() == snapshot


def test_compaction_keeps_every_entry_and_the_contract(tmp_path):
    folder = str(tmp_path)
    contract = trust.RenderContract("cpu (AVX2)", "float32", 4, 2, "2.6.0")
    lock = claims.locked(folder)
    try:
        trust.compact_locked(folder, contract=contract)
    finally:
        lock.release()
    history = operations(1, 200) + [{frame: entry(f"x{frame}")} for frame in range(30, 1030)]
    for change in history:
        trust.update_manifest(folder, change)
    expected = old_semantics(history)
    assert trust.read_manifest(folder) == trust.FolderManifest(expected, contract.to_json())
    assert trust.compact_manifest(folder) == trust.FolderManifest(expected, contract.to_json())
    assert sorted(os.listdir(tmp_path)) == sorted([claims.LOCK_NAME, trust.MANIFEST_NAME])
    assert trust.read_manifest(folder) == trust.FolderManifest(expected, contract.to_json())


def test_an_older_manifest_counts_as_empty_version_3_is_read_and_a_newer_one_is_refused(tmp_path):
    older, v3, newer = (tmp_path / name for name in ("older", "v3", "newer"))
    for folder in (older, v3, newer):
        folder.mkdir()
    (older / trust.MANIFEST_NAME).write_text('{"version": 2, "frames": {"1": "0123abcd"}}')
    assert trust.load_manifest(str(older)) == {}
    # Version 3 holds the same records without a journal: its frames stay current after an update.
    (v3 / trust.MANIFEST_NAME).write_text(json.dumps({"version": 3, "frames": {"1": entry("a")}}))
    assert trust.read_manifest(str(v3)) == trust.FolderManifest({1: entry("a")}, None)
    trust.update_manifest(str(v3), {2: entry("b")})  # the snapshot becomes this version's before a journal exists
    assert json.loads((v3 / trust.MANIFEST_NAME).read_text())["version"] == trust.MANIFEST_VERSION
    assert trust.load_manifest(str(v3)) == {1: entry("a"), 2: entry("b")}

    content = json.dumps({"version": trust.MANIFEST_VERSION + 1, "frames": {}})
    (newer / trust.MANIFEST_NAME).write_text(content)
    (newer / trust.JOURNAL_NAME).write_text(json.dumps({"frame": 1, "entry": entry("a")}) + "\n")
    for attempt in (trust.load_manifest, trust.compact_manifest,
                    lambda folder: trust.update_manifest(folder, {2: None})):
        with pytest.raises(trust.ManifestError, match="written by a newer version"):
            attempt(str(newer))
    assert (newer / trust.MANIFEST_NAME).read_text() == content  # nothing merged, overwritten or appended
    assert (newer / trust.JOURNAL_NAME).read_text().count("\n") == 1


def test_a_newer_snapshot_put_in_place_by_another_process_stops_the_appends(tmp_path):
    folder = str(tmp_path)
    trust.update_manifest(folder, {1: entry("a")})  # this process has seen the snapshot: appends only stat it
    newer = json.dumps({"version": trust.MANIFEST_VERSION + 1, "frames": {}})
    (tmp_path / "newer.json").write_text(newer)
    os.replace(tmp_path / "newer.json", tmp_path / trust.MANIFEST_NAME)
    with pytest.raises(trust.ManifestError, match="newer version"):
        trust.update_manifest(folder, {2: entry("b")})


def test_an_update_at_36000_frames_does_not_read_the_snapshot(tmp_path, monkeypatch):
    folder = str(tmp_path)
    lock = claims.locked(folder)
    try:
        trust.compact_locked(folder, manifest=trust.FolderManifest(
            {frame: entry("%064x" % frame) for frame in range(1, 36001)}, None))
    finally:
        lock.release()
    snapshot_size = os.path.getsize(tmp_path / trust.MANIFEST_NAME)
    assert snapshot_size > 5_000_000
    trust.update_manifest(folder, {1: None})  # the first: this process reads the snapshot's first bytes once
    read = []
    real_open, real_os_open, real_read = builtins.open, os.open, os.read

    def spy_open(path, *args, **kwargs):
        read.append(os.path.basename(str(path)))
        return real_open(path, *args, **kwargs)

    def spy_os_open(path, *args, **kwargs):
        read.append(os.path.basename(str(path)))
        return real_os_open(path, *args, **kwargs)

    def spy_read(handle, count):
        read.append(count)
        return real_read(handle, count)

    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(trust.os, "open", spy_os_open)
    monkeypatch.setattr(trust.os, "read", spy_read)
    for batch in range(50):
        frames = range(1 + 4 * batch, 5 + 4 * batch)
        trust.update_manifest(folder, dict.fromkeys(frames))
        trust.update_manifest(folder, {frame: entry(f"new{frame}") for frame in frames})
    monkeypatch.undo()
    assert trust.MANIFEST_NAME not in read  # neither opened nor read: a stat tells it is the one seen
    assert all(count == 1 for count in read if isinstance(count, int))  # the journal's last byte, nothing more
    assert os.path.getsize(tmp_path / trust.MANIFEST_NAME) == snapshot_size
    manifest = trust.load_manifest(folder)
    assert len(manifest) == 36000 and manifest[200] == entry("new200") and manifest[201] == entry("%064x" % 201)
