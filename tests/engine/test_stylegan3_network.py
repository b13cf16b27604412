"""Our StyleGAN3 generator (engine/generators/stylegan3_network.py) against numbers recorded once from
NVIDIA's own networks_stylegan3.py (CPU reference ops) with the same seeded weights: see
stylegan3_reference_setup.py for how tests/engine/fixtures/stylegan3_reference.npz was made.
Tiny configs T and R at 16 and 32 pixels; fp32 on the CPU."""

import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from blender_latentwalk.engine.errors import LatentWalkError  # noqa: E402
from blender_latentwalk.engine.generators import stylegan3_network as sg3  # noqa: E402
from stylegan3_reference_setup import CONFIGS, TRANSFORMS, encode, seeded_state  # noqa: E402

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "stylegan3_reference.npz")
# fp32 through 16 layers, different summation orders from NVIDIA's reference ops (images are ~0.1-0.3).
WS_ATOL, IMAGE_ATOL = 1e-5, 1e-5  # seen: ws equal, images within 3e-7


@pytest.fixture(scope="module")
def reference():
    with np.load(FIXTURE) as data:
        arrays = {key: data[key] for key in data.files}
    return json.loads(str(arrays.pop("configs_json"))), arrays


def _ours(reference, name):
    """Our Generator for config ``name`` with the seeded weights, in eval mode."""
    described, _ = reference
    model = sg3.Generator(**described[name]["init_kwargs"]).eval()
    checksum = seeded_state(model, seed=sum(map(ord, name)))
    assert checksum == pytest.approx(described[name]["checksum"], rel=1e-12), "torch's seeded generator changed"
    return model


def _run(model, arrays, name, run, psi, cutoff, transform=None):
    z, c = (torch.from_numpy(arrays[f"{name}__{key}"]) for key in ("z", "c"))
    with torch.no_grad():
        ws = model.mapping(z, c, truncation_psi=psi, truncation_cutoff=cutoff)
        return ws, model.synthesis(ws, transform=transform)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_keys_and_filters_are_nvidias(reference, name):
    _, arrays = reference
    model = _ours(reference, name)
    assert list(model.state_dict()) == list(arrays[f"{name}__state_keys"])
    filters = {key.split("__")[-1]: value for key, value in arrays.items() if key.startswith(f"{name}__filter__")}
    ours = {key: tensor for key, tensor in model.state_dict().items() if key.endswith(("up_filter", "down_filter"))}
    assert sorted(ours) == sorted(filters)
    if name.startswith("R"):  # radial downsampling filters (2D) in the non-critically-sampled layers
        assert any(value.ndim == 2 for value in filters.values())
    for key, value in filters.items():
        assert ours[key].shape == value.shape, key
        assert np.abs(ours[key].numpy() - value).max() <= 1e-6, key


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_outputs_match_nvidia(reference, name):
    described, arrays = reference
    model = _ours(reference, name)
    worst = {}
    for run, spec in described[name]["runs"].items():
        model.synthesis.input.transform.copy_(torch.from_numpy(arrays[f"{name}__{run}__transform"]))
        ws, images = _run(model, arrays, name, run, spec["psi"], spec["cutoff"])
        ws_diff = np.abs(ws.numpy() - arrays[f"{name}__{run}__ws"]).max()
        image_diff = np.abs(images.numpy() - arrays[f"{name}__{run}__images"]).max()
        worst[run] = (float(ws_diff), float(image_diff))
        assert images.dtype == torch.float32 and images.shape == arrays[f"{name}__{run}__images"].shape
        assert ws_diff <= WS_ATOL and image_diff <= IMAGE_ATOL, (name, run, ws_diff, image_diff)
    print(f"{name}: largest |ours - NVIDIA| (ws, images) per run: {worst}")
    plain, moved = (arrays[f"{name}__{run}__images"] for run in ("plain", "transform0"))
    assert np.abs(plain - moved).max() > 1e-2  # the transform runs test something


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_per_sample_transform_equals_nvidias_buffer(reference, name):
    _, arrays = reference
    model = _ours(reference, name)
    for index, (degrees, tx, ty) in enumerate(TRANSFORMS):
        built = sg3.input_transform(degrees, tx, ty)
        assert built.shape == (1, 3, 3)
        assert np.abs(built[0].numpy() - arrays[f"{name}__transform{index}__transform"]).max() <= 1e-7
    per_sample = sg3.input_transform([t[0] for t in TRANSFORMS], [t[1] for t in TRANSFORMS],
                                     [t[2] for t in TRANSFORMS])
    _, images = _run(model, arrays, name, "plain", 1.0, None, transform=per_sample)
    assert not torch.equal(model.synthesis.input.transform, per_sample[0])  # the buffer stays the identity
    for index in range(len(TRANSFORMS)):
        expected = arrays[f"{name}__transform{index}__images"][index]
        assert np.abs(images[index].numpy() - expected).max() <= IMAGE_ATOL


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_persistent_module_carries_nvidias_class_and_arguments(reference, name):
    described, _ = reference
    model = _ours(reference, name)
    records = described[name]["records"]
    ours = {path: module for path, module in model.named_modules() if hasattr(type(module), "nvidia_class_name")}
    assert sorted(ours) == sorted(records)
    for path, record in records.items():
        module = ours[path]
        assert module.nvidia_class_name == record["class"], path
        assert json.loads(json.dumps(encode(list(module.init_args)))) == record["args"], path
        assert json.loads(json.dumps(encode(module.init_kwargs))) == record["kwargs"], path
    assert model.init_kwargs == described[name]["init_kwargs"]


def test_generator_attributes_are_nvidias(reference):
    model = _ours(reference, "T32c")
    assert (model.z_dim, model.c_dim, model.w_dim, model.img_resolution, model.img_channels) == (32, 4, 32, 32, 3)
    assert model.num_ws == model.mapping.num_ws == model.synthesis.num_ws == 16


def test_per_sample_psi_equals_one_psi_at_a_time(reference):
    _, arrays = reference
    model = _ours(reference, "T32c")
    z, c = torch.from_numpy(arrays["T32c__z"]), torch.from_numpy(arrays["T32c__c"])
    with torch.no_grad():
        both = model.mapping(z, c, truncation_psi=torch.tensor([0.5, 1.0]), truncation_cutoff=6)
        first = model.mapping(z, c, truncation_psi=0.5, truncation_cutoff=6)
        plain = model.mapping(z, c)
    assert torch.allclose(both[0], first[0], atol=1e-6) and torch.allclose(both[1], plain[1], atol=1e-6)
    assert torch.equal(both[:, 6:], plain[:, 6:])


def test_inference_never_updates_the_running_averages(reference):
    _, arrays = reference
    model = _ours(reference, "R16").train()
    before = {key: tensor.clone() for key, tensor in model.state_dict().items()}
    _run(model, arrays, "R16", "plain", 0.7, None)
    after = model.state_dict()
    assert all(torch.equal(before[key], after[key]) for key in before)


# ---------------------------------------------------------------- strict loading

def _state(name):
    model = sg3.Generator(**CONFIGS[name])
    seeded_state(model, seed=1)
    return {key: tensor.clone() for key, tensor in model.state_dict().items()}


def test_from_state_loads_and_renders_as_the_source():
    state = _state("T16")
    model = sg3.from_state(CONFIGS["T16"], state)
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert all(torch.equal(model.state_dict()[key], state[key]) for key in state)
    source = sg3.Generator(**CONFIGS["T16"]).eval()
    source.load_state_dict(state)
    z = torch.randn(2, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.equal(model(z, None), source(z, None))


def test_from_state_fills_nvidias_defaults():
    model = sg3.from_state({"z_dim": 8, "c_dim": 0, "w_dim": 8, "img_resolution": 16, "img_channels": 3},
                           sg3.random_generator(0, z_dim=8, w_dim=8, img_resolution=16).state_dict())
    assert model.synthesis.num_layers == 14 and model.synthesis.output_scale == 0.25
    assert model.synthesis.L0_36_512.conv_kernel == 3 and model.synthesis.L0_36_512.conv_clamp == 256


@pytest.mark.parametrize("change, named", [
    (lambda s: s.pop("synthesis.L3_36_32.affine.bias"), "missing synthesis.L3_36_32.affine.bias"),
    (lambda s: s.__setitem__("synthesis.L99.weight", torch.zeros(1)), "unexpected synthesis.L99.weight"),
    (lambda s: s.__setitem__("mapping.fc1.weight", torch.zeros(32, 31)), "wrong shape mapping.fc1.weight (32, 31)"),
    (lambda s: s.__setitem__("mapping.w_avg", [0.0] * 32), "non-tensors at mapping.w_avg"),
])
def test_from_state_refuses_keys_that_do_not_match(change, named):
    state = _state("T16")
    change(state)
    with pytest.raises(LatentWalkError) as error:
        sg3.from_state(CONFIGS["T16"], state, source="'cat.pkl'")
    assert named in str(error.value) and "'cat.pkl'" in str(error.value)


def test_from_state_names_at_most_five_keys():
    state = {key: value for key, value in _state("T16").items() if not key.endswith("magnitude_ema")}
    with pytest.raises(LatentWalkError, match=r"and 10 more"):
        sg3.from_state(CONFIGS["T16"], state)


def test_from_state_refuses_settings_it_cannot_build():
    with pytest.raises(LatentWalkError, match="network settings"):
        sg3.from_state({**CONFIGS["T16"], "noise_mode": "const"}, _state("T16"))
    with pytest.raises(LatentWalkError, match="network settings"):
        sg3.from_state({"c_dim": 0}, {})


# ---------------------------------------------------------------- transforms, determinism, precision

def test_input_transform_moves_the_content_as_documented():
    """translate_x of k pixels shifts the input features k pixels right; 90 degrees turns them
    counter-clockwise on screen (numpy's rot90 over (height, width))."""
    model = sg3.random_generator(2, z_dim=8, w_dim=8, img_resolution=16, channel_base=256, channel_max=8)
    layer = model.synthesis.input
    w = torch.randn(1, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        still = layer(w, transform=sg3.input_transform(0, 0, 0))
        moved = layer(w, transform=sg3.input_transform(0, 3 / layer.sampling_rate, 2 / layer.sampling_rate))
        turned = layer(w, transform=sg3.input_transform(90, 0, 0))
    assert torch.allclose(moved[..., 2:, 3:], still[..., :-2, :-3], atol=1e-4)
    assert torch.allclose(turned, torch.rot90(still, k=1, dims=(-2, -1)), atol=1e-4)
    assert torch.allclose(still, layer(w), atol=1e-6)


def test_random_generator_is_deterministic_and_leaves_the_global_rng_alone():
    kwargs = {"z_dim": 8, "w_dim": 8, "img_resolution": 16, "channel_base": 256, "channel_max": 8}
    state = torch.random.get_rng_state()
    first, again, other = (sg3.random_generator(seed, **kwargs) for seed in (4, 4, 5))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(first.state_dict()[key], again.state_dict()[key]) for key in first.state_dict())
    assert not torch.equal(first.synthesis.input.freqs, other.synthesis.input.freqs)
    z = torch.randn(2, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        images = first(z)
        assert torch.equal(images, first(z)) and torch.equal(images, again(z))
    assert images.shape == (2, 3, 16, 16) and torch.isfinite(images).all()


def test_a_half_model_still_computes_in_fp32_on_the_cpu(reference):
    _, arrays = reference
    model = _ours(reference, "T16")
    _, full = _run(model, arrays, "T16", "plain", 1.0, None)
    _, half = _run(model.half(), arrays, "T16", "plain", 1.0, None)
    assert half.dtype == torch.float32
    assert (half - full).abs().max() < 0.01 * full.abs().max()


# ---------------------------------------------------------------- the building blocks against plain definitions

def _upsample_by_definition(x, f, up, padding):
    """Zero insertion, padding (negative crops), valid convolution with f * up per axis."""
    n, c, h, w = x.shape
    stuffed = torch.zeros(n, c, h * up, w * up, dtype=x.dtype)
    stuffed[:, :, ::up, ::up] = x
    px0, px1, py0, py1 = padding
    stuffed = torch.nn.functional.pad(stuffed, [px0, px1, py0, py1])
    kernel = (torch.outer(f, f) if f.ndim == 1 else f) * up * up
    kernel = kernel.flip([0, 1])[None, None].repeat(c, 1, 1, 1)
    return torch.nn.functional.conv2d(stuffed, kernel, groups=c)


@pytest.mark.parametrize("up, taps, padding, radial", [
    (2, 12, (9, 8, 9, 8), False), (4, 24, (-6, -9, -6, -9), False), (2, 12, (-11, -12, -11, -12), False),
    (2, 12, (3, 14, -2, 5), False), (4, 24, (0, -3, 7, 1), True), (1, 1, (2, 1, 0, -1), False),
])
def test_upsampling_is_zero_insertion_padding_and_convolution(up, taps, padding, radial):
    rng = torch.Generator().manual_seed(taps + up)
    x = torch.randn(2, 3, 20, 18, generator=rng)
    f = sg3.design_lowpass_filter(taps, cutoff=2.0, width=3.0, fs=8 * up, radial=radial)
    f = torch.ones([1]) if f is None else f
    expected = _upsample_by_definition(x, f, up, padding)
    got = sg3._upsample(x, f, up, list(padding))
    assert got.shape == expected.shape and torch.allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("radial", [False, True])
def test_downsampling_is_convolution_then_every_other_pixel(radial):
    rng = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 31, 30, generator=rng)
    f = sg3.design_lowpass_filter(12, cutoff=3.0, width=2.0, fs=16, radial=radial)
    kernel = (torch.outer(f, f) if f.ndim == 1 else f).flip([0, 1])[None, None].repeat(3, 1, 1, 1)
    expected = torch.nn.functional.conv2d(x, kernel, groups=3)[:, :, ::2, ::2]
    got = sg3._downsample(x, f, 2)
    assert got.shape == expected.shape and torch.allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("demodulate", [True, False])
def test_grouped_and_batched_modulated_convolutions_agree(demodulate):
    rng = torch.Generator().manual_seed(2)
    x, weight = torch.randn(3, 6, 10, 10, generator=rng), torch.randn(5, 6, 3, 3, generator=rng)
    styles, gain = torch.randn(3, 6, generator=rng), torch.tensor(0.7)
    fused = sg3.modulated_conv2d(x, weight, styles, 2, demodulate, gain, fused=True)
    batched = sg3.modulated_conv2d(x, weight, styles, 2, demodulate, gain, fused=False)
    assert fused.shape == (3, 5, 12, 12) and torch.allclose(fused, batched, atol=1e-5)
    alone = sg3.modulated_conv2d(x[1:2], weight, styles[1:2], 2, demodulate, gain, fused=True)
    assert torch.allclose(alone[0], fused[1], atol=1e-5)  # a sample does not depend on the others
