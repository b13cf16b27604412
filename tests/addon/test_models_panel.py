"""The Models panel's operators: the list of models, and Download in the worker, against a real
HTTP server on 127.0.0.1 that serves a tiny model as the Hugging Face hub does."""

import os
import time

import bpy
import pytest

from blender_latentwalk.blender import compat, render_job, worker_client
from blender_latentwalk.blender import models as models_ui
from blender_latentwalk.engine.errors import REPORT_LIMIT_CHARS
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
        message = str(error.value).strip().removeprefix("Error: ")
        assert message.startswith("Latent Walk: Download refused: online access is off.")
        assert "Allow Online Access" in message and len(message) <= REPORT_LIMIT_CHARS
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


REFUSING = "http://127.0.0.1:9"  # a loopback port nothing listens on: the connection is refused at once


def test_a_download_that_cannot_connect_says_the_network_first(scene, user_caches, use_engine_python, monkeypatch):
    """Issue 19: "the render failed: ConnectError ..." for a download; now the network, in one short line."""
    monkeypatch.setattr(compat, "online_access_allowed", lambda: True)
    monkeypatch.setenv("HF_ENDPOINT", REFUSING)
    monkeypatch.setenv("LATENTWALK_BIGGAN_ENDPOINT", REFUSING)
    worker_client.release()  # a new worker, with the refusing endpoints
    for name, role in (("tiny/sd", "pipeline"), ("biggan-deep-128", "biggan")):
        with pytest.raises(RuntimeError) as error:
            bpy.ops.latentwalk.model_download(name=name, role=role)
        message = str(error.value).strip().removeprefix("Error: ")
        assert message.startswith("Latent Walk: Download failed: the network: 127.0.0.1:9 cannot be reached"), message
        assert "render" not in message and len(message) <= REPORT_LIMIT_CHARS and "\n" not in message


def test_preview_and_render_with_a_missing_model_are_refused_at_once(baked, tmp_path, monkeypatch, capfd):
    """Issue 19: Preview Walk with a missing BigGAN took ~30 s (the worker imported torch first) and the message was
    cut off. Now the Engine Python looks before any worker starts, and the refusal says what first."""
    scene = baked
    monkeypatch.setenv("PYTORCH_PRETRAINED_BIGGAN_CACHE", str(tmp_path / "empty-biggan-cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    worker_client.release()
    tiny_biggan, tiny_sd = scene.latentwalk.walk.model, scene.latentwalk.diffusion.model
    scene.latentwalk.walk.preview_folder = str(tmp_path / "preview")
    scene.latentwalk.walk.model = "biggan-deep-512"
    started = time.monotonic()
    with pytest.raises(RuntimeError) as error:
        bpy.ops.latentwalk.preview()
    seconds = time.monotonic() - started
    message = str(error.value).strip().removeprefix("Error: ")
    assert message == ("Latent Walk: Model missing: BigGAN 'biggan-deep-512' is not on this machine: get it with "
                       "the engine CLI's 'models download', or give a model folder")  # bpy is background mode
    assert seconds < 10, seconds  # the check only: about a second (the worker alone takes longer to start)
    assert not worker_client.running() and not os.path.exists(tmp_path / "preview")
    listed = {s.name: s.present for s in models_ui.listing()["states"]}
    assert listed["biggan-deep-512"] is False  # the Models panel shows it missing, with its Download button
    assert "not in pytorch-pretrained-biggan's cache" in capfd.readouterr().err  # the detail, in the console

    # In the UI the advice names the panel and the stand-ins.
    found = models_ui.engine_models.first_missing([("biggan-deep-512", "biggan")])
    assert models_ui.engine_models.missing_message(found, models_ui.STAND_IN_ADVICE) == (
        "Model missing: BigGAN 'biggan-deep-512' is not on this machine: press Download in Models, or Use Stand-in "
        "Models to try with noise")
    assert len("Latent Walk: " + models_ui.engine_models.missing_message(found, models_ui.STAND_IN_ADVICE)) <= \
        REPORT_LIMIT_CHARS

    # A folder that lacks a part; and the render checks the img2img model too (the preview does not need it).
    scene.latentwalk.walk.model = tiny_biggan
    broken = tmp_path / "my-sd"
    broken.mkdir()
    scene.latentwalk.diffusion.model = str(broken)
    assert bpy.ops.latentwalk.preview() == {"FINISHED"}
    with pytest.raises(RuntimeError, match=r"Model missing: SD model folder 'my-sd' has no model_index.json: "):
        bpy.ops.latentwalk.render()
    scene.latentwalk.diffusion.model = tiny_sd


def test_use_stand_in_models_points_every_field_at_them_and_renders_noise(baked, tmp_path, monkeypatch):
    """An artist without a GPU or a network tries the whole path: one click, the fields name the stand-ins, the
    panels and the report say the video will be noise, and Use Own Models puts the fields back."""
    scene = baked
    monkeypatch.setattr(compat, "addon_data_folder", lambda package: str(tmp_path / "user-data"))
    settings = scene.latentwalk
    settings.walk.preview_folder = str(tmp_path / "preview")
    settings.walk.model, settings.diffusion.model, settings.diffusion.tiny_vae = (
        "biggan-deep-256", "stabilityai/sd-turbo", "madebyollin/taesd")  # the defaults: not on this machine
    assert models_ui.stand_ins_in_use(scene) == []
    assert bpy.ops.latentwalk.use_stand_in_models() == {"FINISHED"}
    folder = tmp_path / "user-data" / models_ui.STAND_IN_FOLDER
    assert settings.walk.model == str(folder / "biggan-tiny-UNTRAINED")
    assert settings.diffusion.model == str(folder / "sd-tiny-UNTRAINED") and settings.diffusion.tiny_vae == ""
    for name in ("biggan-tiny-UNTRAINED/pytorch_model.bin", "biggan-tiny-UNTRAINED/config.json",
                 "sd-tiny-UNTRAINED/model_index.json"):
        assert (folder / name).is_file(), name
    assert not os.path.exists(str(folder) + ".partial")
    assert [title for title, _ in models_ui.stand_ins_in_use(scene)] == ["BigGAN", "SD model"]
    labels = {s.name: s.label for s in models_ui.listing()["states"]}  # the panel's list follows the fields
    assert labels[settings.walk.model] == "BigGAN stand-in" and labels[settings.diffusion.model] == "SD stand-in"

    preview = render_job.render_sync(scene, preview=True, frames=(1, 2))  # on the CPU (the baked scene's device)
    assert len(preview.result.rendered) == 2
    assert preview.summary.startswith("stand-in models: the frames are noise (BigGAN);")
    full = render_job.render_sync(scene, frames=(1, 2))
    assert len(full.result.rendered) == 2
    assert full.summary.startswith("stand-in models: the frames are noise (BigGAN, SD model);")

    made = os.path.getmtime(folder / "biggan-tiny-UNTRAINED" / "pytorch_model.bin")
    started = time.monotonic()
    assert bpy.ops.latentwalk.use_stand_in_models() == {"FINISHED"}  # made once: the second click is instant
    assert time.monotonic() - started < 2
    assert os.path.getmtime(folder / "biggan-tiny-UNTRAINED" / "pytorch_model.bin") == made

    assert bpy.ops.latentwalk.use_own_models() == {"FINISHED"}
    assert (settings.walk.model, settings.diffusion.model, settings.diffusion.tiny_vae) == (
        "biggan-deep-256", "stabilityai/sd-turbo", "madebyollin/taesd")
    assert models_ui.stand_ins_in_use(scene) == []

    # A StyleGAN3 file chosen (here one not on this machine): its stand-in is StyleGAN3's, the panel's kind kept.
    settings.walk.model = str(tmp_path / "gone" / "my-stylegan3-t.pkl")
    assert bpy.ops.latentwalk.use_stand_in_models() == {"FINISHED"}
    assert settings.walk.model == str(folder / "stylegan-tiny-UNTRAINED" / "stylegan2-tiny-UNTRAINED.pkl")
    settings.walk.model = str(folder / "stylegan-tiny-UNTRAINED" / "stylegan3-t-tiny-UNTRAINED.pkl")
    assert bpy.ops.latentwalk.use_stand_in_models() == {"FINISHED"}
    assert models_ui.stylegan_kind(settings.walk) == "StyleGAN3"
    assert [title for title, _ in models_ui.stand_ins_in_use(scene)] == ["StyleGAN", "SD model"]
    assert bpy.ops.latentwalk.use_own_models() == {"FINISHED"}
    assert settings.walk.model == str(tmp_path / "gone" / "my-stylegan3-t.pkl")


def test_model_fields_browse_for_folders_and_keep_hub_names(scene, tmp_path):
    """The model fields have a folder button (DIR_PATH); a hub id stays as typed, and a folder picked relative
    to the .blend ("//...") reaches the engine as an absolute path."""
    walk, diffusion = scene.latentwalk.walk, scene.latentwalk.diffusion
    for group, name in ((walk, "model"), (diffusion, "model"), (diffusion, "tiny_vae")):
        assert group.bl_rna.properties[name].subtype == "DIR_PATH"
    diffusion.model = "stabilityai/sdxl-turbo"
    assert diffusion.model == "stabilityai/sdxl-turbo"
    (tmp_path / "project").mkdir()
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "project" / "song.blend"))
    scene = bpy.context.scene
    scene.latentwalk.walk.model = "//models/my-biggan/"
    used = dict((role, name) for name, role in models_ui.models_in_use(scene))
    assert used["biggan"] == str(tmp_path / "project" / "models" / "my-biggan")
    assert used["pipeline"] == "stabilityai/sdxl-turbo"


def test_stand_ins_in_a_python_without_torch_say_what_to_press(scene, tmp_path, monkeypatch):
    """Blender's own Python before the set-up: the stand-ins cannot be made there, and the fields stay."""
    import subprocess
    import sys

    bare = tmp_path / "bare"
    subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip", str(bare)],
                   check=True)
    monkeypatch.setenv("LATENTWALK_ENGINE_PYTHON", str(bare / "bin" / "python"))
    monkeypatch.setattr(compat, "addon_data_folder", lambda package: str(tmp_path / "user-data"))
    before = (scene.latentwalk.walk.model, scene.latentwalk.diffusion.model)
    with pytest.raises(RuntimeError) as error:
        bpy.ops.latentwalk.use_stand_in_models()
    message = str(error.value).strip().removeprefix("Error: ")
    assert message.startswith("Latent Walk: Stand-ins failed: the Engine Python has no "), message
    assert message.endswith("Press Set Up Render Environment in the add-on's preferences first.")
    assert (scene.latentwalk.walk.model, scene.latentwalk.diffusion.model) == before
    assert not os.path.exists(tmp_path / "user-data" / models_ui.STAND_IN_FOLDER)


def test_model_messages_fit_the_report_popup():
    from blender_latentwalk.engine.errors import fit_report
    from blender_latentwalk.engine.setup import models as engine_models

    assert len(f"Latent Walk: {models_ui.OFFLINE_MESSAGE}.") <= REPORT_LIMIT_CHARS
    for choice in engine_models.CATALOGUE:
        missing = engine_models.ModelState(choice.name, choice.role, choice.label, False, 0, "/x", "not here")
        report = models_ui.report_text("Latent Walk: " + engine_models.missing_message(
            missing, models_ui.STAND_IN_ADVICE))
        assert report.startswith(f"Latent Walk: Model missing: {engine_models.ROLE_TITLES[choice.role]} '")
        assert len(report) <= REPORT_LIMIT_CHARS and report == fit_report(report)
