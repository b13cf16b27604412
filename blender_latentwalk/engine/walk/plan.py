"""The RenderPlan: everything needed to render every frame, as plain data.

The add-on samples it from Blender (curves after every hand edit, modifier and
driver, and the walk settings, which are animatable too); everything downstream
is a pure function of it. Saved as one ``.npz`` (arrays + a JSON ``settings``).
"""

import hashlib
import json
import os
import zipfile
from dataclasses import dataclass, field

import numpy as np

from .. import atomic
from ..errors import LatentWalkError

# 4: walk_seed, the walk's seed per frame (a section's look may set its own)
# 3: StyleGAN's arrays (noise_strength, noise_pulse, rotation_deg, translate_x, translate_y)
PLAN_VERSION = 4
MAX_WALK_SEED = 2**31 - 1  # Blender's IntProperty holds the seed: a signed 32-bit number

DEFAULT_SETTINGS = {
    "mode": "displacement",  # or "travel"
    "model": "biggan-deep-256",  # the generator: a BigGAN name or folder, or a StyleGAN .pkl / .pt file
    # StyleGAN only: the palette (NVIDIA's seeds, as gen_images.py --seeds takes them) the class curve blends,
    # and where the bands move the latent: "w" (after the mapping network) or "z" (before it).
    "palette_seeds": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
    "latent_space": "w",
    "class_mode": "chroma",  # 12 pitch classes -> 12 ImageNet classes; or "bands"
    # One ImageNet class per pitch class C, C#, ... B (chroma mode), or any list (bands mode).
    "classes": [971, 980, 970, 979, 973, 975, 947, 992, 309, 323, 14, 130],
    "class_smoothing_ms": 400.0,
    # img2img: prompt_weights[:, j] says how much of prompts[j] each frame gets.
    "prompts": [""],
    "negative_prompt": "",
}

# Per-frame img2img values when a plan is built without them (sd-turbo's settings).
IMG2IMG_DEFAULTS = {"strength": 0.5, "guidance": 0.0, "steps": 2.0, "noise_seed": 0.0}
# Per-frame StyleGAN values when a plan is built without them (NVIDIA's own behaviour: full noise, no transform).
STYLEGAN_DEFAULTS = {"noise_strength": 1.0, "noise_pulse": 0.0, "rotation_deg": 0.0, "translate_x": 0.0,
                     "translate_y": 0.0}


@dataclass
class RenderPlan:
    """Per-frame values (arrays of n_frames) and fixed settings.

    Attributes
    ----------
    frame_start : int, the Blender frame of index 0
    fps, fps_base : float
    seed : int, the walk's seed (the Seed setting)
    walk_seed : None, or np.ndarray, shape (n_frames,), int64, the walk's seed on each frame (whole numbers 0 to
        MAX_WALK_SEED): a section's look may give its frames their own. None: ``seed`` on every frame (so a
        copy with another ``seed`` follows it); `walk_seeds` gives the array either way
    band_names : list of str, length n_bands
    bands : np.ndarray, shape (n_bands, n_frames), sampled band curves
    band_weights : np.ndarray, shape (n_bands, n_frames), how much each band moves the image
    onset : np.ndarray, shape (n_frames,)
    chroma : np.ndarray, shape (n_frames, 12)
    truncation : np.ndarray, shape (n_frames,), in (0, 1] (BigGAN's truncation; StyleGAN's psi)
    pulse : np.ndarray, shape (n_frames,), strength of the onset kick
    speed : np.ndarray, shape (n_frames,), travel speed (travel mode)
    jitter : np.ndarray, shape (n_frames,), per-frame random wobble
    strength : np.ndarray, shape (n_frames,), img2img strength in [0, 1]
    guidance : np.ndarray, shape (n_frames,), classifier-free guidance scale (<= 1: off)
    steps : np.ndarray, shape (n_frames,), img2img steps (whole numbers)
    noise_seed : np.ndarray, shape (n_frames,), img2img noise seed (whole numbers < 2**24)
    prompt_weights : np.ndarray, shape (n_frames, n_prompts), rows sum to 1
    noise_strength : np.ndarray, shape (n_frames,), StyleGAN2's per-layer noise, times its trained strength
    noise_pulse : np.ndarray, shape (n_frames,), noise added per unit of onset (StyleGAN2)
    rotation_deg, translate_x, translate_y : np.ndarray, shape (n_frames,), StyleGAN3's input transform
        (degrees; translation in units of the image's width, positive right and down)
    settings : dict, JSON-able (see DEFAULT_SETTINGS); ``settings["prompts"]`` has n_prompts texts
    """

    frame_start: int
    fps: float
    fps_base: float
    seed: int
    band_names: list
    bands: np.ndarray
    band_weights: np.ndarray
    onset: np.ndarray
    chroma: np.ndarray
    truncation: np.ndarray
    pulse: np.ndarray
    speed: np.ndarray
    jitter: np.ndarray
    settings: dict = field(default_factory=lambda: dict(DEFAULT_SETTINGS))
    strength: np.ndarray = None
    guidance: np.ndarray = None
    steps: np.ndarray = None
    noise_seed: np.ndarray = None
    prompt_weights: np.ndarray = None
    noise_strength: np.ndarray = None
    noise_pulse: np.ndarray = None
    rotation_deg: np.ndarray = None
    translate_x: np.ndarray = None
    translate_y: np.ndarray = None
    walk_seed: np.ndarray = None

    ARRAYS = ("bands", "band_weights", "onset", "chroma", "truncation", "pulse", "speed", "jitter",
              "strength", "guidance", "steps", "noise_seed", "prompt_weights", *STYLEGAN_DEFAULTS)

    def __post_init__(self):
        self.settings = {**DEFAULT_SETTINGS, **self.settings}
        n_frames = self.n_frames
        for name, value in {**IMG2IMG_DEFAULTS, **STYLEGAN_DEFAULTS}.items():
            if getattr(self, name) is None:
                setattr(self, name, np.full(n_frames, value, np.float32))
        if self.walk_seed is None:
            if not 0 <= int(self.seed) <= MAX_WALK_SEED:
                raise ValueError(f"the walk's seed is {self.seed}: it must be a whole number 0..{MAX_WALK_SEED}")
        else:
            walk_seed = np.asarray(self.walk_seed)
            if walk_seed.shape != (n_frames,) or np.any(walk_seed != np.round(walk_seed)) or (
                    n_frames and not (0 <= walk_seed.min() and walk_seed.max() <= MAX_WALK_SEED)):
                raise ValueError(f"walk_seed must hold one whole number 0..{MAX_WALK_SEED} per frame ({n_frames}), "
                                 f"got shape {walk_seed.shape}")
            self.walk_seed = walk_seed.astype(np.int64)
        if self.prompt_weights is None:
            self.prompt_weights = np.ones((n_frames, len(self.settings["prompts"])), np.float32)
        if self.prompt_weights.shape != (n_frames, len(self.settings["prompts"])):
            raise ValueError(f"prompt_weights has shape {self.prompt_weights.shape}, expected "
                             f"({n_frames}, {len(self.settings['prompts'])}) for the plan's prompts")

    def walk_seeds(self):
        """The walk's seed on every frame, shape (n_frames,), int64 (``seed`` where ``walk_seed`` is None)."""
        if self.walk_seed is None:
            return np.full(self.n_frames, int(self.seed), np.int64)
        return self.walk_seed

    def frame_prompts(self, index):
        """{prompt text: weight} of the prompts frame ``index`` uses (weights > 0)."""
        mix = {}
        for text, weight in zip(self.settings["prompts"], self.prompt_weights[index]):
            if weight > 0:
                mix[text] = mix.get(text, 0.0) + float(weight)
        return mix

    @property
    def n_frames(self):
        return len(self.onset)

    def fingerprint(self):
        """A hash of everything that affects the frames (for resume and caching)."""
        digest = hashlib.sha256(json.dumps(self._header(), sort_keys=True).encode())
        for name in self.ARRAYS:
            digest.update(np.ascontiguousarray(getattr(self, name), dtype=np.float32).tobytes())
        digest.update(self.walk_seeds().tobytes())
        return digest.hexdigest()

    def _header(self):
        return {
            "version": PLAN_VERSION,
            "frame_start": int(self.frame_start),
            "fps": float(self.fps),
            "fps_base": float(self.fps_base),
            "seed": int(self.seed),
            "band_names": list(self.band_names),
            "settings": self.settings,
        }

    def save(self, path):
        arrays = {name: np.asarray(getattr(self, name), dtype=np.float32) for name in self.ARRAYS}
        arrays["walk_seed"] = self.walk_seeds()  # int64: float32 holds whole numbers only up to 2**24
        arrays["header"] = np.array(json.dumps(self._header(), sort_keys=True))
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        atomic.write_via(path, lambda stream: np.savez(stream, **arrays))

    @classmethod
    def load(cls, path):
        """The plan saved at ``path``; raises `LatentWalkError` naming the file when it is missing,
        not a plan (another .npz, e.g. a features file), or from another version."""
        fix = "sample it again from Blender (Render Frames writes the plan next to the frames)"
        try:
            data = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise LatentWalkError(f"plan file not found: '{path}'.") from None
        except IsADirectoryError:
            raise LatentWalkError(f"plan '{path}' is a folder: give the plan .npz file.") from None
        except (OSError, ValueError, EOFError, zipfile.BadZipFile):
            raise LatentWalkError(f"'{path}' is not a render plan (not a .npz file): {fix}.") from None
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise LatentWalkError(f"'{path}' is not a render plan (a single array, not a .npz of a plan): {fix}.")
        with data:
            if "header" not in data.files:
                raise LatentWalkError(f"'{path}' is not a render plan (it holds {', '.join(data.files[:4]) or 'nothing'}"
                                      f"{'...' if len(data.files) > 4 else ''}; a features file?): {fix}.")
            try:
                header = json.loads(str(data["header"]))
                version = header.get("version")
            except (ValueError, AttributeError):
                raise LatentWalkError(f"'{path}' is not a render plan (its header is not a plan's): {fix}.") from None
            if version != PLAN_VERSION:
                age = "an older" if isinstance(version, int) and version < PLAN_VERSION else "another"
                raise LatentWalkError(f"plan '{path}' is from {age} version of Latent Walk (plan version {version}, "
                                      f"this one reads {PLAN_VERSION}): {fix}.")
            missing = [name for name in cls.ARRAYS if name not in data.files]
            if missing:
                raise LatentWalkError(f"plan '{path}' is damaged (it lacks {', '.join(missing)}): {fix}.")
            arrays = {name: data[name] for name in cls.ARRAYS}
            arrays["walk_seed"] = data["walk_seed"] if "walk_seed" in data.files else None
        try:
            return cls(
                frame_start=header["frame_start"], fps=header["fps"], fps_base=header["fps_base"],
                seed=header["seed"], band_names=header["band_names"], settings=header["settings"], **arrays,
            )
        except (KeyError, ValueError, TypeError) as error:
            raise LatentWalkError(f"plan '{path}' is damaged ({type(error).__name__}: {error}): {fix}.") from None
