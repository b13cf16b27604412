"""The latent walk in StyleGAN's terms: RenderPlan -> what moves each frame, independent of the model.

The bands move the latent as they move BigGAN's (walk/latents.py): *displacement* (energy pushes the
latent away from where the palette puts it, silence brings it back) or *travel* (energy is speed
along a walk that keeps going). The class curve becomes a palette: the seeds the artist picked
(NVIDIA's seeds, as ``gen_images.py --seeds`` takes them), blended by chroma or by the bands. The
onset kicks the latent along its own direction and can add per-layer noise (StyleGAN2); StyleGAN3's
input is rotated and translated by curves, its signature effect.

What is computed here is a pure function of the plan and does not depend on the model (its latent
size): the frame key covers exactly these numbers, and `compose_z` turns them into latents once
the model's size is known (generators/stylegan.py maps them through the network, in Z or in W).
"""

from dataclasses import dataclass

import numpy as np

from .latents import DISPLACEMENT_SCALE, PULSE_SCALE, TRAVEL_STEP, fold, palette_weights

Z_LIMIT = 3.0  # StyleGAN samples z from an untruncated normal: travel folds back at 3 standard deviations
LATENT_SPACES = ("w", "z")


@dataclass(frozen=True)
class StyleGANInputs:
    """Per-frame walk values; every array has the plan's n_frames rows.

    palette : (n, n_seeds) weights of the palette's seeds, rows sum to 1.
    band_offsets : (n, n_bands) how far along each band's direction (displacement: energy x weight;
        travel: the distance walked so far).
    kick : (n,) distance along the onset's direction.
    jitter : (n,) size of the frame's own random wobble.
    psi : (n,) truncation psi (1: as trained; towards 0: the average image).
    noise : (n,) StyleGAN2's per-layer noise, times its trained strength (1: as trained).
    transform : (n, 3) StyleGAN3's input rotation in degrees, translation x and y (image widths).
    frames : (n,) the Blender frame of each row: a frame's jitter is seeded by it, so where the plan
        starts does not change the frame.
    walk_seeds : (n,) int64, the walk's seed of each row (its directions and jitter); ``base_seed`` is the
        plan's Seed, which the key covers once: a row's own seed is in its bytes only where it differs.
    """

    palette: np.ndarray
    band_offsets: np.ndarray
    kick: np.ndarray
    jitter: np.ndarray
    psi: np.ndarray
    noise: np.ndarray
    transform: np.ndarray
    frames: np.ndarray
    walk_seeds: np.ndarray
    base_seed: int

    def frame_bytes(self, index):
        """What a frame key covers of frame ``index``'s inputs (float32 bytes; with jitter, its frame number;
        its walk seed where it is not the plan's)."""
        parts = (self.palette[index], self.band_offsets[index], self.kick[index:index + 1],
                 self.jitter[index:index + 1], self.psi[index:index + 1], self.noise[index:index + 1],
                 self.transform[index])
        found = b"".join(np.asarray(part, np.float32).tobytes() for part in parts)
        found += b"frame %d" % self.frames[index] if self.jitter[index] else b""
        return found + (b"seed %d" % self.walk_seeds[index] if self.walk_seeds[index] != self.base_seed else b"")


def palette_seeds(plan):
    """The palette's seeds (whole numbers, at least one)."""
    seeds = [int(seed) for seed in plan.settings.get("palette_seeds", [])]
    if not seeds:
        raise ValueError("the plan has no palette seeds: give StyleGAN at least one seed")
    return seeds


def latent_space(plan):
    space = plan.settings.get("latent_space", "w")
    if space not in LATENT_SPACES:
        raise ValueError(f"latent space {space!r} is not one of {', '.join(LATENT_SPACES)}")
    return space


def stylegan_inputs(plan):
    """`StyleGANInputs` of every frame of ``plan``."""
    energy = np.asarray(plan.bands, np.float64) * np.asarray(plan.band_weights, np.float64)  # (n_bands, n)
    frame_s = plan.fps_base / plan.fps
    if plan.settings.get("mode", "displacement") == "travel":  # folded back: in W nothing else bounds the walk
        offsets = fold(np.cumsum((energy * np.asarray(plan.speed, np.float64)[None, :]).T * (TRAVEL_STEP * frame_s),
                                 axis=0), Z_LIMIT)
    else:
        offsets = DISPLACEMENT_SCALE * energy.T
    onset = np.asarray(plan.onset, np.float64)
    transform = np.stack([np.asarray(getattr(plan, name), np.float64)
                          for name in ("rotation_deg", "translate_x", "translate_y")], axis=1)
    return StyleGANInputs(
        palette=palette_weights(plan, len(palette_seeds(plan))),
        band_offsets=offsets,
        kick=np.asarray(plan.pulse, np.float64) * onset * PULSE_SCALE,
        jitter=np.asarray(plan.jitter, np.float64),
        psi=np.clip(np.asarray(plan.truncation, np.float64), 0.0, 1.0),
        noise=np.maximum(np.asarray(plan.noise_strength, np.float64) + np.asarray(plan.noise_pulse, np.float64) * onset,
                         0.0),
        transform=transform,
        frames=plan.frame_start + np.arange(plan.n_frames),
        walk_seeds=plan.walk_seeds(),
        base_seed=int(plan.seed),
    )


def seed_latents(seeds, z_dim):
    """The z of each seed as NVIDIA's gen_images.py draws it (``RandomState(seed).randn(z_dim)``), so a seed
    an artist found there is the same image here. Shape (len(seeds), z_dim), float64."""
    return np.stack([np.random.RandomState(seed).randn(z_dim) for seed in seeds])


def walk_directions(seed, n_bands, z_dim):
    """(band directions (n_bands, z_dim), onset direction (z_dim,)), unit-variance normals seeded by the walk's
    seed (the Seed setting), as BigGAN's walk draws its own."""
    rng = np.random.default_rng([seed, 3])
    return rng.standard_normal((n_bands, z_dim)), rng.standard_normal(z_dim)


def jitter_direction(seed, frame, z_dim):
    """Blender frame ``frame``'s own wobble direction, shape (z_dim,)."""
    return np.random.default_rng([seed, 4, int(frame)]).standard_normal(z_dim)


def compose_z(inputs, seeds, indices, z_dim, travel):
    """Z-space latents of the frames ``indices``: the palette's seeds blended, then moved by the bands, the
    onset and the jitter along the directions of each frame's walk seed (travel folds the result back into
    [-3, 3], as BigGAN's travel does into [-2, 2]).

    Returns np.ndarray (len(indices), z_dim), float32.
    """
    palette = seed_latents(seeds, z_dim)
    n_bands = inputs.band_offsets.shape[1]
    directions_of = {int(seed): walk_directions(int(seed), n_bands, z_dim) for seed in set(inputs.walk_seeds[indices])}
    rows = []
    for index in indices:
        walk_seed = int(inputs.walk_seeds[index])
        directions, onset_direction = directions_of[walk_seed]
        z = inputs.palette[index] @ palette + inputs.band_offsets[index] @ directions
        z = z + inputs.kick[index] * onset_direction
        if inputs.jitter[index]:
            z = z + inputs.jitter[index] * jitter_direction(walk_seed, inputs.frames[index], z_dim)
        rows.append(fold(z, Z_LIMIT) if travel else z)
    return np.asarray(rows, np.float32)


MAX_SEEDS = 256
MAX_SEED = 2**32 - 1  # numpy's RandomState takes seeds up to this


def parse_seeds(text):
    """'0-11', '3,14,15,92' or '1-3,7' -> [seeds] in the order given (as NVIDIA's gen_images.py --seeds reads
    them): entry j of the palette is the j-th seed. Raises ValueError naming the part that is not one."""
    seeds = []
    for part in str(text).replace(" ", "").split(","):
        first, dash, last = part.partition("-")
        if not first.isdigit() or (dash and not last.isdigit()):
            raise ValueError(f"'{part}' in '{text}' is not a seed (a whole number) or a range A-B; e.g. 0-11 or "
                             "3,14,15,92")
        low, high = int(first), int(last) if dash else int(first)
        if high < low:
            raise ValueError(f"'{part}' in '{text}' ends before it starts")
        if high > MAX_SEED:
            raise ValueError(f"'{part}' in '{text}' is above the largest seed, {MAX_SEED}")
        if len(seeds) + high - low + 1 > MAX_SEEDS:
            raise ValueError(f"'{text}' names more than {MAX_SEEDS} seeds: give 1 to {MAX_SEEDS}")
        seeds.extend(range(low, high + 1))
    return seeds
