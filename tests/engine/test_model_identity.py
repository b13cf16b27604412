"""A model's identity is its content: copies agree wherever they lie, any change of a file's bytes or
name tells, and each file is hashed once (a per-user cache keyed by the file's path, size, times and inode)."""

import json
import os
import subprocess
import sys
import time

import pytest

from blender_latentwalk.engine import cache as engine_cache
from blender_latentwalk.engine.render import model_identity as identity_module
from blender_latentwalk.engine.render.model_identity import model_identity

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv(engine_cache.CACHE_ENV, str(folder))
    return folder / identity_module.CACHE_NAME


@pytest.fixture
def hashed(monkeypatch):
    """The paths of the files read to hash them, in order."""
    paths, real = [], identity_module.sha256_file

    def counting(path):
        paths.append(path)
        return real(path)

    monkeypatch.setattr(identity_module, "sha256_file", counting)
    return paths


def make_model(folder, mtime=1_600_000_000):
    """A folder model as diffusers writes one: subfolders of weights and configs (and a hidden .cache)."""
    files = {"model_index.json": b'{"_class_name": "X"}', "unet/config.json": b"{}",
             "unet/diffusion_pytorch_model.safetensors": bytes(range(256)) * 4096,
             "vae/diffusion_pytorch_model.safetensors": b"vae weights" * 1000, ".cache/huggingface/lock": b"x"}
    for name, data in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (mtime, mtime))
    return folder


def test_copies_at_other_paths_with_other_times_are_the_same_model(tmp_path):
    first = make_model(tmp_path / "node-a" / "sd", mtime=1_600_000_000)
    second = make_model(tmp_path / "elsewhere" / "copy of sd", mtime=1_700_000_000)
    (second / ".cache" / "huggingface" / "lock").write_bytes(b"another node's lock")  # hidden: not the model
    assert model_identity(str(first)) == model_identity(str(second))
    assert str(tmp_path) not in model_identity(str(first))
    weights = tmp_path / "g.pkl"
    weights.write_bytes(b"stylegan weights")
    copy = tmp_path / "node-b" / "other-name.pkl"
    copy.parent.mkdir()
    copy.write_bytes(b"stylegan weights")
    os.utime(copy, (1_000_000_000, 1_000_000_000))
    assert model_identity(str(weights)) == model_identity(str(copy)) != model_identity(str(first))
    assert model_identity(str(weights)).startswith("sha256:") and str(tmp_path) not in model_identity(str(weights))


def test_one_changed_byte_or_a_renamed_file_is_another_model(tmp_path):
    folder = make_model(tmp_path / "sd")
    before = model_identity(str(folder))
    time.sleep(0.05)  # file times tick coarsely (a few ms): the change below must fall in a later tick
    weights = folder / "vae" / "diffusion_pytorch_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[5000] ^= 1
    weights.write_bytes(bytes(data))
    os.utime(weights, (1_600_000_000, 1_600_000_000))  # even with its old modification time
    changed = model_identity(str(folder))
    assert changed != before
    data[5000] ^= 1
    weights.write_bytes(bytes(data))
    assert model_identity(str(folder)) == before  # the same bytes again: the same model
    (folder / "unet" / "config.json").rename(folder / "unet" / "config2.json")
    assert model_identity(str(folder)) not in (before, changed)
    single = tmp_path / "g.pkl"
    single.write_bytes(b"a" * 1000)
    one = model_identity(str(single))
    single.write_bytes(b"a" * 999 + b"b")
    assert model_identity(str(single)) != one


def test_each_file_is_hashed_once_and_again_when_it_changes(tmp_path, hashed, cache):
    folder = make_model(tmp_path / "sd")
    first = model_identity(str(folder))
    assert len(hashed) == 4 and cache.exists()  # the four visible files
    hashed.clear()
    assert model_identity(str(folder)) == first and hashed == []  # nothing read again
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    os.utime(weights, (1_650_000_000, 1_650_000_000))  # touched: read again, the same content
    assert model_identity(str(folder)) == first
    assert [os.path.basename(os.path.dirname(p)) for p in hashed] == ["unet"]
    hashed.clear()
    (folder / "model_index.json").write_bytes(b'{"_class_name": "Y"}')
    assert model_identity(str(folder)) != first and len(hashed) == 1
    hashed.clear()
    model_identity(str(folder))
    assert hashed == []


def test_a_damaged_cache_is_ignored_and_rewritten(tmp_path, hashed, cache):
    folder = make_model(tmp_path / "sd")
    expected = model_identity(str(folder))
    for damage in (b"{not json", b"", b'{"version": 1, "files": [1, 2]}', b'{"version": 1, "files": {"x": 3}}',
                   b'["a list"]', b"\xff\xfe\x00"):
        cache.write_bytes(damage)
        hashed.clear()
        assert model_identity(str(folder)) == expected
        assert len(hashed) == 4
        assert len(json.loads(cache.read_text())["files"]) == 4  # rewritten whole
    cache.unlink()
    cache.mkdir()  # not even a file: identities still come, uncached
    assert model_identity(str(folder)) == expected


def test_an_entry_with_another_stamp_is_not_trusted(tmp_path, hashed, cache):
    weights = tmp_path / "g.pkl"
    weights.write_bytes(b"weights")
    expected = model_identity(str(weights))
    data = json.loads(cache.read_text())
    (entry,) = data["files"].values()
    entry["sha256"] = "0" * 64  # what a cache says for another version of the file
    entry["stamp"][0] += 1
    cache.write_text(json.dumps(data))
    hashed.clear()
    assert model_identity(str(weights)) == expected and len(hashed) == 1


def test_links_are_followed_and_broken_links_skipped(tmp_path):
    if not hasattr(os, "symlink"):
        pytest.skip("no symbolic links here")
    folder = make_model(tmp_path / "sd")
    expected = model_identity(str(folder))
    linked = tmp_path / "snapshot"  # as the hub's cache keeps a snapshot: links to blobs
    for path in folder.rglob("*"):
        if path.is_file() and ".cache" not in path.parts:
            target = linked / path.relative_to(folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                target.symlink_to(path)
            except OSError as error:
                pytest.skip(f"cannot make a symbolic link: {error}")
    (linked / "gone.bin").symlink_to(tmp_path / "nowhere")
    (linked / "unet" / "loop").symlink_to(linked)  # a link back up: walked once
    assert model_identity(str(linked)) == expected


def test_names_and_hub_ids_keep_their_identity(tmp_path, hashed):
    assert model_identity("biggan-deep-128") == "biggan-deep-128"
    assert model_identity("none") == "none" and model_identity("") == ""
    assert hashed == []


_WRITER = """
import os, sys
from blender_latentwalk.engine.render.model_identity import model_identity
folder = sys.argv[1]
for round in range(int(sys.argv[2])):
    path = os.path.join(folder, f"w{round}.pkl")
    with open(path, "wb") as stream:
        stream.write(os.urandom(1000))
    model_identity(path)
"""


def test_processes_writing_the_cache_at_once_keep_each_other_s_entries(tmp_path, cache):
    rounds = 15
    folders = [tmp_path / f"p{n}" for n in range(3)]
    for folder in folders:
        folder.mkdir()
    env = dict(os.environ, **{engine_cache.CACHE_ENV: str(cache.parent)})
    writers = [subprocess.Popen([sys.executable, "-c", _WRITER, str(folder), str(rounds)], cwd=ROOT, env=env,
                                stderr=subprocess.PIPE, text=True) for folder in folders]
    for writer in writers:
        _, stderr = writer.communicate(timeout=300)
        assert writer.returncode == 0, stderr
    files = json.loads(cache.read_text())["files"]
    expected = {os.path.realpath(folder / f"w{n}.pkl") for folder in folders for n in range(rounds)}
    assert set(files) == expected
    assert not [name for name in os.listdir(cache.parent) if name.endswith(".tmp")]


def test_entries_of_files_that_are_gone_are_dropped_once_the_cache_is_large(tmp_path, cache, monkeypatch):
    monkeypatch.setattr(identity_module, "PRUNE_ABOVE", 3)
    paths = []
    for n in range(3):
        paths.append(tmp_path / f"w{n}.pkl")
        paths[-1].write_bytes(b"weights %d" % n)
        model_identity(str(paths[-1]))
    paths[0].unlink()
    assert len(json.loads(cache.read_text())["files"]) == 3  # not written since
    late = tmp_path / "w3.pkl"
    late.write_bytes(b"weights 3")
    model_identity(str(late))
    kept = json.loads(cache.read_text())["files"]
    assert sorted(kept) == sorted(os.path.realpath(p) for p in (paths[1], paths[2], late))
