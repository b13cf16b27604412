"""A section look's seed: the walk's seed per frame (``RenderPlan.walk_seed``).

A frame whose walk seed is another gets that seed's resting point and directions (BigGAN) or directions and
jitter (StyleGAN), exactly as a plan with that seed all through would give it; frames on the plan's own seed
keep their numbers, keys and pixels.
"""

import numpy as np
import pytest

from blender_latentwalk.engine.generators import stylegan
from blender_latentwalk.engine.render import run, trust
from blender_latentwalk.engine.walk import latents
from blender_latentwalk.engine.walk import stylegan_inputs as walk_inputs
from blender_latentwalk.engine.walk.plan import DEFAULT_SETTINGS, MAX_WALK_SEED, RenderPlan

from render_helpers import pngs

N_FRAMES = 12
SECTION = slice(4, 8)  # frames 5-8 (plan indices 4-7): a section whose look has seed 9


def plan(mode="displacement", seed=5, walk_seed=None, space="w"):
    rng = np.random.default_rng(7)
    n = N_FRAMES
    return RenderPlan(frame_start=1, fps=24, fps_base=1.0, seed=seed, band_names=["low", "high"],
                      bands=rng.random((2, n)), band_weights=np.ones((2, n)), onset=rng.random(n),
                      chroma=rng.random((n, 12)), truncation=np.full(n, 0.6), pulse=np.ones(n), speed=np.ones(n),
                      jitter=np.where(np.arange(n) % 2 == 0, 0.1, 0.0), walk_seed=walk_seed,
                      settings=dict(DEFAULT_SETTINGS, mode=mode, latent_space=space, palette_seeds=[3, 14, 15, 92]))


def sectioned(**options):
    walk_seed = np.full(N_FRAMES, 5)
    walk_seed[SECTION] = 9
    return plan(walk_seed=walk_seed, **options)


def test_biggan_frames_of_a_section_seed_are_those_of_a_plan_with_that_seed():
    mixed = latents.noise_vectors(sectioned())
    np.testing.assert_array_equal(mixed[SECTION], latents.noise_vectors(plan(seed=9))[SECTION])
    outside = np.ones(N_FRAMES, bool)
    outside[SECTION] = False
    np.testing.assert_array_equal(mixed[outside], latents.noise_vectors(plan())[outside])
    np.testing.assert_array_equal(latents.resting_point(sectioned(), 5), latents.resting_point(plan(seed=9), 5))


def test_biggan_travel_keeps_going_through_a_section_along_its_own_directions():
    """Travel sums each frame's step along its own seed's directions: at the section the walk rests on seed 9's
    point (a cut to the section's look) and goes on from the distance walked so far."""
    mixed = sectioned(mode="travel")
    mixed.pulse[:], mixed.jitter[:] = 0.0, 0.0
    energy = mixed.bands * mixed.band_weights * mixed.speed[None, :] * (latents.TRAVEL_STEP / mixed.fps)
    steps = np.stack([energy[:, k] @ latents._directions(int(mixed.walk_seed[k]), 2)[1] for k in range(N_FRAMES)])
    rests = np.stack([latents._directions(int(seed), 2)[0] for seed in mixed.walk_seed])
    expected = latents.truncations(mixed)[:, None] * latents.fold(rests + np.cumsum(steps, axis=0))
    np.testing.assert_allclose(latents.noise_vectors(mixed), expected, atol=1e-6)
    alone = plan(mode="travel")
    alone.pulse[:], alone.jitter[:] = 0.0, 0.0
    np.testing.assert_array_equal(latents.noise_vectors(mixed)[:4], latents.noise_vectors(alone)[:4])


def test_a_walk_seed_must_be_whole_numbers_in_blenders_range_and_survives_a_save(tmp_path):
    with pytest.raises(ValueError, match="walk_seed"):
        plan(walk_seed=np.full(N_FRAMES, 1.5))
    with pytest.raises(ValueError, match="walk_seed"):
        plan(walk_seed=np.full(N_FRAMES, -1))
    with pytest.raises(ValueError, match="walk_seed"):
        plan(walk_seed=np.zeros(3))
    big = np.full(N_FRAMES, MAX_WALK_SEED)  # not a float32's whole number: saved as int64
    saved = plan(walk_seed=big)
    saved.save(str(tmp_path / "plan.npz"))
    loaded = RenderPlan.load(str(tmp_path / "plan.npz"))
    np.testing.assert_array_equal(loaded.walk_seed, big)
    assert loaded.fingerprint() == saved.fingerprint()
    assert plan().fingerprint() != sectioned().fingerprint()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return stylegan.make_tiny_models(str(tmp_path_factory.mktemp("stylegan")))


def img2img_settings():
    return run.Img2ImgSettings(model="none", width=32, height=32)


@pytest.mark.parametrize("space", ["w", "z"])
def test_stylegan_keys_and_pixels_change_only_in_the_section(tiny, tmp_path, space):
    model = tiny["stylegan3-t"]
    base, mixed = plan(space=space), sectioned(space=space)
    keys, mixed_keys = trust.frame_keys(base, model, img2img_settings()), trust.frame_keys(mixed, model, img2img_settings())
    assert [i for i in keys if keys[i] != mixed_keys[i]] == [4, 5, 6, 7]
    inputs = walk_inputs.stylegan_inputs(mixed)
    z_mixed = walk_inputs.compose_z(inputs, [3, 14, 15, 92], list(range(N_FRAMES)), 16, travel=False)
    z_nine = walk_inputs.compose_z(walk_inputs.stylegan_inputs(plan(seed=9, space=space)), [3, 14, 15, 92],
                                   list(range(N_FRAMES)), 16, travel=False)
    np.testing.assert_array_equal(z_mixed[SECTION], z_nine[SECTION])
    for name, each in (("base", base), ("mixed", mixed), ("nine", plan(seed=9, space=space))):
        run.render(each, model, img2img_settings(), str(tmp_path / name), device="cpu", batch_size=4)
    base_png, mixed_png, nine_png = (pngs(tmp_path / name) for name in ("base", "mixed", "nine"))
    section_files = [f"frame_{frame:06d}.png" for frame in range(5, 9)]  # one aligned batch at size 4
    assert [n for n in base_png if base_png[n] != mixed_png[n]] == section_files
    assert all(mixed_png[n] == nine_png[n] for n in section_files)


def test_a_plan_without_section_seeds_follows_its_seed_when_copied_with_another():
    import dataclasses

    plain = plan()
    assert plain.walk_seed is None and list(plain.walk_seeds()) == [5] * N_FRAMES
    reseeded = dataclasses.replace(plain, seed=9)
    np.testing.assert_array_equal(latents.noise_vectors(reseeded), latents.noise_vectors(plan(seed=9)))
