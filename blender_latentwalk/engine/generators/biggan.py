"""BigGAN: loading through pytorch-pretrained-biggan, and rendering frames fast.

Models are a pretrained name (``biggan-deep-128/256/512``, found in the
package's own cache), or a folder with ``config.json`` + ``pytorch_model.bin``;
both build the package's ``BigGAN`` from the config and load the weights with
``torch.load(weights_only=True)`` and a strict key check (`load_weights`). Nothing is downloaded unless asked, so an
offline machine fails in milliseconds with a message saying where to put files.

Rendering does no work whose result is thrown away: spectral norm is folded into
plain weights once (instead of on every forward), batch norm is one multiply-add,
and the last convolution keeps only the 3 RGB channels of its 128 (the model
computes all and slices). Frames are batched per truncation value.
"""

import glob
import hashlib
import json
import os
import re
import sys

from ..errors import GET_THE_RENDER_STACK, LatentWalkError
from .interface import Loaded

KNOWN_MODELS = ("biggan-deep-128", "biggan-deep-256", "biggan-deep-512")
WEIGHTS_NAME, CONFIG_NAME = "pytorch_model.bin", "config.json"

# The published architectures (as in each model's config.json); the benchmark
# builds these with random weights, whose compute is the real compute.
_DEEP_LAYERS = {
    128: [(False, 16, 16), (True, 16, 16), (False, 16, 16), (True, 16, 8), (False, 8, 8), (True, 8, 4),
          (False, 4, 4), (True, 4, 2), (False, 2, 2), (True, 2, 1)],
    256: [(False, 16, 16), (True, 16, 16), (False, 16, 16), (True, 16, 8), (False, 8, 8), (True, 8, 8),
          (False, 8, 4), (True, 4, 4), (False, 4, 2), (True, 2, 2), (False, 2, 1), (True, 1, 1)],
    512: [(False, 16, 16), (True, 16, 16), (False, 16, 16), (True, 16, 8), (False, 8, 8), (True, 8, 8),
          (False, 8, 4), (True, 4, 4), (False, 4, 2), (True, 2, 2), (False, 2, 1), (True, 1, 1),
          (False, 1, 1), (True, 1, 1)],
}


def architecture(resolution):
    """Config dict of biggan-deep-``resolution`` (128, 256 or 512)."""
    return {"output_dim": resolution, "z_dim": 128, "class_embed_dim": 128, "channel_width": 128,
            "num_classes": 1000, "layers": _DEEP_LAYERS[resolution], "attention_layer_position": 8,
            "eps": 1e-4, "n_stats": 51}


def tiny_architecture():
    """A 32x32 stand-in with the real layer types, a few channels wide."""
    return {"output_dim": 32, "z_dim": 128, "class_embed_dim": 128, "channel_width": 4, "num_classes": 1000,
            "layers": [(True, 16, 8), (True, 8, 4), (True, 4, 2), (False, 2, 1)],
            "attention_layer_position": 2, "eps": 1e-4, "n_stats": 51}


def _biggan_cache_dir():
    """pytorch-pretrained-biggan's cache folder: the package's own value once it is imported, else
    as the package sets it (PYTORCH_PRETRAINED_BIGGAN_CACHE, else ~/.pytorch_pretrained_biggan).
    Importing the package imports torch (seconds), which listing models does not need."""
    file_utils = sys.modules.get("pytorch_pretrained_biggan.file_utils")
    if file_utils is not None:
        return str(file_utils.PYTORCH_PRETRAINED_BIGGAN_CACHE)
    return os.getenv("PYTORCH_PRETRAINED_BIGGAN_CACHE",
                     os.path.join(os.path.expanduser("~"), ".pytorch_pretrained_biggan"))


def archive_urls(name):
    """(config URL, weights URL) of a published name, from the package's own URL maps: its module once
    imported, else its model.py read as data (no torch import)."""
    module = sys.modules.get("pytorch_pretrained_biggan.model")
    if module is None:
        import ast
        import importlib.util

        spec = importlib.util.find_spec("pytorch_pretrained_biggan")
        if spec is None:
            raise LatentWalkError(f"BigGAN needs pytorch-pretrained-biggan, which {sys.executable} does not have. "
                                  f"{GET_THE_RENDER_STACK}")
        tables = {}
        try:
            with open(os.path.join(spec.submodule_search_locations[0], "model.py"), encoding="utf-8") as stream:
                tree = ast.parse(stream.read())
            for node in tree.body:
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                    if node.targets[0].id in ("PRETRAINED_CONFIG_ARCHIVE_MAP", "PRETRAINED_MODEL_ARCHIVE_MAP"):
                        tables[node.targets[0].id] = ast.literal_eval(node.value)
        except (OSError, SyntaxError, ValueError, TypeError, IndexError):
            tables = {}
        if len(tables) == 2:
            return tables["PRETRAINED_CONFIG_ARCHIVE_MAP"][name], tables["PRETRAINED_MODEL_ARCHIVE_MAP"][name]
        from pytorch_pretrained_biggan import model as module  # another layout: import it after all
    return module.PRETRAINED_CONFIG_ARCHIVE_MAP[name], module.PRETRAINED_MODEL_ARCHIVE_MAP[name]


def _cached_file(url, cache_dir):
    """The package's cached copy of ``url`` (named sha256(url)[.sha256(etag)]), or None.

    Only those names: a download still in progress (``.incomplete``) or the metadata (``.json``) is not it."""
    stem = hashlib.sha256(url.encode("utf-8")).hexdigest()
    found = [p for p in glob.glob(os.path.join(cache_dir, stem + "*"))
             if re.fullmatch(stem + r"(\.[0-9a-f]{64})?", os.path.basename(p))]
    return max(found, key=os.path.getmtime) if found else None


def resolve(name_or_path):
    """(config.json path, pytorch_model.bin path) of ``name_or_path``.

    A known name resolves to pytorch-pretrained-biggan's own cache (no network);
    the files are read where they are (no links, no temporary folder).
    """
    if os.path.isdir(name_or_path):
        missing = [n for n in (CONFIG_NAME, WEIGHTS_NAME) if not os.path.isfile(os.path.join(name_or_path, n))]
        if missing:
            raise LatentWalkError(
                f"BigGAN folder '{name_or_path}' lacks {' and '.join(missing)}: it needs config.json and "
                "pytorch_model.bin (as written by pytorch-pretrained-biggan)."
            )
        return os.path.join(name_or_path, CONFIG_NAME), os.path.join(name_or_path, WEIGHTS_NAME)
    if name_or_path not in KNOWN_MODELS:
        raise LatentWalkError(
            f"BigGAN model '{name_or_path}' is neither a folder nor one of {', '.join(KNOWN_MODELS)}."
        )
    cache_dir = _biggan_cache_dir()
    config_url, weights_url = archive_urls(name_or_path)
    weights = _cached_file(weights_url, cache_dir)
    config = _cached_file(config_url, cache_dir)
    if weights is None or config is None:
        raise LatentWalkError(
            f"BigGAN '{name_or_path}' is not downloaded (looked in {cache_dir}). On a machine with network "
            f"access run: python -c \"from pytorch_pretrained_biggan import BigGAN; "
            f"BigGAN.from_pretrained('{name_or_path}')\" and copy that folder here, or put config.json and "
            "pytorch_model.bin in a folder and give the folder instead of the name."
        )
    return config, weights


def pick_device(preferred="auto"):
    """CUDA, then Apple MPS, then CPU (or the one asked for)."""
    import torch

    if preferred != "auto":
        return torch.device(preferred)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def load(name_or_path, device="auto", half=None):
    """Load BigGAN for inference; returns ``(model, device, dtype)``.

    ``half`` defaults to fp16 on a GPU and fp32 on the CPU.
    """
    import torch

    config_path, weights_path = resolve(name_or_path)
    model = load_weights(config_path, weights_path)
    device = pick_device(device)
    dtype = torch.float16 if (device.type != "cpu" if half is None else half) else torch.float32
    return prepare_for_inference(model).to(device=device, dtype=dtype), device, dtype


def load_weights(config_path, weights_path):
    """A ``BigGAN`` (pytorch-pretrained-biggan's class) built from ``config_path`` with the weights in
    ``weights_path``, read with ``torch.load(weights_only=True)`` (tensors only, no code) and checked
    strictly: a missing or unexpected key is an error that names it, not a half-loaded model."""
    import torch
    from pytorch_pretrained_biggan import BigGAN, BigGANConfig

    try:
        model = BigGAN(BigGANConfig.from_json_file(config_path))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise LatentWalkError(f"BigGAN config '{config_path}' could not be read ({error}).") from None
    try:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001  (pickle, zip and torch all raise their own kinds)
        raise LatentWalkError(f"BigGAN weights '{weights_path}' could not be loaded "
                              f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}).") from None
    if not isinstance(state, dict):
        raise LatentWalkError(f"BigGAN weights '{weights_path}' are not a state dict (found {type(state).__name__}).")
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        def listed(keys):
            return ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")

        parts = ([f"missing {listed(missing)}"] if missing else []) + (
            [f"unexpected {listed(unexpected)}"] if unexpected else [])
        raise LatentWalkError(f"BigGAN weights '{weights_path}' do not match '{config_path}': {'; '.join(parts)}. "
                              "Use the config.json saved with these weights.")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:  # right keys, wrong shapes
        raise LatentWalkError(f"BigGAN weights '{weights_path}' do not match '{config_path}' "
                              f"({str(error).splitlines()[-1].strip()}). Use the config.json saved with these weights.") from None
    return model


def statistics_index(truncation, n_stats):
    """(start, coef) into BigGAN's batch-norm statistics table for ``truncation``.

    The table holds ``n_stats`` rows for truncation 0, 1/(n_stats-1), ... 1. A value on
    that grid (as the walk gives) gets its own row exactly (coef 0): dividing by the
    float step instead (``modf(0.14 / 0.02)`` is 7.000000000000001) would land on the
    next row's statistics for 0.14, 0.28, 0.56 and 0.58. Off the grid it is the
    package's interpolation: coef weighs row ``start`` and 1 - coef row ``start + 1``.
    """
    import math

    position = truncation * (n_stats - 1)
    nearest = round(position)
    if abs(position - nearest) < 1e-6:
        return int(nearest), 0.0
    coef, start = math.modf(position)
    return int(start), coef


def _fused_batch_norm(self, x, truncation, condition_vector=None):
    """BigGANBatchNorm.forward as one multiply-add per element instead of four passes.

    (x - mean) / sqrt(var + eps) * weight + bias == x * scale + shift, with the
    per-channel scale and shift computed first; same statistics interpolation.
    """
    import torch

    start, coef = statistics_index(truncation, len(self.running_means))
    mean, var = self.running_means[start], self.running_vars[start]
    if coef != 0.0:
        mean = mean * coef + self.running_means[start + 1] * (1 - coef)
        var = var * coef + self.running_vars[start + 1] * (1 - coef)
    inverse_std = torch.rsqrt(var + self.eps)
    if self.conditional:
        weight = 1 + self.scale(condition_vector)
        bias = self.offset(condition_vector)
    else:
        weight, bias = self.weight.unsqueeze(0), self.bias.unsqueeze(0)
    scale = weight * inverse_std
    shift = bias - mean * scale
    return torch.addcmul(shift[:, :, None, None], x, scale[:, :, None, None])


def prepare_for_inference(model):
    """Fold spectral norm into plain weights, fuse batch norm, trim the RGB convolution.

    Output matches the model as loaded to float rounding (the same weights the
    eval-mode hook computes); each forward then skips the normalisation, does one
    pass per batch norm instead of four, computes 3 of the last conv's 128 channels,
    and keeps activations channels-last.
    """
    import types

    import torch
    from pytorch_pretrained_biggan.model import BigGANBatchNorm

    model.eval()
    with torch.no_grad():
        for module in list(model.modules()):
            if any(name.endswith("weight_orig") for name, _ in module.named_parameters(recurse=False)):
                torch.nn.utils.remove_spectral_norm(module)
        conv = model.generator.conv_to_rgb
        rgb = torch.nn.Conv2d(conv.in_channels, 3, conv.kernel_size, padding=conv.padding)
        rgb.weight.copy_(conv.weight[:3])
        rgb.bias.copy_(conv.bias[:3])
        model.generator.conv_to_rgb = rgb
    for module in model.modules():
        if isinstance(module, BigGANBatchNorm):
            module.forward = types.MethodType(_fused_batch_norm, module)
    # Channels-last convolutions are faster on CPUs (oneDNN) and on tensor cores.
    return model.to(memory_format=torch.channels_last)


def untrained_model(config_dict, seed=0):
    """A BigGAN with random weights and every buffer set as in a trained model.

    The package leaves the last batch norm's weight and bias uninitialised
    (``torch.Tensor(n)``), which can hold NaN; they get 1 and 0 here. Spectral
    norm's singular vectors start random (training converges them, and eval mode
    uses them as they are), so a power iteration converges them first.
    """
    import torch
    from pytorch_pretrained_biggan import BigGAN, BigGANConfig
    from pytorch_pretrained_biggan.model import BigGANBatchNorm

    torch.manual_seed(seed)
    model = BigGAN(BigGANConfig.from_dict(config_dict))
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, BigGANBatchNorm):
                module.running_means.normal_(0.0, 0.1)
                module.running_vars.uniform_(0.5, 1.5)
                if not module.conditional:
                    module.weight.fill_(1.0)
                    module.bias.zero_()
            if hasattr(module, "weight_orig"):
                matrix = module.weight_orig.reshape(module.weight_orig.shape[0], -1)
                u, v = module.weight_u, module.weight_v
                for _ in range(30):
                    v.copy_(torch.nn.functional.normalize(matrix.t() @ u, dim=0))
                    u.copy_(torch.nn.functional.normalize(matrix @ v, dim=0))
    return model.eval()


def save_untrained_model(folder, config, seed=0):
    """Write an untrained BigGAN of architecture ``config`` in the real on-disk format
    (config.json + pytorch_model.bin). Its images are noise; its compute is real."""
    import torch

    model = untrained_model(config, seed)
    os.makedirs(folder, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(folder, WEIGHTS_NAME))
    with open(os.path.join(folder, CONFIG_NAME), "w", encoding="utf-8") as stream:
        json.dump(config, stream, indent=1)
    with open(os.path.join(folder, "README.txt"), "w", encoding="utf-8") as stream:
        stream.write("UNTRAINED BigGAN stand-in for offline tests and benchmarks. Its images are noise.\n")
    return folder


def make_tiny_model(folder, seed=0):
    """Write an untrained tiny BigGAN (offline smoke tests)."""
    return save_untrained_model(folder, tiny_architecture(), seed)


def batches(truncation, plan_indices, batch_size):
    """Group frames into batches that share a truncation value.

    BigGAN's batch-norm statistics depend on the truncation, which the model takes
    as one number per call. Yields lists of frame indices, in order within each group.
    """
    groups = {}
    for index in plan_indices:
        groups.setdefault(float(truncation[index]), []).append(int(index))
    for value in sorted(groups):
        members = groups[value]
        for start in range(0, len(members), batch_size):
            yield value, members[start : start + batch_size]


def generate_images(model, device, dtype, z, classes, truncation, plan_indices, batch_size=16):
    """Run BigGAN over ``plan_indices``; yields ``(members, images)`` per model call, on the device.

    z : np.ndarray (n_frames, 128); classes : np.ndarray (n_frames, 1000);
    truncation : np.ndarray (n_frames,). members : the call's frame indices; images : torch tensor
    (len(members), 3, height, width), float32 holding the 8-bit pixel values 0..255 (whole numbers),
    left on the device so that the next step (resize, img2img) needs no trip to the CPU. Nothing
    here waits for the device: inputs go up from pinned memory, and the work is only queued.
    """
    import torch

    if device.type == "cuda":
        # cuDNN's autotuner picks kernels by timing, so two processes may pick differently
        # and a resumed render would differ in the last bits; its heuristics are deterministic.
        torch.backends.cudnn.benchmark = False
    with torch.inference_mode():
        for value, members in batches(truncation, plan_indices, batch_size):
            z_batch = _to_device(z[members], device).to(dtype)
            class_batch = _to_device(classes[members], device).to(dtype)
            images = model(z_batch, class_batch, value)
            yield members, ((images.float().clamp(-1, 1) + 1) * 127.5).round()


def _to_device(array, device):
    """np.ndarray -> tensor on ``device``; to a GPU from pinned memory, without waiting for its queue."""
    import numpy as np
    import torch

    tensor = torch.from_numpy(np.ascontiguousarray(array))
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def generate(model, device, dtype, z, classes, truncation, plan_indices, batch_size=16, on_batch=None):
    """Run BigGAN over ``plan_indices``; yields ``(frame_index, image)`` per frame, on the CPU.

    Arguments as `generate_images`. Images are uint8 arrays (height, width, 3).
    """
    from ..imaging.resize import to_pixels

    for members, images in generate_images(model, device, dtype, z, classes, truncation, plan_indices, batch_size):
        pixels = to_pixels(images).cpu().numpy()
        for index, image in zip(members, pixels):
            yield index, image
        if on_batch is not None:
            on_batch(len(members))


class BigGANGenerator:
    """BigGAN as the walk's generator (`interface.Generator`): the walk of walk/latents.py, frames batched
    per truncation value. A frame key covers its z, class vector and truncation, as before StyleGAN came."""

    family = "biggan"

    def __init__(self, model):
        self.model = model

    def inputs(self, plan):
        from ..walk import latents

        return latents.generator_inputs(plan)

    def key_settings(self, plan):
        return {}  # z, classes and truncation already hold the seed, the mode and the classes

    def frame_bytes(self, inputs, index):
        z, classes, truncation = inputs
        return z[index].tobytes() + classes[index].tobytes() + repr(float(truncation[index])).encode()

    def load(self, device="auto"):
        return Loaded(*load(self.model, device))

    def generate(self, loaded, inputs, plan, batch, needed):
        """(members, images) per model call for the truncation groups of ``batch`` holding a frame of
        ``needed``; every member of such a group is computed (the same shapes whichever are asked for)."""
        z, classes, truncation = inputs
        groups = {}
        for index in batch:
            groups.setdefault(float(truncation[index]), []).append(index)
        sources = [index for members in groups.values() if set(needed).intersection(members) for index in members]
        yield from generate_images(loaded.model, loaded.torch_device, loaded.dtype, z, classes, truncation, sources,
                                   len(batch))
