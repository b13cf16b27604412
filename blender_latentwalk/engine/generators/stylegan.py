"""StyleGAN2 and StyleGAN3 as the walk's generator: the model files artists bring, rendered by our own networks.

A model is a file: NVIDIA's StyleGAN2-ADA / StyleGAN3 ``.pkl`` (read as data by `stylegan_files`, never
run) or a rosinality-format ``.pt`` / ``.pth`` checkpoint. The networks are ours
(`stylegan2_network`, `stylegan3_network`) and load the file's weights with a strict key check.

Per frame the walk gives (walk/stylegan_inputs.py) a palette mix, band offsets, an onset kick, a
jitter, psi, a noise strength and an input transform; here they become latents once the model's
size is known:

- in **Z**, the seeds' z are blended and moved, then mapped with the frame's psi;
- in **W** (the default), the seeds are mapped first and blended there (a blend in W is a blend of
  styles, where a blend in Z passes through other images), and each direction is the mapped
  direction minus the average W; psi then pulls towards the average W.

Every frame of an aligned batch is computed in one call, whichever of them are wanted, so a resume or
a chunk gives the bytes of one whole render.
"""

import os

import numpy as np

from ..errors import LatentWalkError
from ..walk import stylegan_inputs as walk_inputs
from . import stylegan_files
from .interface import Loaded

FILE_SUFFIXES = (".pkl", ".pt", ".pth")


def is_model_file(model):
    """Whether ``model`` names a StyleGAN model file (by its suffix; BigGAN is a name or a folder)."""
    return bool(model) and model.lower().endswith(FILE_SUFFIXES) and not os.path.isdir(model)


def load_network(path):
    """(our Generator module in eval mode, "StyleGAN2" or "StyleGAN3") of the model file ``path``.

    Raises `LatentWalkError` naming the file: missing, unreadable, refused (`UnsafePickleError`: nothing
    in it ran), or weights that do not fit the network the file describes.
    """
    if not os.path.isfile(path):
        raise LatentWalkError(f"StyleGAN model file '{path}' does not exist: pick the .pkl or .pt file again "
                              "(Latent Walk > Walk > Generator).")
    if path.lower().endswith(".pkl"):
        records = stylegan_files.load_records(path)
        record = records.get("G_ema") or records.get("G")
        if record is None:
            raise LatentWalkError(f"'{path}' holds no generator (G_ema or G), only {', '.join(records)}: it is not "
                                  "a generator pickle.")
        if record.class_name != "Generator":
            raise LatentWalkError(f"'{path}' holds a {record.class_name} as its generator, not NVIDIA's Generator.")
        synthesis = record.children.get("synthesis")
        third = isinstance(synthesis, stylegan_files.PersistentRecord) and "input" in synthesis.children
        if third:
            from . import stylegan3_network as network
        else:
            from . import stylegan2_network as network
        try:
            return network.from_state(record.init_kwargs, record.state_dict()), "StyleGAN3" if third else "StyleGAN2"
        except LatentWalkError as error:
            raise LatentWalkError(f"'{path}': {error}") from None
    from . import stylegan2_network

    state = stylegan_files.load_rosinality(path)
    latent_avg = state.pop("latent_avg", None)
    try:
        return stylegan2_network.from_rosinality(state, latent_avg), "StyleGAN2"
    except LatentWalkError as error:
        raise LatentWalkError(f"'{path}': {error}") from None


def to_frames(images):
    """Network output (n, channels, height, width), about [-1, 1] -> float32 (n, 3, height, width) holding
    8-bit values (whole numbers 0..255); a grey model's one channel is repeated, an alpha channel dropped."""
    images = images.float()
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    return ((images[:, :3].clamp(-1, 1) + 1) * 127.5).round()


class StyleGANGenerator:
    """A StyleGAN2 / StyleGAN3 model file as the walk's generator (an `interface.Generator`)."""

    family = "stylegan"

    def __init__(self, model):
        self.model = model
        self._mapped_once = (None, None, None)  # (what was mapped, palette W, {walk seed: direction W}): _styles

    def inputs(self, plan):
        """The walk's values; those the model has no use for are set to their neutral values (StyleGAN3 has no
        per-layer noise, StyleGAN2 no input transform), so changing them re-renders nothing."""
        import dataclasses

        inputs = walk_inputs.stylegan_inputs(plan)
        kind = stylegan_files.peek_kind(self.model)
        if kind == "StyleGAN3":
            inputs = dataclasses.replace(inputs, noise=np.ones_like(inputs.noise))
        elif kind == "StyleGAN2":
            inputs = dataclasses.replace(inputs, transform=np.zeros_like(inputs.transform))
        return inputs

    def key_settings(self, plan):
        """What decides the pixels beside the per-frame inputs: the seeds, the walk's seed, the space, the mode."""
        return {"palette_seeds": walk_inputs.palette_seeds(plan), "walk_seed": int(plan.seed),
                "latent_space": walk_inputs.latent_space(plan), "mode": plan.settings.get("mode", "displacement"),
                "classes": [int(c) for c in plan.settings.get("classes", [])], "n_bands": len(plan.band_names)}

    def frame_bytes(self, inputs, index):
        return inputs.frame_bytes(index)

    def load(self, device="auto"):
        import torch

        from .biggan import pick_device

        network, _kind = load_network(self.model)
        torch_device = pick_device(device)
        # fp32 on every device: StyleGAN's fp16 layers need NVIDIA's per-resolution clamping to stay finite,
        # and the frames must not depend on a precision choice the artist never made.
        dtype = torch.float32
        return Loaded(network.to(device=torch_device, dtype=dtype).eval(), torch_device, dtype)

    def generate(self, loaded, inputs, plan, batch, needed):
        """Yields one (members, images) for the whole aligned ``batch`` when any of ``needed`` is in it.

        images : (len(batch), 3, height, width) float32 on the device holding 8-bit values.
        """
        import torch

        if not set(needed).intersection(batch):
            return
        members = list(batch)
        with torch.inference_mode():
            ws = self._styles(loaded, inputs, plan, members)
            network = loaded.model
            if hasattr(network.synthesis, "input"):  # StyleGAN3: the input transform per frame
                from .stylegan3_network import input_transform

                values = torch.from_numpy(inputs.transform[members].astype(np.float32))
                transform = input_transform(values[:, 0], values[:, 1], values[:, 2]).to(loaded.torch_device)
                images = network.synthesis(ws, transform=transform, force_fp32=True)  # as load() says
            else:
                scale = torch.from_numpy(inputs.noise[members].astype(np.float32)).to(loaded.torch_device)
                images = network.synthesis(ws, noise_mode="const", noise_scale=scale)
            yield members, to_frames(images)

    def _styles(self, loaded, inputs, plan, members):
        """ws (len(members), num_ws, w_dim) of the frames ``members`` (see the module's docstring)."""
        import torch

        network, torch_device = loaded.model, loaded.torch_device
        seeds = walk_inputs.palette_seeds(plan)
        z_dim, travel = network.z_dim, plan.settings.get("mode", "displacement") == "travel"
        psi = torch.from_numpy(inputs.psi[members].astype(np.float32)).to(torch_device)
        entry_classes = self._entry_classes(network, plan, len(seeds), torch_device)
        if walk_inputs.latent_space(plan) == "z":
            z = walk_inputs.compose_z(inputs, seeds, members, z_dim, travel)
            classes = None
            if entry_classes is not None:  # the frame's palette mix, as a mix of the entries' classes
                classes = torch.from_numpy(inputs.palette[members].astype(np.float32)).to(torch_device) @ entry_classes
            return network.mapping(torch.from_numpy(z).to(torch_device), classes, truncation_psi=psi)

        def mapped(z_rows, c):  # W of each row of z, untruncated: (rows, w_dim)
            z_tensor = torch.from_numpy(np.asarray(z_rows, np.float32)).to(torch_device)
            return network.mapping(z_tensor, c)[:, 0]

        def first_class(rows):  # directions move within the first entry's class (conditional models)
            return None if entry_classes is None else entry_classes[:1].expand(rows, -1)

        w_avg = network.mapping.w_avg.to(torch_device, torch.float32)
        # The palette and each walk seed's directions, mapped once a render (one call each, whatever frames).
        key = (id(network), tuple(seeds), inputs.band_offsets.shape[1], tuple(plan.settings.get("classes", [])))
        if self._mapped_once[0] != key:
            self._mapped_once = (key, mapped(walk_inputs.seed_latents(seeds, z_dim), entry_classes), {})
        palette_w, direction_ws = self._mapped_once[1], self._mapped_once[2]
        member_seeds = inputs.walk_seeds[members]
        for walk_seed in sorted({int(seed) for seed in member_seeds} - set(direction_ws)):
            directions, onset_direction = walk_inputs.walk_directions(walk_seed, inputs.band_offsets.shape[1], z_dim)
            moves = np.concatenate([directions, onset_direction[None]])
            direction_ws[walk_seed] = mapped(moves, first_class(len(moves))) - w_avg
        weights = torch.from_numpy(np.concatenate(
            [inputs.palette[members], inputs.band_offsets[members], inputs.kick[members, None]], axis=1
        ).astype(np.float32)).to(torch_device)
        # Each frame along its own seed's directions: the whole batch's product per seed, then each frame's row
        # (a product of fewer rows may round differently: a frame's numbers stay those of a one-seed batch).
        w = None
        for walk_seed in sorted({int(seed) for seed in member_seeds}):
            product = weights @ torch.cat([palette_w, direction_ws[walk_seed]])
            rows = torch.from_numpy(member_seeds == walk_seed).to(torch_device)[:, None]
            w = product if w is None else torch.where(rows, product, w)
        if np.any(inputs.jitter[members]):
            jitter = np.stack([walk_inputs.jitter_direction(int(inputs.walk_seeds[index]), inputs.frames[index], z_dim)
                               for index in members])
            size = torch.from_numpy(inputs.jitter[members].astype(np.float32)).to(torch_device)[:, None]
            w = w + size * (mapped(jitter, first_class(len(members))) - w_avg)
        w = w_avg + psi[:, None] * (w - w_avg)
        return w[:, None, :].expand(-1, network.mapping.num_ws, -1)

    @staticmethod
    def _entry_classes(network, plan, n_entries, torch_device):
        """A conditional model's class of each palette entry, one-hot (n_entries, c_dim): entry k is class
        classes[k % len(classes)] % c_dim of the plan's class list. None for an unconditional model."""
        import torch

        if not network.c_dim:
            return None
        classes = [int(c) for c in plan.settings.get("classes", [])] or [0]
        vectors = np.zeros((n_entries, network.c_dim), np.float32)
        for entry in range(n_entries):
            vectors[entry, classes[entry % len(classes)] % network.c_dim] = 1.0
        return torch.from_numpy(vectors).to(torch_device)


# Tiny stand-ins (engine `make-tiny-models`): real file formats, untrained weights, noise images.

TINY_RESOLUTION = 32
TINY_STYLEGAN2 = {"z_dim": 32, "c_dim": 0, "w_dim": 32, "img_resolution": TINY_RESOLUTION, "img_channels": 3,
                  "mapping_kwargs": {"num_layers": 2}, "channel_base": 512, "channel_max": 32, "num_fp16_res": 0,
                  "conv_clamp": 256}
TINY_NAMES = {"stylegan2": "stylegan2-tiny-UNTRAINED.pkl", "stylegan3-t": "stylegan3-t-tiny-UNTRAINED.pkl",
              "stylegan3-r": "stylegan3-r-tiny-UNTRAINED.pkl", "rosinality": "stylegan2-rosinality-tiny-UNTRAINED.pt"}


def tiny_stylegan3_kwargs(config):
    """Init kwargs of a tiny StyleGAN3 of ``config`` "t" or "r" (R: 1x1 convolutions, radial filters and
    twice the channels, as NVIDIA's train.py makes config R)."""
    kwargs = {"z_dim": 32, "c_dim": 0, "w_dim": 32, "img_resolution": TINY_RESOLUTION, "img_channels": 3,
              "mapping_kwargs": {"num_layers": 2}, "channel_base": 1024, "channel_max": 32, "num_fp16_res": 0,
              "magnitude_ema_beta": 0.5 ** (32 / (20 * 1e3))}
    if config == "r":
        kwargs.update(channel_base=2048, channel_max=64, conv_kernel=1, use_radial_filters=True)
    return kwargs


def make_tiny_models(folder, seed=0):
    """Write the tiny StyleGAN stand-ins into ``folder``: StyleGAN2, StyleGAN3-T and -R ``.pkl`` files in
    NVIDIA's pickle layout, and a rosinality ``.pt``. Returns {kind: path}."""
    import torch

    from . import stylegan2_network, stylegan3_network

    os.makedirs(folder, exist_ok=True)
    paths = {kind: os.path.join(folder, name) for kind, name in TINY_NAMES.items()}
    network = stylegan2_network.random_generator(seed, **TINY_STYLEGAN2)
    with torch.no_grad():  # NVIDIA starts every layer's noise strength at 0; training makes it felt
        for name, parameter in network.named_parameters():
            if name.endswith("noise_strength"):
                parameter.fill_(0.5)
    # Protocol 3, as StyleGAN2-ADA's Python 3.7 wrote its pickles (StyleGAN3's below: 4, as Python 3.8+).
    stylegan_files.write_pickle(paths["stylegan2"], network, TINY_RESOLUTION, protocol=3)
    for config in ("t", "r"):
        network = stylegan3_network.random_generator(seed, **tiny_stylegan3_kwargs(config))
        stylegan_files.write_pickle(paths[f"stylegan3-{config}"], network, TINY_RESOLUTION)
    write_tiny_rosinality(paths["rosinality"], seed)
    return paths


def tiny_rosinality_state(seed=0, size=TINY_RESOLUTION, style_dim=32, n_mlp=2, channels=32):
    """{name: tensor} laid out as rosinality's stylegan2-pytorch ``Generator`` saves ``g_ema`` (every resolution
    ``channels`` wide), with seeded random weights as its constructor draws them (normal weights and inputs,
    modulation biases 1, the rest 0) and its [1, 3, 3, 1] resampling kernels (times 4, as it scales them)."""
    import math

    import torch

    draw = torch.Generator().manual_seed(seed)

    def normal(*shape):
        return torch.randn(shape, generator=draw)

    kernel = torch.tensor([1.0, 3.0, 3.0, 1.0])
    kernel = torch.outer(kernel, kernel) / torch.outer(kernel, kernel).sum() * 4

    def modulated(prefix, out_channels, kernel_size, up=False):
        found = {f"{prefix}.conv.weight": normal(1, out_channels, channels, kernel_size, kernel_size),
                 f"{prefix}.conv.modulation.weight": normal(channels, style_dim),
                 f"{prefix}.conv.modulation.bias": torch.ones(channels)}
        if up:
            found[f"{prefix}.conv.blur.kernel"] = kernel.clone()
        return found

    state = {}
    for layer in range(1, n_mlp + 1):
        # As its EqualLinear starts them: divided by the mapping's learning-rate multiplier, 0.01.
        state[f"style.{layer}.weight"] = normal(style_dim, style_dim) / 0.01
        state[f"style.{layer}.bias"] = torch.zeros(style_dim)
    state["input.input"] = normal(1, channels, 4, 4)

    def styled(prefix, up):
        state.update(modulated(prefix, channels, 3, up))
        state[f"{prefix}.noise.weight"], state[f"{prefix}.activate.bias"] = torch.zeros(1), torch.zeros(channels)

    def to_rgb(prefix, up):
        state.update(modulated(prefix, 3, 1))
        state[f"{prefix}.conv.weight"] *= 0.2  # untrained but not saturated: the latent still shows
        state[f"{prefix}.bias"] = torch.zeros(1, 3, 1, 1)
        if up:
            state[f"{prefix}.upsample.kernel"] = kernel.clone()

    styled("conv1", False)
    to_rgb("to_rgb1", False)
    log_size = int(math.log2(size))
    for level in range(log_size - 2):
        styled(f"convs.{2 * level}", True)
        styled(f"convs.{2 * level + 1}", False)
        to_rgb(f"to_rgbs.{level}", True)
    for index in range((log_size - 2) * 2 + 1):
        resolution = 2 ** ((index + 5) // 2)
        state[f"noises.noise_{index}"] = normal(1, 1, resolution, resolution)
    return state


def write_tiny_rosinality(path, seed=0):
    """A tiny rosinality-format checkpoint: {"g_ema", "latent_avg", "args"} as its train.py saves them."""
    import argparse

    import torch

    from . import stylegan2_network

    state = tiny_rosinality_state(seed)
    latent_avg = stylegan2_network.from_rosinality(dict(state)).mapping.w_avg.clone()
    args = argparse.Namespace(size=TINY_RESOLUTION, latent=32, n_mlp=2, channel_multiplier=2)
    from .. import atomic

    atomic.write_via(path, lambda stream: torch.save({"g_ema": state, "latent_avg": latent_avg, "args": args}, stream))
    return path
