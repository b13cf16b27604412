"""A frame's bytes depend on its aligned batch, not on its own key alone: its neighbours' values decide how
the batch is split into calls, and the plan's end cuts the last batch. The manifest records each frame's
batch signature and the render contract it was made under; a frame whose batch or contract changed is
stale, so a resumed folder is always the bytes of one render of the plan as it is now."""

import dataclasses

import numpy as np
from render_helpers import pngs, plan_72, settings

from blender_latentwalk.engine.render import run
from blender_latentwalk.engine.render import trust


def render(models, plan, out, **options):
    options.setdefault("device", "cpu")
    return run.render(plan, models[0], settings(models), str(out), **options)


def first_frames(plan, n):
    """``plan`` ending after its first ``n`` frames (the scene's end frame moved earlier)."""
    changes = {}
    for field in dataclasses.fields(plan):
        value = getattr(plan, field.name)
        if isinstance(value, np.ndarray) and field.name in ("bands", "band_weights"):
            changes[field.name] = value[:, :n].copy()
        elif isinstance(value, np.ndarray) and value.ndim >= 1 and value.shape[0] == plan.n_frames:
            changes[field.name] = value[:n].copy()
    return dataclasses.replace(plan, **changes)


def test_editing_one_frame_re_renders_its_whole_batch_and_the_folder_is_one_render_of_the_edit(models, tmp_path):
    plan = plan_72(32)
    strength = plan.strength.copy()
    strength[18] = 1.0 if strength[18] == 0.6 else 0.6  # one frame's strength: its batch splits differently
    edited = dataclasses.replace(plan, strength=strength)
    render(models, plan, tmp_path / "resumed", plan_indices=range(16, 24), batch_size=4, threads=2)
    again = render(models, edited, tmp_path / "resumed", plan_indices=range(16, 24), batch_size=4, threads=2)
    assert again.rendered == [17, 18, 19, 20] and again.reused == [21, 22, 23, 24]  # plan indices 16-19: one batch
    render(models, edited, tmp_path / "fresh", plan_indices=range(16, 24), batch_size=4, threads=2)
    assert pngs(tmp_path / "resumed") == pngs(tmp_path / "fresh")


def test_a_plan_ending_elsewhere_makes_only_its_cut_batch_stale(models, tmp_path):
    plan = plan_72(32)
    render(models, plan, tmp_path / "frames", batch_size=4, threads=2)
    shorter = first_frames(plan, 29)  # the last batch, plan indices 28-31, is cut to index 28 alone
    status = trust.frame_status(shorter, models[0], settings(models), str(tmp_path / "frames"))
    assert status.current == tuple(range(1, 29)) and status.stale == (29,)
    again = render(models, shorter, tmp_path / "frames")
    assert again.rendered == [29] and len(again.reused) == 28
    render(models, shorter, tmp_path / "fresh", batch_size=4, threads=2)
    assert pngs(tmp_path / "fresh") == {name: data for name, data in pngs(tmp_path / "frames").items()
                                        if name <= "frame_000029.png"}


def test_frames_of_an_earlier_contract_stay_stale_when_an_edit_is_undone(models, tmp_path):
    plan = plan_72(16)
    edited = dataclasses.replace(plan, seed=plan.seed + 1)  # every frame stale: a new contract is accepted
    out = tmp_path / "frames"
    render(models, plan, out, batch_size=4, threads=2)
    switched = render(models, edited, out, plan_indices=range(0, 4), batch_size=1, threads=1)
    assert switched.contract.batch_size == 1
    undone = trust.frame_status(plan, models[0], settings(models), str(out))
    assert undone.current == ()  # made under batch size 4 and 2 threads: not the folder's contract now
    resumed = render(models, plan, out, batch_size=4, threads=2)
    assert resumed.rendered == list(range(1, 17))  # every frame again, under one contract
    render(models, plan, tmp_path / "one", batch_size=4, threads=2)
    assert pngs(out) == pngs(tmp_path / "one")
