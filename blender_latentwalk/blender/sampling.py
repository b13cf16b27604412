"""Blender state -> RenderPlan: every animated value, sampled per frame.

The scene is stepped frame by frame (``frame_set``), so what is sampled is what
Blender itself evaluates: hand-edited keys, F-curve modifiers and drivers alike.
The frame the artist was on is restored afterwards.
"""

import numpy as np

from ..engine.walk import modulation
from ..engine.errors import LatentWalkError
from ..engine.analysis.features import PITCH_CLASSES
from ..engine.generators.stylegan import is_model_file
from ..engine.walk.plan import RenderPlan
from ..engine.walk.prompts import marker_prompt, schedule, section_prompt_changes, section_seeds
from ..engine.walk.stylegan_inputs import parse_seeds
from . import bake_state, compat, sections, sequencer
from .output import model_name

# Per-frame img2img values: plan array name -> property of scene.latentwalk.diffusion.
DIFFUSION_ARRAYS = {"strength": "strength", "guidance": "guidance", "steps": "steps", "noise_seed": "seed"}
# Per-frame walk values: properties of scene.latentwalk.walk, the plan's arrays of the same names.
WALK_ARRAYS = ("truncation", "pulse", "speed", "jitter", "noise_strength", "noise_pulse", "rotation_deg", "translate_x",
               "translate_y")
# Every property the render samples on every frame, by property group (docs/parameters.md shows it).
SAMPLED_PER_FRAME = {"LatentWalkSettings": ("onset",), "LatentWalkBand": ("value", "weight"),
                     "LatentWalkPitch": ("value",), "LatentWalkWalk": WALK_ARRAYS,
                     "LatentWalkDiffusion": tuple(DIFFUSION_ARRAYS.values()),
                     "LatentWalkModulation": ("amount",)}


def song_first_frame(scene):
    """The Blender frame where the song starts: its strip's start; without a strip (a Blender built without
    audio) the frame the curves were baked from; without a bake, the scene's start.

    Every plan begins here: walk state that carries history (travel, class smoothing) and the aligned
    batches count from the song's first frame, so a frame's pixels never depend on where the scene, a
    chunk or a headless range starts."""
    settings = scene.latentwalk
    strip = sequencer.find_sound_strip(scene, settings.audio_path) if settings.audio_path else None
    if strip is not None:
        return int(strip.frame_start)
    timing = bake_state.recorded(settings)
    return int(timing["song_start"]) if timing and "song_start" in timing else scene.frame_start


def plan_range(scene):
    """(first, last) Blender frames a plan covers: the song's first frame to the scene's end frame."""
    return song_first_frame(scene), scene.frame_end


def render_range(scene):
    """(first, last) Blender frames to render and encode by default: the scene's frames from the song's
    first frame on (a scene starting later renders from its own start)."""
    return max(song_first_frame(scene), scene.frame_start), scene.frame_end


def check_inside_render_range(first, last, scene):
    """Raise LatentWalkError unless Blender frames first..last lie inside `render_range`."""
    render_first, render_last = render_range(scene)
    if not (render_first <= first <= last <= render_last):
        start = "the song's first frame" if render_first == song_first_frame(scene) else "the scene's start frame"
        raise LatentWalkError(f"frames {first}-{last} are outside the frames to render, {render_first}-{render_last} "
                              f"(from {start} to the scene's end frame): choose a range inside them.")


def _target_owner(settings, target):
    """The property group holding a modulation target, and the property's name there."""
    if target in WALK_ARRAYS:
        return settings.walk, target
    return settings.diffusion, DIFFUSION_ARRAYS[target]


def _range_of(settings, target):
    owner, prop = _target_owner(settings, target)
    definition = owner.bl_rna.properties[prop]
    return modulation.Range(definition.hard_min, definition.hard_max)


STRUCTURE_CURVES = {modulation.BEAT: "Beat", modulation.BAR: "Bar", modulation.DROP: "Drop"}


def _has_driver(scene, data_path):
    drivers = scene.animation_data.drivers if scene.animation_data else ()
    return any(driver.data_path == data_path for driver in drivers)


def _active_modulations(settings):
    """[(target, read_curve, modulation item)] for the unmuted modulations; refuses one that
    follows a band no longer in the list (it would silently follow nothing)."""
    readers = {modulation.ONSET: lambda: settings.onset, modulation.LOUDNESS: lambda: settings.rms}
    scene = settings.id_data
    for key, prop in ((modulation.BEAT, "beat"), (modulation.BAR, "bar"), (modulation.DROP, "drop")):
        # A scene baked before these curves existed has none: following one would silently follow 0.
        if compat.find_fcurve(scene, f"latentwalk.{prop}", 0) is not None or _has_driver(scene, f"latentwalk.{prop}"):
            readers[key] = lambda prop=prop: getattr(settings, prop)
    titles = [band.title for band in settings.bands]
    for band in settings.bands:
        readers.setdefault(modulation.curve_key_for_band(band.title), lambda band=band: band.value)
    active = []
    for item in settings.modulations:
        if item.mute:
            continue
        title = modulation.band_title(item.curve)
        if title is not None and titles.count(title) > 1:
            raise LatentWalkError(
                f"the modulation of {item.target.title()} follows the band '{title}', and {titles.count(title)} "
                "bands have that name: rename all but one so it is clear which one it follows.")
        if item.curve in STRUCTURE_CURVES and item.curve not in readers:
            raise LatentWalkError(
                f"the modulation of {item.target.title()} follows the {STRUCTURE_CURVES[item.curve]} curve, which this "
                "scene has not baked yet (it was baked by an older version): press Bake Curves, then render again.")
        if item.curve not in readers:
            raise LatentWalkError(
                f"the modulation of {item.target.title()} follows the band '{modulation.band_title(item.curve)}', "
                "which is not in the band list any more: pick another curve for it in Render > Modulation.")
        active.append((item.target, readers[item.curve], item))
    return active


def _palette(walk):
    """(ImageNet classes, StyleGAN seeds) of the walk, checked for the generator its model is."""
    classes = [c.index for c in walk.classes]
    if not is_model_file(model_name(walk.model)):  # BigGAN: the class list is the palette
        if not classes:
            raise LatentWalkError("no ImageNet classes are chosen: add some in Latent Walk > Walk > Classes.")
        if walk.class_mode == "chroma" and len(classes) != len(PITCH_CLASSES):
            raise LatentWalkError(
                f"Classes From Chroma needs 12 classes, one per pitch class C..B; {len(classes)} are chosen. "
                "Add or remove classes, or switch Classes From to Bands."
            )
        return classes, parse_seeds("0-11")
    try:
        seeds = parse_seeds(walk.palette_seeds)
    except ValueError as error:
        raise LatentWalkError(f"StyleGAN Seeds: {error}. Fix it in Latent Walk > Walk > Seeds.") from None
    if walk.class_mode == "chroma" and len(seeds) > len(PITCH_CLASSES):
        raise LatentWalkError(f"Palette From Chroma blends up to 12 seeds (one per pitch class); Seeds names "
                              f"{len(seeds)}. Give fewer, or switch Palette From to Bands.")
    return classes, seeds


def sample_plan(scene, first=None, last=None):
    """The RenderPlan for Blender frames ``first..last`` (default: `plan_range`, which a render always uses:
    a plan starting elsewhere would start its walk elsewhere)."""
    settings = scene.latentwalk
    walk = settings.walk
    if not len(settings.bands):
        raise LatentWalkError("there are no bands: press Bake Curves first.")
    default_first, default_last = plan_range(scene)
    first = default_first if first is None else first
    last = default_last if last is None else last
    if last < first:
        raise LatentWalkError(f"the frame range {first}-{last} is empty: set the scene's end frame after its start.")
    classes, seeds = _palette(walk)
    n_frames, n_bands = last - first + 1, len(settings.bands)
    bands = np.zeros((n_bands, n_frames), np.float32)
    weights = np.zeros((n_bands, n_frames), np.float32)
    chroma = np.zeros((n_frames, len(PITCH_CLASSES)), np.float32)
    per_frame = {name: np.zeros(n_frames, np.float32)
                 for name in ("onset", *WALK_ARRAYS, *DIFFUSION_ARRAYS)}
    diffusion = settings.diffusion
    modulations = _active_modulations(settings)
    offsets = {target: np.zeros(n_frames, np.float64) for target in {m[0] for m in modulations}}
    current = scene.frame_current
    try:
        for k, frame in enumerate(range(first, last + 1)):
            scene.frame_set(frame)
            for i, band in enumerate(settings.bands):
                bands[i, k], weights[i, k] = band.value, band.weight
            for i, pitch in enumerate(settings.chroma[: len(PITCH_CLASSES)]):
                chroma[k, i] = pitch.value
            per_frame["onset"][k] = settings.onset
            for name in WALK_ARRAYS:
                per_frame[name][k] = getattr(walk, name)
            for name, prop in DIFFUSION_ARRAYS.items():
                per_frame[name][k] = getattr(diffusion, prop)
            for target, read_curve, item in modulations:
                offsets[target][k] += item.amount * read_curve()
    finally:
        scene.frame_set(current)
    for target, offset in offsets.items():
        per_frame[target] = modulation.apply(per_frame[target], offset, _range_of(settings, target),
                                             whole_numbers=target in modulation.WHOLE_NUMBER_TARGETS)
    # Section markers whose look has a prompt change it (while any look has one, the others go back to the base
    # Prompt); a "prompt: ..." marker on the same frame as a section marker replaces the section's change.
    section_list = sections.section_markers(scene)
    look_prompts, look_seeds = sections.looks(settings)
    prompt_changes = [(marker.frame, marker_prompt(marker.name)) for marker in scene.timeline_markers
                      if marker_prompt(marker.name) is not None]
    prompt_frames = {frame for frame, _ in prompt_changes}
    changes = [change for change in section_prompt_changes(section_list, look_prompts, diffusion.prompt)
               if change[0] not in prompt_frames] + prompt_changes
    prompts, prompt_weights = schedule(diffusion.prompt, changes, first, n_frames, scene.render.fps,
                                       scene.render.fps_base, diffusion.prompt_blend_ms)
    walk_seed = section_seeds(section_list, look_seeds, walk.seed, first, n_frames)
    return RenderPlan(
        frame_start=first, fps=scene.render.fps, fps_base=scene.render.fps_base, seed=walk.seed,
        band_names=[b.title for b in settings.bands], bands=bands, band_weights=weights, chroma=chroma,
        settings={"mode": walk.mode, "model": walk.model, "class_mode": walk.class_mode, "classes": classes,
                  "palette_seeds": seeds, "latent_space": walk.latent_space,
                  "class_smoothing_ms": walk.class_smoothing_ms, "prompts": prompts,
                  "negative_prompt": diffusion.negative_prompt},
        prompt_weights=prompt_weights, walk_seed=walk_seed, **per_frame,
    )
