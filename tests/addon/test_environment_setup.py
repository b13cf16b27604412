"""Set Up Render Environment from the add-on preferences: refused offline, and a failed or cancelled set-up
that leaves the Engine Python and the disk as they were."""

import os
import stat
import time

import bpy
import pytest

from blender_latentwalk.blender import compat, environment_setup, jobs, preferences, worker_client
from blender_latentwalk.engine.setup import environment


def listing(folder):
    if not os.path.isdir(folder):
        return None
    return sorted((os.path.relpath(os.path.join(root, name), folder), os.lstat(os.path.join(root, name)).st_mtime_ns)
                  for root, dirs, files in os.walk(folder) for name in dirs + files)


@pytest.fixture
def prefs(addon):
    """The add-on's preferences as an enabled add-on has them, with an Engine Python the user chose."""
    addons = bpy.context.preferences.addons
    entry = addons.get(preferences.ADDON_ID) or addons.new()
    entry.module = preferences.ADDON_ID
    entry.preferences.engine_python = "/opt/my-own-env/bin/python"
    yield entry.preferences
    addons.remove(entry)


def test_with_online_access_off_setup_says_how_to_allow_it_and_changes_nothing(scene, prefs, monkeypatch, tmp_path):
    assert bpy.app.online_access is False  # the bpy module starts with online access off
    user_data = bpy.utils.user_resource("DATAFILES")
    extension_data = os.path.join(bpy.utils.user_resource("EXTENSIONS"), ".user")
    # Should the refusal ever be missing, the set-up goes to tmp and fails at once instead of downloading.
    monkeypatch.setattr(compat, "addon_data_folder", lambda package: str(tmp_path))
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv(environment.ENV_TORCH_INDEX_URL, (tmp_path / "no-index").as_uri())
    before = (listing(user_data), listing(extension_data), listing(str(tmp_path)))
    with pytest.raises(RuntimeError, match="Allow Online Access") as refused:
        bpy.ops.latentwalk.setup_render_environment()
    assert "Nothing was changed" in str(refused.value) and "Engine Python" in str(refused.value)
    assert (listing(user_data), listing(extension_data), listing(str(tmp_path))) == before
    assert prefs.engine_python == "/opt/my-own-env/bin/python"
    assert jobs.running() is None


@pytest.fixture
def online(monkeypatch, tmp_path):
    """Online access allowed, and the add-on's data folder in tmp (as Blender's user folder would hold it)."""
    monkeypatch.setattr(compat, "online_access_allowed", lambda: True)
    monkeypatch.setattr(compat, "addon_data_folder", lambda package: str(tmp_path / "user-data"))
    (tmp_path / "user-data").mkdir()
    return tmp_path / "user-data" / environment_setup.ENVIRONMENT_FOLDER


def test_a_failed_setup_reports_the_step_the_log_and_a_command_and_keeps_the_engine_python(
        scene, prefs, online, monkeypatch, tmp_path):
    empty_index = tmp_path / "empty-index"
    empty_index.mkdir()
    for name in [k for k in os.environ if k.startswith("PIP_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # only the empty index: PyTorch cannot be found
    monkeypatch.setenv(environment.ENV_TORCH_INDEX_URL, empty_index.as_uri())
    with pytest.raises(RuntimeError) as failed:
        bpy.ops.latentwalk.setup_render_environment()
    message = str(failed.value).strip().splitlines()
    assert len(message) == 1, message  # one line
    message = message[0]
    assert "set-up failed at 'Installing PyTorch" in message
    assert "No matching distribution found for torch==2.13.0" in message
    log = message.split("Log: ", 1)[1].split(". To run", 1)[0]
    assert os.path.dirname(log) == worker_client.log_folder() and os.path.basename(log).startswith("setup-env-")
    assert stat.S_IMODE(os.stat(log).st_mode) == 0o600
    assert "No matching distribution found for torch==2.13.0" in open(log, encoding="utf-8").read()
    command = message.split("To run this step in a terminal: ", 1)[1]
    assert "-m pip install" in command and empty_index.as_uri() in command
    assert prefs.engine_python == "/opt/my-own-env/bin/python"
    assert not os.path.exists(online) and not os.path.exists(environment.partial_folder(str(online)))
    assert jobs.running() is None


def test_cancel_mid_install_ends_the_setup_and_its_pip_and_leaves_no_environment(scene, prefs, online, monkeypatch):
    """What Esc and the Cancel button do, driven through the step function the modal timer calls."""
    monkeypatch.setenv(environment.ENV_TORCH_INDEX_URL, "default")
    job = environment_setup.start(bpy.context)
    try:
        deadline = time.monotonic() + 300
        while job.step_index < 1 or job.step_count == 0:  # wait until pip installs PyTorch
            assert not job.poll(), job.result_message()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert "Latent Walk set-up 2/4: Installing PyTorch (CPU only)" in job.status_line()
        # Nothing may start a worker from the Python being replaced meanwhile.
        assert not bpy.ops.latentwalk.render.poll() and not bpy.ops.latentwalk.preview.poll()
        assert not bpy.ops.latentwalk.model_download.poll() and not bpy.ops.latentwalk.release_models.poll()
        assert bpy.ops.latentwalk.setup_render_environment_cancel() == {"FINISHED"}
        assert "cancelling" in job.status_line()
        while not job.poll():
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        if not job.poll():
            job.kill()
    environment_setup.finish(bpy.context, job)
    assert job.outcome == "cancelled" and not job.killed  # it stopped when asked, within the grace time
    assert "set-up cancelled; nothing was changed" in job.result_message()
    assert not os.path.exists(str(online)) and not os.path.exists(environment.partial_folder(str(online)))
    assert prefs.engine_python == "/opt/my-own-env/bin/python"
    assert jobs.running() is None
    with os.popen(f"pgrep -g {job.process.pid}") as group:  # pip went with it (its own process group)
        assert group.read().strip() == ""


def test_setup_is_refused_while_a_render_or_download_uses_the_worker(scene, prefs, online, monkeypatch):
    from types import SimpleNamespace

    for busy in ("render", "download"):
        with monkeypatch.context() as patch:
            patch.setattr(jobs, "_running", SimpleNamespace(kind=busy))  # as a running job holds it
            with pytest.raises(RuntimeError, match="a render or a download is running"):
                bpy.ops.latentwalk.setup_render_environment()
    assert not os.path.exists(str(online)) and jobs.running() is None
    assert prefs.engine_python == "/opt/my-own-env/bin/python"
