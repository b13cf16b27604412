"""What tests/engine/fixtures/stylegan3_reference.npz was made from, shared by the test and by the
one-off script that made it (this file, run by hand against a copy of NVIDIA's stylegan3 repository
outside the project; the project never imports NVIDIA's code):

    mkdir -p /tmp/sg3ref
    git -C <mirror of NVlabs/stylegan3> archive HEAD | tar -x -C /tmp/sg3ref   # made from c233a919a6fa
    sed -i 's/^from pkg_resources import parse_version/from packaging.version import parse as parse_version/' \
        /tmp/sg3ref/torch_utils/ops/conv2d_gradfix.py /tmp/sg3ref/torch_utils/ops/grid_sample_gradfix.py
    .venv/bin/python tests/engine/stylegan3_reference_setup.py /tmp/sg3ref tests/engine/fixtures/stylegan3_reference.npz

(The sed is the one change NVIDIA's code needed here: setuptools' pkg_resources is not installed. On
the CPU NVIDIA's filtered_lrelu, upfirdn2d and bias_act take their pure-PyTorch reference paths.)

`seeded_state` gives both networks the same deterministic weights (not NVIDIA's initialisation, which
draws from the global RNG in construction order); `CONFIGS` are the tiny networks and the runs.
The fixture holds numbers only: inputs, NVIDIA's state_dict keys, filters, constructor arguments and
fp32 outputs.
"""

import json
import sys

import numpy as np
import torch

# Tiny configs T and R (R as NVIDIA's train.py makes it: 1x1 convs, radial filters, channels doubled),
# at two resolutions; the kwargs are what NVIDIA's training gives Generator(...).
_T = {"z_dim": 32, "w_dim": 32, "mapping_kwargs": {"num_layers": 2}, "channel_base": 512, "channel_max": 32,
      "magnitude_ema_beta": 0.5 ** (32 / (20 * 1e3)), "img_channels": 3}
_R = {**_T, "channel_base": 1024, "channel_max": 64, "conv_kernel": 1, "use_radial_filters": True}
CONFIGS = {
    "T16": {**_T, "c_dim": 0, "img_resolution": 16},
    "T32c": {**_T, "c_dim": 4, "img_resolution": 32, "num_fp16_res": 4, "conv_clamp": 256},
    "R16": {**_R, "c_dim": 0, "img_resolution": 16, "num_fp16_res": 0, "conv_clamp": None},
    "R32": {**_R, "c_dim": 0, "img_resolution": 32},
}
BATCH = 2
# (rotation in degrees, translate x, translate y) per sample, as gen_images.py's --rotate / --translate.
TRANSFORMS = ((25.0, 0.3, -0.2), (-140.0, -0.05, 0.45))


def runs(name, num_ws):
    """The runs of one config: {run name: (truncation_psi, truncation_cutoff, transform index or None)}.
    One truncation with a cutoff, one without, and each sample's transform set as the buffer."""
    trunc = (0.7, num_ws // 2) if name.startswith("T") else (0.6, None)
    return {"plain": (1.0, None, None), "trunc": (*trunc, None), "transform0": (1.0, None, 0),
            "transform1": (1.0, None, 1)}


def seeded_state(model, seed):
    """Overwrite every parameter and float buffer of ``model`` (ours or NVIDIA's Generator) except the
    designed filters and ``transform``, in sorted key order, from ``torch.Generator().manual_seed(seed)``.

    Scales keep activations moderate: normal weights and biases (biases x 0.2), magnitude_ema uniform in
    [0.5, 1.5), w_avg normal, and freqs / phases drawn as NVIDIA's SynthesisInput draws them (a disc of
    radius ``bandwidth``; uniform phases in [-0.5, 0.5)). Returns the sum of |values| written (float64),
    a checksum that notices a change in torch's generator.
    """
    rng = torch.Generator().manual_seed(seed)
    state = model.state_dict()
    checksum = 0.0
    with torch.no_grad():
        for key in sorted(state):
            tensor = state[key]
            if key.endswith(("up_filter", "down_filter", "input.transform")) or not tensor.is_floating_point():
                continue
            shape = tensor.shape
            if key.endswith("magnitude_ema"):
                value = torch.rand(shape, generator=rng) + 0.5
            elif key.endswith("input.freqs"):
                freqs = torch.randn(shape, generator=rng)
                radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
                value = freqs / (radii * radii.square().exp().pow(0.25)) * float(model.synthesis.input.bandwidth)
            elif key.endswith("input.phases"):
                value = torch.rand(shape, generator=rng) - 0.5
            elif key.endswith("bias"):
                value = torch.randn(shape, generator=rng) * 0.2
            else:
                value = torch.randn(shape, generator=rng)
            tensor.copy_(value)
            checksum += float(value.double().abs().sum())
    return checksum


def encode(value):
    """A constructor argument as JSON with its exact Python type: ["float64", 2.0], ["bool_", true], ...
    so that numpy scalars (NVIDIA passes cutoffs as numpy.float64, use_fp16 as numpy.bool_) are checked."""
    if isinstance(value, dict):
        return ["dict", {str(k): encode(v) for k, v in value.items()}]
    if isinstance(value, (list, tuple)):
        return [type(value).__name__, [encode(v) for v in value]]
    if isinstance(value, np.generic):
        return [type(value).__name__, value.item()]
    if value is None or isinstance(value, (bool, int, float, str)):
        return [type(value).__name__, value]
    raise TypeError(f"cannot encode {type(value).__name__}")


def inputs(config, seed=0):
    """z (BATCH, z_dim) and c (BATCH, c_dim: one-hot, or empty) as float32 numpy arrays."""
    rnd = np.random.RandomState(seed)
    z = rnd.randn(BATCH, config["z_dim"]).astype(np.float32)
    c = np.zeros([BATCH, config["c_dim"]], dtype=np.float32)
    if config["c_dim"]:
        c[np.arange(BATCH), rnd.randint(config["c_dim"], size=BATCH)] = 1
    return z, c


# ---------------------------------------------------------------- making the fixture (by hand, with NVIDIA's code)

def _nvidia_records(model):
    """{module path: {"class", "args", "kwargs"}} for each of NVIDIA's persistent modules."""
    from torch_utils import persistence

    return {path: {"class": type(module).__name__, "args": encode(list(module.init_args)),
                   "kwargs": encode(dict(module._init_kwargs))}
            for path, module in model.named_modules() if persistence.is_persistent(module)}


def _make_config(name, config, make_transform, out):
    from training.networks_stylegan3 import Generator

    model = Generator(**config).eval()
    checksum = seeded_state(model, seed=sum(map(ord, name)))
    out[f"{name}__state_keys"] = np.array(list(model.state_dict()))
    for key, tensor in model.state_dict().items():
        if key.endswith(("up_filter", "down_filter")):
            out[f"{name}__filter__{key}"] = tensor.numpy()
    z, c = inputs(config, seed=len(name))
    out[f"{name}__z"], out[f"{name}__c"] = z, c
    described = {}
    for run, (psi, cutoff, transform) in runs(name, model.num_ws).items():
        matrix = np.eye(3) if transform is None else np.linalg.inv(make_transform(TRANSFORMS[transform][1:],
                                                                                  TRANSFORMS[transform][0]))
        model.synthesis.input.transform.copy_(torch.from_numpy(matrix))
        with torch.no_grad():
            ws = model.mapping(torch.from_numpy(z), torch.from_numpy(c), truncation_psi=psi, truncation_cutoff=cutoff)
            images = model.synthesis(ws)
        out[f"{name}__{run}__ws"], out[f"{name}__{run}__images"] = ws.numpy(), images.numpy()
        out[f"{name}__{run}__transform"] = model.synthesis.input.transform.numpy().copy()
        described[run] = {"psi": psi, "cutoff": cutoff, "transform": transform}
        print(f"{name} {run}: |image| max {float(images.abs().max()):.3f} std {float(images.std()):.3f}")
    return {"init_kwargs": config, "runs": described, "checksum": checksum, "records": _nvidia_records(model)}


def make_fixture(nvidia_root, path):
    """Run NVIDIA's networks_stylegan3 (CPU: its reference ops) on every config and save the npz."""
    sys.path.insert(0, nvidia_root)
    from gen_images import make_transform

    out, described = {}, {}
    for name, config in CONFIGS.items():
        described[name] = _make_config(name, config, make_transform, out)
    out["configs_json"] = np.array(json.dumps(described))
    np.savez_compressed(path, **out)


if __name__ == "__main__":
    make_fixture(sys.argv[1], sys.argv[2])
