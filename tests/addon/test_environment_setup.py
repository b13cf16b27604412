"""Set Up Render Environment from the add-on preferences: refused offline, and a failed or cancelled set-up
that leaves the Engine Python and the disk as they were."""

import os
import stat
import time

import bpy
import pytest

from blender_latentwalk.blender import compat, environment_setup, jobs, preferences, worker_client
from blender_latentwalk.engine.errors import REPORT_LIMIT_CHARS
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


def isolated_pip(monkeypatch, **settings):
    """pip with none of this machine's settings (its wheel folder, extra indexes), and ``settings``."""
    for name in [k for k in os.environ if k.startswith("PIP_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    for name, value in settings.items():
        monkeypatch.setenv(name, value)


def test_a_failed_setup_reports_what_failed_in_one_short_line_and_keeps_the_engine_python(
        scene, prefs, online, monkeypatch, tmp_path, capfd):
    empty_index = tmp_path / "empty-index"
    empty_index.mkdir()
    isolated_pip(monkeypatch)  # only the empty index: PyTorch cannot be found
    monkeypatch.setenv(environment.ENV_TORCH_INDEX_URL, empty_index.as_uri())
    with pytest.raises(RuntimeError) as failed:
        bpy.ops.latentwalk.setup_render_environment()
    message = str(failed.value).strip().splitlines()
    assert len(message) == 1, message  # one line, that fits the report popup
    message = message[0].removeprefix("Error: ")
    assert message == ("Latent Walk: set-up failed: the index: empty-index has no torch==2.13.0 (for this "
                       "machine). Set PyTorch Index to 'default' or change PyTorch Build.")
    assert len(message) <= REPORT_LIMIT_CHARS
    failure = preferences.last_setup_failure()  # what the preferences show beside PyTorch Index
    assert failure.kind == "index" and failure.torch_index_to_blame
    log = failure.log_path
    assert os.path.dirname(log) == worker_client.log_folder() and os.path.basename(log).startswith("setup-env-")
    assert stat.S_IMODE(os.stat(log).st_mode) == 0o600
    assert "No matching distribution found for torch==2.13.0" in open(log, encoding="utf-8").read()
    assert "No matching distribution found for torch==2.13.0" in failure.reason
    assert "-m pip install" in failure.command and empty_index.as_uri() in failure.command
    console = capfd.readouterr().err  # the whole story, for the console
    assert log in console and failure.command in console and "No matching distribution" in console
    assert prefs.engine_python == "/opt/my-own-env/bin/python"
    assert not os.path.exists(online) and not os.path.exists(environment.partial_folder(str(online)))
    assert jobs.running() is None


def fake_torch_wheel(folder):
    """A torch 2.13.0 wheel that needs filelock, in a wheel folder (pip's find-links), as a machine with
    PyTorch in pip's cache has it: pip then fails on filelock, the message that misled in issue 19."""
    import zipfile

    folder.mkdir()
    path = folder / "torch-2.13.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("torch/__init__.py", "")
        wheel.writestr("torch-2.13.0.dist-info/METADATA",
                       "Metadata-Version: 2.1\nName: torch\nVersion: 2.13.0\nRequires-Dist: filelock\n")
        wheel.writestr("torch-2.13.0.dist-info/WHEEL",
                       "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        wheel.writestr("torch-2.13.0.dist-info/RECORD", "torch/__init__.py,,\ntorch-2.13.0.dist-info/METADATA,,\n"
                       "torch-2.13.0.dist-info/WHEEL,,\ntorch-2.13.0.dist-info/RECORD,,\n")
    return folder


def test_an_unreachable_pytorch_index_says_the_network_first_and_how_to_fix_it(
        scene, prefs, online, monkeypatch, tmp_path, capfd):
    """Done-means of issue 19: PyTorch's index on a loopback port that refuses, torch itself in a wheel folder;
    the real pip fails on filelock, and the report says the network, then PyTorch Index = 'default'."""
    isolated_pip(monkeypatch, PIP_RETRIES="0", PIP_TIMEOUT="5",
                 PIP_FIND_LINKS=str(fake_torch_wheel(tmp_path / "wheels")))
    monkeypatch.setenv(environment.ENV_TORCH_INDEX_URL, "http://127.0.0.1:9/")
    started = time.monotonic()
    with pytest.raises(RuntimeError) as failed:
        bpy.ops.latentwalk.setup_render_environment()
    assert time.monotonic() - started < 60
    message = str(failed.value).strip().removeprefix("Error: ")  # bpy raises the report as "Error: ..."
    assert message == ("Latent Walk: set-up failed: the network: PyTorch's index 127.0.0.1:9 cannot be reached. "
                       "Set PyTorch Index to 'default' and set up again.")
    assert len(message) <= REPORT_LIMIT_CHARS
    failure = preferences.last_setup_failure()
    assert failure.kind == "network" and failure.host == "127.0.0.1:9" and failure.torch_index_to_blame
    assert "No matching distribution found for filelock" in failure.reason  # pip's words: behind, not first
    console = capfd.readouterr().err
    assert "filelock" in console and "(connection refused)" in console  # why, in the console
    assert prefs.engine_python == "/opt/my-own-env/bin/python" and jobs.running() is None
    assert bpy.ops.latentwalk.copy_text(text=failure.log_path, what="the set-up's log path") == {"FINISHED"}


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
    assert job.result_message() == "Latent Walk: set-up cancelled: nothing was changed."
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


@pytest.mark.parametrize("kind, step_name, message, starts", [
    ("network", "torch", "the network: PyTorch's index download.pytorch.org cannot be reached (its name does not "
     "resolve)", "Latent Walk: set-up failed: the network: PyTorch's index download.pytorch.org cannot be reached."),
    ("network", "packages", "the network: the package index a-very-long-mirror-name.internal.example.com:8443 "
     "cannot be reached (timed out)", "Latent Walk: set-up failed: the network: the package index"),
    ("index", "torch", "the index: download.pytorch.org has no torch==2.13.0 (for this machine)",
     "Latent Walk: set-up failed: the index: download.pytorch.org has no torch==2.13.0. Set PyTorch Index"),
    ("disk", "packages", "the disk is full: the environment needs 1.7 GB (CPU build) to 5 GB (CUDA)",
     "Latent Walk: set-up failed: the disk is full"),
    ("tool", "packages", "error: subprocess-exited-with-error: Failed building wheel for soxr, a package that "
     "needs a compiler on this platform (exit status 1)", "Latent Walk: set-up failed: 'Installing diffusers"),
])
def test_every_setup_failure_fits_the_report_popup_and_says_what_to_do(kind, step_name, message, starts):
    failure = environment_setup.Failure(step="Installing diffusers, transformers, BigGAN and librosa",
                                        step_name=step_name, kind=kind, host="", message=message, reason="",
                                        torch_index=step_name == "torch",
                                        log_path="/home/someone/.config/blender/3.4/datafiles/latentwalk/logs/x.log",
                                        command="pip install")
    report = failure.report()
    assert report.startswith(starts) and len(report) <= REPORT_LIMIT_CHARS and "\n" not in report, report
    assert report.endswith(failure.advice() + ".") and "/home/someone" not in report  # the path: a button
