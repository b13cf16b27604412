"""The render contract: what decides a frame's last bits beside its key (device kind, precision, batch size, CPU
threads) is recorded by the output folder, kept by a render that asks for nothing else, and a render that asks
for another is refused before it writes anything."""

import json
import os

import pytest
import torch
from render_helpers import identities, pngs, plan_72, settings

from blender_latentwalk.engine import LatentWalkError
from blender_latentwalk.engine import cli
from blender_latentwalk.engine.render import claims
from blender_latentwalk.engine.render import compute
from blender_latentwalk.engine.render import run
from blender_latentwalk.engine.render import trust
from blender_latentwalk.engine.worker import messages

N = 16


@pytest.fixture
def two_threads():
    """This process's PyTorch at 2 CPU threads (its default on a 2-core machine), put back after."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def render(models, out, plan=None, **options):
    options.setdefault("device", "cpu")
    return run.render(plan if plan is not None else plan_72(N), models[0], settings(models), str(out), **options)


def recorded(out):
    return trust.read_manifest(str(out)).contract


@pytest.fixture(scope="module")
def one_thread_reference(models, tmp_path_factory):
    """The frames of one uninterrupted render at batch size 4 on 1 CPU thread."""
    out = tmp_path_factory.mktemp("reference") / "frames"
    result = render(models, out, batch_size=4, threads=1)
    assert result.contract.threads == 1 and result.contract.batch_size == 4
    return pngs(out)


def test_a_resume_that_asks_for_no_threads_takes_the_folder_s_and_gives_the_bytes_of_one_render(
        models, one_thread_reference, tmp_path, two_threads):
    out = tmp_path / "frames"
    first = render(models, out, plan_indices=range(0, 6), batch_size=4, threads=1)
    assert first.rendered == list(range(1, 7))
    cpu = compute.device_kind(torch.device("cpu"))
    assert recorded(out) == {"device": cpu, "precision": "float32", "batch_size": 4, "threads": 1,
                             "torch": torch.__version__}
    seen = []
    rest = render(models, out, progress=lambda done, total: done and seen.append(torch.get_num_threads()))
    assert rest.rendered == list(range(7, N + 1)) and rest.reused == list(range(1, 7))
    assert set(seen) == {1} and torch.get_num_threads() == 2  # the folder's 1 thread, put back after
    assert (rest.contract.batch_size, rest.contract.threads) == (4, 1)
    assert pngs(out) == one_thread_reference
    assert json.loads((out / trust.MANIFEST_NAME).read_text())["contract"]["threads"] == 1
    assert trust.JOURNAL_NAME not in os.listdir(out)  # folded in as the render ended


@pytest.mark.parametrize("asked, differs, names", [
    (dict(threads=2), "another CPU threads",
     ("1 CPU thread,", "2 CPU threads", "with 1 CPU thread (or leave the threads unset)")),
    (dict(batch_size=8), "another batch size", ("batch size 4", "batch size 8", "at batch size 4")),
])
def test_asking_for_other_threads_or_another_batch_size_is_refused_naming_both(models, one_thread_reference, tmp_path,
                                                                               asked, differs, names):
    out = tmp_path / "frames"
    render(models, out, plan_indices=range(0, 8), batch_size=4, threads=1)
    before, contract = identities(out), recorded(out)
    with pytest.raises(LatentWalkError) as error:
        render(models, out, **asked)
    message = str(error.value)
    assert f"'{out}'" in message and differs in message and "\n" not in message
    assert all(name in message for name in names), message
    assert "choose another Output folder" in message and "render them all again" in message
    assert identities(out) == before and recorded(out) == contract  # nothing written
    assert claims.live_claims(str(out)) == []  # and the claim released


def test_another_device_kind_or_precision_is_refused_even_when_nothing_is_asked(models, tmp_path):
    out = tmp_path / "frames"
    render(models, out, plan_indices=range(0, 4), batch_size=4)
    gpu = trust.RenderContract("cuda:NVIDIA H200", "float16", 16, None, torch.__version__)
    lock = claims.locked(str(out))
    try:  # as if the frames had been made on a GPU
        made_there = trust.read_manifest(str(out))
        for entry in made_there.frames.values():
            entry["contract"] = gpu.identity
        trust.compact_locked(str(out), contract=gpu, manifest=made_there)
    finally:
        lock.release()
    with pytest.raises(LatentWalkError) as error:
        render(models, out)
    message = str(error.value)
    assert "cuda:NVIDIA H200, float16, batch size 16" in message and "another device, precision" in message
    assert "Render on cuda:NVIDIA H200 and at float16" in message


def test_an_empty_or_all_stale_folder_takes_a_new_contract(models, tmp_path):
    out = tmp_path / "frames"
    render(models, out, batch_size=4, threads=1)
    # Another plan: every frame in the folder is stale for it, so nothing binds the render.
    other = render(models, out, plan=plan_72(N, seed=9), batch_size=8, threads=2)
    assert other.replaced == list(range(1, N + 1))
    assert (recorded(out)["batch_size"], recorded(out)["threads"]) == (8, 2)
    # No frames at all (the manifest still names the last contract): a new one again, from what is asked.
    for name in os.listdir(out):
        if name.endswith(".png"):
            os.unlink(out / name)
    again = render(models, out, plan_indices=range(0, 4), batch_size=2, threads=1)
    assert again.rendered == [1, 2, 3, 4] and (again.contract.batch_size, again.contract.threads) == (2, 1)


def test_another_live_render_s_contract_binds_before_it_has_finished_a_frame(models, tmp_path):
    out = tmp_path / "frames"
    out.mkdir()
    lock = claims.locked(str(out))
    try:
        trust.compact_locked(str(out), contract=trust.RenderContract(
            compute.device_kind(torch.device("cpu")), "float32", 8, 1, torch.__version__))
    finally:
        lock.release()
    other = claims.claim(str(out), [N + 1])  # a farm's other chunk, still loading its models
    try:
        with pytest.raises(LatentWalkError, match="another batch size"):
            render(models, out, batch_size=4)
        result = render(models, out, plan_indices=range(0, 8))
        assert (result.contract.batch_size, result.contract.threads) == (8, 1)
    finally:
        other.release()


def test_a_folder_from_before_contracts_is_rendered_again_under_one(models, one_thread_reference, tmp_path):
    out = tmp_path / "frames"
    render(models, out, plan_indices=range(0, 8), batch_size=2, threads=1)
    frames = trust.load_manifest(str(out))
    for entry in frames.values():  # as version 3 recorded them: no batch signature, no contract
        del entry["batch"], entry["contract"]
    (out / trust.MANIFEST_NAME).write_text(json.dumps({"version": 3, "frames": {str(f): e for f, e in frames.items()}}))
    resumed = render(models, out, threads=1)  # made under no recorded contract: not trusted to match
    assert resumed.reused == [] and resumed.rendered == list(range(1, N + 1)) and resumed.contract.batch_size == 4
    assert pngs(out) == one_thread_reference
    assert json.loads((out / trust.MANIFEST_NAME).read_text())["version"] == trust.MANIFEST_VERSION


def test_the_cli_takes_threads_and_prints_the_contract_and_the_worker_request_carries_them(models, tmp_path, capsys):
    plan_path = tmp_path / "plan.npz"
    plan_72(4).save(plan_path)
    common = ["render", str(plan_path), "--biggan", models[0], "--sd", "none", "--out", str(tmp_path / "c"),
              "--size", "32x32", "--device", "cpu"]
    assert cli.main(common + ["--threads", "0"]) == 2
    assert "--threads 0: give 1 or more" in capsys.readouterr().err
    assert cli.main(common + ["--threads", "1", "--batch-size", "2"]) == 0
    cpu = compute.device_kind(torch.device("cpu"))
    assert f"render contract: {cpu}, float32, batch size 2, 1 CPU thread\n" in capsys.readouterr().out
    request = messages.RenderRequest(id=1, plan_path="p.npz", generator="g", img2img={}, out_folder="o", threads=3)
    assert messages.decode_request(messages.encode(request)).threads == 3
