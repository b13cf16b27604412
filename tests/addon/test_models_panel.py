"""The Models panel's operators: the list of models, and Download in the worker, against a real
HTTP server on 127.0.0.1 that serves a tiny model as the Hugging Face hub does."""

import os

import bpy
import pytest

from blender_latentwalk.blender import compat, worker_client
from blender_latentwalk.blender import models as models_ui
from blender_latentwalk.engine.worker.messages import PROTOCOL_VERSION
from hub_server import ModelServer


@pytest.fixture
def user_caches(tmp_path, monkeypatch, models):
    """(server, home): a user whose caches are in tmp_path and whose hub is the loopback server,
    which serves the tiny pipeline (made by the worker's Python) as "tiny/sd"."""
    server = ModelServer()
    server.add_repo("tiny/sd", models[1])
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("PYTORCH_PRETRAINED_BIGGAN_CACHE", str(tmp_path / "biggan"))
    monkeypatch.setenv("LATENTWALK_BIGGAN_ENDPOINT", server.url)
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    worker_client.release()  # a worker started before has another environment
    yield server, tmp_path
    worker_client.release()
    server.close()


def test_with_online_access_off_download_explains_and_changes_nothing(scene, user_caches, use_engine_python,
                                                                    monkeypatch):
    server, home = user_caches
    if bpy.app.version >= (5, 0, 0):
        assert not compat.online_access_allowed()  # the bpy 5.0.1 module starts with online access off
    else:  # the 4.2 module: as with Allow Online Access unticked
        monkeypatch.setattr(compat, "online_access_allowed", lambda: False)
    for name, role in (("biggan-deep-256", "biggan"), ("tiny/sd", "pipeline")):
        with pytest.raises(RuntimeError) as error:
            bpy.ops.latentwalk.model_download(name=name, role=role)
        message = str(error.value)
        assert "online access is off" in message and "Allow Online Access" in message and name in message
        assert "Traceback" not in message
    assert server.requests == []
    assert not os.path.exists(home / "hf") and not os.path.exists(home / "biggan")
    assert not worker_client.running()


def test_download_lists_and_refreshes(scene, user_caches, use_engine_python, monkeypatch):
    server, home = user_caches
    monkeypatch.setattr(compat, "online_access_allowed", lambda: True)  # as with Allow Online Access on
    scene.latentwalk.diffusion.model = "tiny/sd"
    scene.latentwalk.diffusion.tiny_vae = ""
    assert bpy.ops.latentwalk.models_refresh() == {"FINISHED"}
    states = models_ui.listing()["states"]
    assert [s.name for s in states[:2]] == [scene.latentwalk.walk.model, "tiny/sd"]
    assert not states[1].present and states[1].downloadable
    assert {"stabilityai/sd-turbo", "biggan-deep-512", "madebyollin/taesd"} <= {s.name for s in states}

    assert bpy.ops.latentwalk.model_download(name="tiny/sd", role="pipeline") == {"FINISHED"}
    assert any("/tiny/sd/resolve/" in path for _, path, _ in server.requests)
    state = {s.name: s for s in models_ui.listing()["states"]}["tiny/sd"]  # the list follows the download
    assert state.present and state.size_bytes > 0
    assert state.path.startswith(str(home / "hf" / "hub"))
    assert os.path.isfile(os.path.join(state.path, "model_index.json"))


def test_a_worker_of_another_version_is_refused_with_both_versions_named(scene, tmp_path, monkeypatch):
    """An Engine Python whose worker speaks the protocol of an older Latent Walk (events without a version)."""
    old_worker = tmp_path / "old-python"
    old_worker.write_text("#!/bin/sh\necho '{\"event\": \"ready\", \"pid\": 1}'\nexec cat >/dev/null\n")
    old_worker.chmod(0o755)
    monkeypatch.setenv("LATENTWALK_ENGINE_PYTHON", str(old_worker))
    monkeypatch.setattr(compat, "online_access_allowed", lambda: True)
    worker_client.release()
    try:
        with pytest.raises(RuntimeError) as error:
            bpy.ops.latentwalk.model_download(name="biggan-deep-128", role="biggan")
    finally:
        worker_client.release()
    message = str(error.value)
    assert "protocol no version" in message and f"this side speaks version {PROTOCOL_VERSION}" in message
    assert "the add-on and its Engine Python run different versions" in message and "Traceback" not in message
