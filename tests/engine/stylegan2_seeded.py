"""Deterministic StyleGAN2 weights that come from no network's code: `seeded_state` fills a state dict's
shapes from a seeded torch.Generator. The fixtures in tests/engine/fixtures/stylegan2_*reference.npz were
made by loading these weights into NVIDIA's and rosinality's own networks (outside this project), so our
networks, loading the same numbers, must give the same images. Imports torch only."""

import torch

# Filters every side computes identically from its constructor's taps: never replaced.
KEPT_SUFFIXES = ("resample_filter", ".kernel")


def seeded_state(state_dict_shapes, seed, scale=0.5, lr_scaled_prefixes=("mapping.fc", "style.")):
    """{name: float32 tensor} for every name in ``state_dict_shapes`` ({name: tensor or shape}), in sorted
    name order, each ``randn * scale`` drawn from ``torch.Generator().manual_seed(seed)``; names ending in
    a filter suffix (`KEPT_SUFFIXES`) are left out, so the caller keeps the constructor's.

    Names under ``lr_scaled_prefixes`` (the mapping layers, trained with learning-rate multiplier 0.01)
    get ``/ 0.01`` as their initialisation has, so that z moves w visibly.
    """
    draw = torch.Generator().manual_seed(seed)
    filled = {}
    for name in sorted(state_dict_shapes):
        if name.endswith(KEPT_SUFFIXES):
            continue
        value = state_dict_shapes[name]
        shape = tuple(value.shape) if isinstance(value, torch.Tensor) else tuple(value)
        tensor = torch.randn(shape, generator=draw, dtype=torch.float32) * scale
        if name.startswith(lr_scaled_prefixes) and not name.endswith("latent_avg"):
            tensor = tensor / 0.01
        filled[name] = tensor
    return filled


def checksum(state):
    """Sum of absolute values of every tensor in ``state``, in float64: says whether torch's seeded
    normal draws changed (a newer torch), which would make the fixtures' weights differ."""
    return float(sum(tensor.double().abs().sum() for tensor in state.values()))
