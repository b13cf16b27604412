"""Our StyleGAN2 generator (engine/generators/stylegan2_network.py) against numbers NVIDIA's and rosinality's
own code produced, outside this project, from the same seeded weights (`stylegan2_seeded.seeded_state`).

How the fixtures were made (each one's "meta" names the code and commit): the reference network was built
from the recorded init kwargs, its state dict replaced by ``seeded_state(its state_dict(), seed)`` (the
resampling filters kept as built), then for each call z (and c, one-hot) of a batch of 2 were drawn from
``torch.Generator().manual_seed(1000 + seed)`` (rosinality: 2000 + seed, after 512 z for its mean w),
and ws = mapping(z, c, psi, cutoff), images = synthesis(ws, noise_mode="const") recorded, on the CPU in fp32.

* fixtures/stylegan2_reference.npz: NVIDIA's stylegan3 ``training/networks_stylegan2.py`` (4 networks:
  skip / resnet / orig, conditional and not, 16 and 32 pixels, clamping, truncation with a cutoff) and
  stylegan2-ada-pytorch's ``training/networks.py`` (1 network, its nested ``synthesis_kwargs``); also the
  state-dict keys in order, and every module's class name and constructor arguments.
* fixtures/stylegan2_rosinality_reference.npz: rosinality's stylegan2-pytorch ``model.py`` with its channel
  table divided by 16, 32 and 64 pixels, ``randomize_noise=False``, truncation toward its mean w.
"""

import copy
import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from stylegan2_seeded import checksum, seeded_state  # noqa: E402

from blender_latentwalk.engine.errors import LatentWalkError  # noqa: E402
from blender_latentwalk.engine.generators import stylegan2_network as sg2  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
# fp32 rounding: on the CPU we match NVIDIA bitwise, rosinality to < 1e-6; other BLAS builds may differ a little.
ATOL = 1e-4


def _load(name):
    with np.load(os.path.join(FIXTURES, name)) as data:
        return json.loads(str(data["meta"])), {key: torch.from_numpy(data[key]) for key in data.files if key != "meta"}


NVIDIA_META, NVIDIA = _load("stylegan2_reference.npz")
ROSINALITY_META, ROSINALITY = _load("stylegan2_rosinality_reference.npz")
NVIDIA_CONFIGS = {config["name"]: config for config in NVIDIA_META["configs"]}
ROSINALITY_CONFIGS = {config["name"]: config for config in ROSINALITY_META["configs"]}


def _seeded(config):
    """(our Generator built from the config's init kwargs, the seeded state dict NVIDIA's network had)."""
    built = sg2.Generator(**config["init_kwargs"])
    state = {**built.state_dict(), **seeded_state(built.state_dict(), config["seed"])}
    if checksum(seeded_state(built.state_dict(), config["seed"])) != pytest.approx(config["checksum"], rel=1e-12):
        pytest.fail("torch's seeded normal draws differ from those the fixture was made with: remake the fixture")
    return built, state


def _noisy_generator(seed=3, **overrides):
    """A tiny random generator whose noise is visible (NVIDIA initialises noise strength to 0)."""
    kwargs = {"z_dim": 16, "w_dim": 16, "img_resolution": 16, "mapping_kwargs": {"num_layers": 2},
              "channel_base": 256, "channel_max": 16, "num_fp16_res": 2, **overrides}
    generator = sg2.random_generator(seed, **kwargs)
    for module in generator.modules():
        if isinstance(module, sg2.SynthesisLayer):
            module.noise_strength.fill_(0.3)
    return generator


# ---------------------------------------------------------------- against NVIDIA's code

@pytest.mark.parametrize("name", sorted(NVIDIA_CONFIGS))
def test_outputs_match_nvidia(name):
    config = NVIDIA_CONFIGS[name]
    _, state = _seeded(config)
    generator = sg2.from_state(config["init_kwargs"], state)
    assert not generator.training
    for index, call in enumerate(config["calls"]):
        z, c = NVIDIA[f"{name}/z{index}"], NVIDIA[f"{name}/c{index}"]
        ws = generator.mapping(z, c, truncation_psi=call["psi"], truncation_cutoff=call["cutoff"])
        images = generator.synthesis(ws, noise_mode="const")
        torch.testing.assert_close(ws, NVIDIA[f"{name}/ws{index}"], atol=ATOL, rtol=0)
        torch.testing.assert_close(images, NVIDIA[f"{name}/img{index}"], atol=ATOL, rtol=0)
        direct = generator(z, c, truncation_psi=call["psi"], truncation_cutoff=call["cutoff"])
        assert torch.equal(direct, images)


@pytest.mark.parametrize("name", sorted(NVIDIA_CONFIGS))
def test_state_dict_keys_and_filters_are_nvidias(name):
    config = NVIDIA_CONFIGS[name]
    built = sg2.Generator(**config["init_kwargs"])
    assert list(built.state_dict()) == config["keys"]  # the same names, in the same order
    assert torch.equal(built.synthesis.b8.resample_filter, NVIDIA[f"{name}/resample_filter"])
    assert built.num_ws == built.mapping.num_ws == NVIDIA[f"{name}/ws0"].shape[1]


@pytest.mark.parametrize("name", sorted(NVIDIA_CONFIGS))
def test_every_module_records_nvidias_class_and_arguments(name):
    config = NVIDIA_CONFIGS[name]
    built = sg2.Generator(**config["init_kwargs"])
    ours = {}
    for module_name, module in built.named_modules():
        assert isinstance(module.nvidia_class_name, str), module_name
        assert isinstance(module.init_args, tuple) and isinstance(module.init_kwargs, dict), module_name
        ours[module_name] = [module.nvidia_class_name, list(module.init_args), module.init_kwargs]
    assert json.loads(json.dumps(ours)) == config["modules"]


def test_fixtures_are_small():
    for name in ("stylegan2_reference.npz", "stylegan2_rosinality_reference.npz"):
        assert os.path.getsize(os.path.join(FIXTURES, name)) < 300_000


# ---------------------------------------------------------------- strict loading

def _tiny_state():
    config = NVIDIA_CONFIGS["uncond16_skip"]
    return config["init_kwargs"], sg2.Generator(**config["init_kwargs"]).state_dict()


def test_a_missing_key_is_refused_by_name():
    kwargs, state = _tiny_state()
    del state["synthesis.b8.conv0.noise_const"]
    with pytest.raises(LatentWalkError, match=r"missing synthesis\.b8\.conv0\.noise_const"):
        sg2.from_state(kwargs, state)


def test_an_unexpected_key_is_refused_by_name():
    kwargs, state = _tiny_state()
    state["synthesis.b8.conv0.extra"] = torch.zeros(3)
    with pytest.raises(LatentWalkError, match=r"unexpected synthesis\.b8\.conv0\.extra"):
        sg2.from_state(kwargs, state)


def test_a_wrong_shape_is_refused_by_name():
    kwargs, state = _tiny_state()
    state["mapping.fc0.weight"] = torch.zeros(32, 31)
    with pytest.raises(LatentWalkError,
                       match=r"wrong shape mapping\.fc0\.weight \(file \(32, 31\), network \(32, 32\)\)"):
        sg2.from_state(kwargs, state)


def test_many_bad_keys_are_named_five_at_a_time():
    kwargs, state = _tiny_state()
    for key in [key for key in state if key.startswith("synthesis.b16")]:
        del state[key]
    with pytest.raises(LatentWalkError, match=r"and \d+ more"):
        sg2.from_state(kwargs, state)


@pytest.mark.parametrize("change, words", [
    ({"architecture": "progressive"}, "architecture is 'progressive'"),
    ({"magnitude_ema_beta": 0.99, "conv_kernel": 1}, "conv_kernel, magnitude_ema_beta"),  # a StyleGAN3 record
    ({"mapping_kwargs": {"num_layers": 2, "depth": 3}}, "mapping_kwargs.depth"),
])
def test_init_arguments_stylegan2_does_not_take_are_refused(change, words):
    kwargs, state = _tiny_state()
    with pytest.raises(LatentWalkError, match=words):
        sg2.from_state({**kwargs, **change}, state)


def test_a_record_without_its_sizes_is_refused():
    kwargs, state = _tiny_state()
    with pytest.raises(LatentWalkError, match="lacks img_resolution"):
        sg2.from_state({key: value for key, value in kwargs.items() if key != "img_resolution"}, state)


def test_arguments_nvidia_accepts_build():
    kwargs, state = _tiny_state()
    extra = {"fused_modconv_default": "inference_only", "fp16_channels_last": True, "use_noise": True}
    generator = sg2.from_state({**kwargs, **extra}, state)
    assert generator.init_kwargs["fused_modconv_default"] == "inference_only"


def test_ada_layout_takes_ada_defaults():
    generator = sg2.Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3,
                              synthesis_kwargs={"channel_base": 128, "channel_max": 8})
    assert generator.init_kwargs == {"z_dim": 8, "c_dim": 0, "w_dim": 8, "img_resolution": 16, "img_channels": 3,
                                     "synthesis_kwargs": {"channel_base": 128, "channel_max": 8}}
    assert generator.synthesis.b16.conv1.conv_clamp is None
    assert not any(getattr(generator.synthesis, f"b{res}").use_fp16 for res in (4, 8, 16))


# ---------------------------------------------------------------- our own inputs: noise scale, per-sample psi, dtype

def test_same_output_twice_and_batch_of_one_matches_batch_of_two():
    generator = _noisy_generator()
    z = torch.randn([2, 16], generator=torch.Generator().manual_seed(1))
    both = generator(z, truncation_psi=0.7)
    assert torch.equal(both, generator(z, truncation_psi=0.7))
    # not bitwise: the matrix products' blocking depends on the batch size (differences ~4e-6 seen)
    torch.testing.assert_close(generator(z[1:], truncation_psi=0.7), both[1:], atol=ATOL, rtol=0)


def test_noise_scale_one_is_none_and_zero_is_no_noise():
    generator = _noisy_generator()
    z = torch.randn([2, 16], generator=torch.Generator().manual_seed(2))
    assert torch.equal(generator(z, noise_scale=torch.ones(2)), generator(z))
    assert torch.equal(generator(z, noise_scale=torch.zeros(2)), generator(z, noise_mode="none"))
    mixed = generator(z, noise_scale=torch.tensor([1.0, 0.0]))
    assert torch.equal(mixed[:1], generator(z)[:1])
    assert torch.equal(mixed[1:], generator(z, noise_mode="none")[1:])
    assert not torch.equal(generator(z, noise_scale=torch.full([2], 0.5)), generator(z))


def test_random_noise_draws_from_torchs_global_rng():
    generator = _noisy_generator()
    z = torch.randn([2, 16], generator=torch.Generator().manual_seed(2))
    torch.manual_seed(5)
    first = generator(z, noise_mode="random")
    torch.manual_seed(5)
    assert torch.equal(first, generator(z, noise_mode="random"))
    assert not torch.equal(first, generator(z, noise_mode="const"))
    with pytest.raises(ValueError, match="noise_mode"):
        generator(z, noise_mode="fixed")


def test_per_sample_truncation_psi():
    generator = _noisy_generator()
    z = torch.randn([2, 16], generator=torch.Generator().manual_seed(3))
    psi = torch.tensor([1.0, 0.5])
    ws = generator.mapping(z, None, truncation_psi=psi)
    assert torch.equal(ws[:1], generator.mapping(z, None)[:1])
    torch.testing.assert_close(ws[1:], generator.mapping(z, None, truncation_psi=0.5)[1:], atol=1e-6, rtol=0)
    cut = generator.mapping(z, None, truncation_psi=psi, truncation_cutoff=2)
    torch.testing.assert_close(cut[1:, :2], ws[1:, :2], atol=1e-6, rtol=0)
    assert torch.equal(cut[:, 2:], generator.mapping(z, None)[:, 2:])
    w_avg = generator.mapping.w_avg.clone()
    generator(z, truncation_psi=psi)
    assert torch.equal(generator.mapping.w_avg, w_avg)  # inference never moves the average


def test_fp16_runs_close_to_fp32():
    generator = _noisy_generator()
    z = torch.randn([2, 16], generator=torch.Generator().manual_seed(4))
    reference = generator(z, truncation_psi=0.7)
    scale = float(reference.abs().max())
    try:
        for batch in (z[:1], z):  # one sample: per-sample weights; a batch: scaled activations
            half = generator(batch, truncation_psi=0.7, dtype=torch.float16)
            assert half.dtype == torch.float32
            torch.testing.assert_close(half, reference[:len(batch)], atol=0.01 * scale, rtol=0)
        halved = copy.deepcopy(generator).half()  # NVIDIA's mixed precision: fp16 in b16 and b8 only
        torch.testing.assert_close(halved(z, truncation_psi=0.7), reference, atol=0.01 * scale, rtol=0)
        assert torch.equal(halved(z, truncation_psi=0.7, dtype=torch.float32),
                           copy.deepcopy(halved).float()(z, truncation_psi=0.7))
    except RuntimeError as error:  # a CPU build without half convolutions
        pytest.skip(f"no fp16 convolutions here: {error}")


def test_random_generator_is_seeded_and_leaves_the_global_rng_alone():
    torch.manual_seed(0)
    before = torch.random.get_rng_state()
    first = sg2.random_generator(7, z_dim=8, w_dim=8, img_resolution=8, channel_base=64, channel_max=8)
    assert torch.equal(torch.random.get_rng_state(), before)
    second = sg2.random_generator(7, z_dim=8, w_dim=8, img_resolution=8, channel_base=64, channel_max=8)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
    images = first(torch.randn([1, 8]), truncation_psi=0.5)
    assert images.shape == (1, 3, 8, 8) and torch.isfinite(images).all()
    assert first.mapping.w_avg.abs().sum() > 0
    conditional = sg2.random_generator(1, z_dim=8, c_dim=3, w_dim=8, img_resolution=8, channel_base=64,
                                       channel_max=8)
    assert conditional(torch.randn([2, 8]), torch.eye(3)[:2]).shape == (2, 3, 8, 8)


# ---------------------------------------------------------------- rosinality checkpoints

def _rosinality_state(config):
    state = seeded_state(config["shapes"], config["seed"])
    assert checksum(state) == pytest.approx(config["checksum"], rel=1e-12)
    kernel = sg2.setup_filter([1, 3, 3, 1]) * 4
    state.update({key: kernel for key in config["shapes"] if key.endswith(".kernel")})
    return state


@pytest.mark.parametrize("name", sorted(ROSINALITY_CONFIGS))
def test_rosinality_conversion_matches_its_model(name):
    config = ROSINALITY_CONFIGS[name]
    state = _rosinality_state(config)
    latent_avg = ROSINALITY[f"{name}/latent_avg"]
    if config["latent_avg_saved"]:  # as load_rosinality returns it: inside the state dict
        generator = sg2.from_rosinality({**state, "latent_avg": latent_avg}, size=config["kwargs"]["size"])
    else:  # none saved: estimated from seed 0, the same every time
        generator = sg2.from_rosinality(state)
        assert torch.equal(generator.mapping.w_avg, sg2.from_rosinality(state).mapping.w_avg)
        generator.mapping.w_avg.copy_(latent_avg)  # the reference truncated toward this one
    assert generator.img_resolution == config["kwargs"]["size"]
    assert generator.mapping.num_layers == config["kwargs"]["n_mlp"]
    for index, psi in enumerate(config["truncations"]):
        ws = generator.mapping(ROSINALITY[f"{name}/z{index}"], None, truncation_psi=psi)
        torch.testing.assert_close(ws, ROSINALITY[f"{name}/ws{index}"], atol=ATOL, rtol=0)
        torch.testing.assert_close(generator.synthesis(ws, noise_mode="const"), ROSINALITY[f"{name}/img{index}"],
                                   atol=ATOL, rtol=0)


def test_rosinality_missing_and_unexpected_keys_are_refused():
    config = ROSINALITY_CONFIGS["ros32"]
    state = _rosinality_state(config)
    del state["convs.1.noise.weight"]
    state["convs.1.extra"] = torch.zeros(1)
    with pytest.raises(LatentWalkError, match=r"missing convs\.1\.noise\.weight; unexpected convs\.1\.extra"):
        sg2.from_rosinality(state)
    with pytest.raises(LatentWalkError, match="is a 32-pixel generator, not 64"):
        sg2.from_rosinality(_rosinality_state(config), size=64)


def test_rosinality_other_kernels_are_refused():
    state = _rosinality_state(ROSINALITY_CONFIGS["ros32"])
    state["convs.0.conv.blur.kernel"] = sg2.setup_filter([1, 2, 1]) * 4
    with pytest.raises(LatentWalkError, match="another kernel"):
        sg2.from_rosinality(state)
