"""The latent walk: RenderPlan -> BigGAN inputs per frame (StyleGAN's: walk/stylegan_inputs.py).

Noise vector: a seeded resting point plus one seeded direction per band,
weighted by the band's curve (a weighted sum of random vectors per band):

- *displacement*: energy pushes the image away from the resting point, silence
  brings it back (z = rest + sum_b energy_b * direction_b);
- *travel*: energy is speed along a walk that keeps going (the offsets are
  summed over frames), folded back into the truncation range like a ball
  bouncing between walls, as in deep-music-visualizer.

Onset adds a kick along its own direction; jitter adds seeded per-frame noise.
Class vector: chroma (12 pitch classes -> 12 ImageNet classes) or a class list
weighted by the bands, smoothed in milliseconds and normalised to sum 1.

Everything is a pure function of the plan: the same plan gives the same values.
"""

import math

import numpy as np

Z_DIM = 128
N_CLASSES = 1000
Z_LIMIT = 2.0  # BigGAN samples z from a normal truncated to [-2, 2]
DISPLACEMENT_SCALE = 1.0  # how far full energy moves z (per band, along a unit-variance direction)
TRAVEL_STEP = 0.25  # distance per second at full energy and speed 1
PULSE_SCALE = 0.8


def fold(values, limit=Z_LIMIT):
    """Reflect values into [-limit, limit] (a triangle wave: a bounce off each wall).

    Continuous, and |slope| is 1 everywhere, so a step keeps its length.
    """
    period = 4.0 * limit
    shifted = np.mod(np.asarray(values) + limit, period)
    return np.where(shifted <= 2 * limit, shifted - limit, 3 * limit - shifted)


TRUNCATION_STEP = 0.02  # BigGAN tabulates batch-norm statistics every 0.02 (51 values in 0..1)


def truncations(plan):
    """Per-frame truncation snapped to BigGAN's statistics grid, shape (n_frames,).

    Exact statistics (no interpolation), and frames that share a value share a batch.
    """
    steps = np.round(np.asarray(plan.truncation, np.float64) / TRUNCATION_STEP)
    return np.clip(steps, 1, round(1 / TRUNCATION_STEP)) * TRUNCATION_STEP


def _directions(seed, n_bands):
    rng = np.random.default_rng([seed, 1])
    rest = np.clip(rng.standard_normal(Z_DIM), -Z_LIMIT, Z_LIMIT)
    band_directions = rng.standard_normal((n_bands, Z_DIM))
    pulse_direction = rng.standard_normal(Z_DIM)
    return rest, band_directions, pulse_direction


def _per_frame(seeds, for_seed):
    """Rows of ``for_seed(seed)`` (an (n_frames, ...) array computed for every frame as if the whole plan had that
    seed), each frame taking the row of its own seed. Computing whole arrays, then picking, keeps a frame's
    numbers exactly those of a plan with one seed (a matrix product of fewer rows may round differently)."""
    unique = np.unique(seeds)
    out = for_seed(int(unique[0]))
    for seed in unique[1:]:
        rows = seeds == seed
        out[rows] = for_seed(int(seed))[rows]
    return out


def noise_vectors(plan):
    """BigGAN noise vectors, already scaled by the truncation.

    Each frame's resting point and directions are those of its walk seed (``plan.walk_seeds()``: the Seed, or its
    section look's seed); travel sums each frame's step along its own seed's directions.
    Returns np.ndarray, shape (n_frames, 128), float32.
    """
    seeds = plan.walk_seeds()
    energy = np.asarray(plan.bands, np.float64) * np.asarray(plan.band_weights, np.float64)  # (n_bands, N)
    frame_s = plan.fps_base / plan.fps
    travel = plan.settings.get("mode", "displacement") == "travel"
    kick = (np.asarray(plan.pulse, np.float64) * np.asarray(plan.onset, np.float64))[:, None] * PULSE_SCALE

    def moves(seed):  # each (n_frames, 128): the resting point, the displacement or travel step, the kick
        rest, directions, pulse_direction = _directions(seed, len(plan.band_names))
        if travel:
            shift = (energy * np.asarray(plan.speed, np.float64)[None, :] * (TRAVEL_STEP * frame_s)).T @ directions
        else:
            shift = DISPLACEMENT_SCALE * (energy.T @ directions)
        return np.broadcast_to(rest, shift.shape).copy(), shift, kick * pulse_direction[None, :]

    if len(np.unique(seeds)) <= 1:
        rest, shift, kicks = moves(int(seeds[0]) if len(seeds) else int(plan.seed))
    else:
        rest, shift, kicks = (_per_frame(seeds, lambda seed, part=part: moves(seed)[part]) for part in range(3))
    offset = np.cumsum(shift, axis=0) if travel else shift
    raw = rest + offset + kicks  # the order of the sums as before per-frame seeds: the same bytes
    jitter = np.asarray(plan.jitter, np.float64)
    for k in np.flatnonzero(jitter):
        raw[k] += jitter[k] * np.random.default_rng([int(seeds[k]), 2, k]).standard_normal(Z_DIM)
    return (truncations(plan)[:, None] * fold(raw)).astype(np.float32)


def resting_point(plan, frame_index=0):
    """Where the displacement walk rests in silence at ``frame_index`` (shape (128,))."""
    rest, _, _ = _directions(int(plan.walk_seeds()[frame_index]), len(plan.band_names))
    return (truncations(plan)[frame_index] * fold(rest)).astype(np.float32)


def class_vectors(plan):
    """BigGAN class vectors: weights over the 1000 classes, summing to 1.

    Returns np.ndarray, shape (n_frames, 1000), float32.
    """
    classes = [int(c) for c in plan.settings.get("classes", [])]
    if not classes:
        raise ValueError("the plan has no classes: pick at least one ImageNet class")
    if plan.settings.get("class_mode", "chroma") == "chroma" and len(classes) != 12:
        raise ValueError(f"chroma mode needs 12 classes (one per pitch class), got {len(classes)}")
    vectors = np.zeros((plan.n_frames, N_CLASSES), dtype=np.float64)
    np.add.at(vectors, (slice(None), classes), palette_weights(plan, len(classes)))
    return (vectors / vectors.sum(axis=1, keepdims=True)).astype(np.float32)


def palette_weights(plan, n_entries):
    """How much of each palette entry (BigGAN's classes, StyleGAN's seeds) every frame shows, smoothed by
    the plan's ``class_smoothing_ms``; rows sum to 1. Shape (n_frames, n_entries), float64.

    Chroma mode: entry j follows the pitch classes p with p % n_entries == j (12 entries: one each),
    squared so that the leading pitch dominates. Bands mode: entry j follows band j % n_bands.
    """
    if plan.settings.get("class_mode", "chroma") == "chroma":
        if not 1 <= n_entries <= 12:
            raise ValueError(f"chroma mode blends 1 to 12 palette entries (12 pitch classes), got {n_entries}")
        squared = np.asarray(plan.chroma, np.float64) ** 2  # squared: the leading pitch dominates
        weights = squared if n_entries == 12 else np.stack(
            [squared[:, j::n_entries].sum(axis=1) for j in range(n_entries)], axis=1)
    else:
        energy = np.asarray(plan.bands, np.float64)
        weights = np.stack([energy[i % len(energy)] for i in range(n_entries)], axis=1) + 1e-3
    return _smooth(weights, plan.settings.get("class_smoothing_ms", 400.0), plan.fps / plan.fps_base)


def _smooth(weights, smoothing_ms, frames_per_s):
    """One-pole smoothing of (n_frames, k) class weights; silent frames hold the last mix."""
    weights = weights / np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
    step = 1.0 if smoothing_ms <= 0 else 1.0 - math.exp(-1000.0 / (frames_per_s * smoothing_ms))
    out = np.empty_like(weights)
    level = np.full(weights.shape[1], 1.0 / weights.shape[1])
    for k, target in enumerate(weights):
        if target.sum() > 0:  # silence (no chroma) keeps the previous classes
            level = level + step * (target - level)
        out[k] = level
    return out


def generator_inputs(plan):
    """BigGAN's inputs for every frame of ``plan``: (z (n, 128), classes (n, 1000), truncation (n,))."""
    return noise_vectors(plan), class_vectors(plan), truncations(plan)
