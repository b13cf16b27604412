"""Scene settings: ``scene.latentwalk``.

The baked curves live on ordinary animatable properties here (``bands[i].value``,
``onset``, ``rms``, ``chroma[i].value``, and the structure's ``beat``, ``bar``, ``section``
and ``drop``), so the Graph Editor, drivers and
keyframes all work on them as on any other Blender property.
"""

import bpy
from bpy.props import (
    BoolProperty,
    CollectionProperty,
    EnumProperty,
    FloatProperty,
    IntProperty,
    PointerProperty,
    StringProperty,
)

from . import compat
from ..engine.walk import modulation
from ..engine.analysis.bands import DEFAULT_BANDS, Band


def _update_band_label(band, _context):
    # The RNA name is what the Graph Editor prints beside the curve:
    # "Energy (Bass (60-250 Hz))" under the "Latent Walk" group.
    label = Band(band.title, band.low_hz, band.high_hz).label
    if band.name != label:
        band.name = label
    if band.title != band.previous_title:  # modulations follow a band by its name: they follow a rename too
        old_key, new_key = (modulation.curve_key_for_band(t) for t in (band.previous_title, band.title))
        settings = band.id_data.latentwalk
        if band.previous_title and not any(other.title == band.previous_title for other in settings.bands):
            for item in settings.modulations:
                if item.curve == old_key:
                    item.curve = new_key
        band.previous_title = band.title


class LatentWalkBand(bpy.types.PropertyGroup):
    title: StringProperty(name="Name", default="Band", update=_update_band_label)
    previous_title: StringProperty(options={"HIDDEN"})  # the title before a rename (see _update_band_label)
    low_hz: FloatProperty(name="Low", description="Lowest frequency of the band, in Hz",
                          default=60.0, min=0.0, max=24000.0, precision=0, update=_update_band_label)
    high_hz: FloatProperty(name="High", description="Highest frequency of the band, in Hz",
                           default=250.0, min=1.0, max=24000.0, precision=0, update=_update_band_label)
    gain: FloatProperty(name="Gain", description="Multiplies the curve (clipped at 1)",
                        default=1.0, min=0.0, soft_max=4.0)
    threshold: FloatProperty(name="Threshold", description="Values below it become 0",
                             default=0.0, min=0.0, max=1.0)
    attack_ms: FloatProperty(name="Attack (ms)", description="Rise time of the envelope, in ms; "
                             "above 0 every peak comes up to this much later",
                             default=0.0, min=0.0, soft_max=500.0)
    release_ms: FloatProperty(name="Release (ms)", description="Fall time of the envelope, in ms",
                              default=150.0, min=0.0, soft_max=2000.0)
    locked: BoolProperty(name="Lock", description="Keep this band's curve as it is when re-baking")
    weight: FloatProperty(name="Weight", description="How strongly this band moves the image (animatable)",
                          default=1.0, soft_min=0.0, soft_max=4.0)
    value: FloatProperty(name="Energy", description="The band's baked energy (edit it in the Graph Editor)",
                         default=0.0, soft_min=0.0, soft_max=1.0)
    source: EnumProperty(
        name="Source", description="What the band listens to", default="mix",
        items=(("mix", "Mix", "The whole song"),
               ("percussive", "Percussive", "The song's percussive part: hits, without held notes"),
               ("harmonic", "Harmonic", "The song's harmonic part: held notes and chords, without hits"),
               ("stem", "Stem", "A stem file of the song (drums.wav, bass.wav...) exported from its first sample")))
    stem_path: StringProperty(name="Stem", description="The stem file this band listens to (same start as the song)",
                              subtype="FILE_PATH", options=compat.PATH_OPTIONS)

    def as_band(self):
        return Band(self.title, self.low_hz, self.high_hz)


class LatentWalkPitch(bpy.types.PropertyGroup):
    value: FloatProperty(name="Chroma", description="Strength of this pitch class (0..1)",
                         default=0.0, soft_min=0.0, soft_max=1.0)


class LatentWalkClass(bpy.types.PropertyGroup):
    # name: the class's label, e.g. "volcano"
    index: IntProperty(name="ImageNet Class", min=0, max=999)


class LatentWalkWalk(bpy.types.PropertyGroup):
    """How the curves drive the generator (BigGAN, StyleGAN2, StyleGAN3). The numbers are animatable like any
    property."""

    mode: EnumProperty(
        name="Mode",
        items=(("displacement", "Displacement", "Energy pushes the image away from a resting point; silence brings it back"),
               ("travel", "Travel", "Energy is speed along a walk that keeps going and bounces inside the range")),
        default="displacement",
    )
    model: StringProperty(name="Generator", description="BigGAN: biggan-deep-128, -256, -512, or a folder with "
                          "config.json and pytorch_model.bin (the folder button picks one). StyleGAN2 / StyleGAN3: a "
                          ".pkl from NVIDIA's training code or a rosinality .pt (the file button picks one; read as "
                          "data, no code in it runs)", default="biggan-deep-256",
                          subtype="DIR_PATH", options=compat.PATH_OPTIONS)  # a name stays typable
    class_mode: EnumProperty(
        name="Classes From",
        items=(("chroma", "Chroma", "12 classes, one per pitch class (C, C#, ... B): harmony picks the image"),
               ("bands", "Bands", "Any classes, each weighted by a band's energy")),
        default="chroma",
    )
    classes: CollectionProperty(type=LatentWalkClass)
    active_class_index: IntProperty(name="Active Class")
    truncation: FloatProperty(name="Truncation", description="Variety vs fidelity (BigGAN's truncation; StyleGAN's "
                              "psi: 1 as trained, lower towards the average image)", default=0.4, min=0.02, max=1.0)
    pulse: FloatProperty(name="Pulse", description="How hard onsets kick the image", default=0.5, min=0.0, soft_max=2.0)
    speed: FloatProperty(name="Speed", description="Travel speed (travel mode)", default=1.0, min=0.0, soft_max=8.0)
    jitter: FloatProperty(name="Jitter", description="Random wobble per frame", default=0.0, min=0.0, soft_max=0.5)
    class_smoothing_ms: FloatProperty(name="Class Smoothing (ms)", description="How slowly the image's class mix "
                                      "follows the music", default=400.0, min=0.0, soft_max=4000.0)
    seed: IntProperty(name="Seed", description="Picks the resting point and directions of the walk", default=0, min=0)
    # StyleGAN only (the Walk panel shows them for a StyleGAN file).
    palette_seeds: StringProperty(name="Seeds", description="StyleGAN: the seeds whose images the class curve "
                                  "blends, as NVIDIA's gen_images.py --seeds takes them (e.g. 0-11 or 3,14,15,92); "
                                  "Chroma blends up to 12", default="0-11")
    latent_space: EnumProperty(
        name="Latent Space",
        items=(("w", "W", "Blend and move the styles (after the mapping network): smoother, as most tools do"),
               ("z", "Z", "Blend and move the noise before the mapping network: wilder, as BigGAN's walk")),
        default="w")
    noise_strength: FloatProperty(name="Noise", description="StyleGAN2's per-layer noise, times its trained "
                                  "strength (1: as trained, 0: none); animatable", default=1.0, min=0.0, soft_max=4.0)
    noise_pulse: FloatProperty(name="Noise Pulse", description="StyleGAN2: noise added per unit of the onset curve",
                               default=0.0, min=0.0, soft_max=4.0)
    rotation_deg: FloatProperty(name="Rotation", description="StyleGAN3's input rotation, in degrees (animatable: "
                                "its signature effect)", default=0.0, soft_min=-180.0, soft_max=180.0)
    translate_x: FloatProperty(name="Translate X", description="StyleGAN3's input translation across, as "
                               "gen_images.py --translate", default=0.0, soft_min=-2.0, soft_max=2.0)
    translate_y: FloatProperty(name="Translate Y", description="StyleGAN3's input translation down, as "
                               "gen_images.py --translate", default=0.0, soft_min=-2.0, soft_max=2.0)
    preview_width: IntProperty(name="Preview Width", description="Width in pixels of preview frames",
                               default=256, min=16, max=2048)
    preview_folder: StringProperty(name="Preview Folder", subtype="DIR_PATH",
                                   description="Folder for preview frames; {blend_name} and {scene_name} are the "
                                   ".blend's and the scene's names",
                                   default="//latentwalk_preview/{blend_name}/{scene_name}/",
                                   options=compat.PATH_OPTIONS)
    device: EnumProperty(name="Device", description="Where Preview Walk and Render Frames run (in the Render panel)",
                         items=(("auto", "Auto", "CUDA, then Apple MPS, then CPU"),
                                ("cuda", "CUDA", ""), ("mps", "MPS", ""), ("cpu", "CPU", "")),
                         default="auto")


class LatentWalkDiffusion(bpy.types.PropertyGroup):
    """Stable Diffusion img2img over the BigGAN frames. Strength, guidance, steps and
    seed are animatable (key them, or drive strength from a band curve); the prompt
    changes at timeline markers named "prompt: ..."."""

    model: StringProperty(name="Model", description="Stable Diffusion img2img model: a Hugging Face id in the "
                          "local cache (stabilityai/sd-turbo, stabilityai/sdxl-turbo, an SD 1.5 model...), a folder "
                          "written by save_pretrained (the folder button picks one), or none for BigGAN frames as "
                          "they are", default="stabilityai/sd-turbo", subtype="DIR_PATH", options=compat.PATH_OPTIONS)
    prompt: StringProperty(name="Prompt", description="The prompt before the first 'prompt: ...' timeline marker",
                           default="an oil painting, vivid colours, highly detailed")
    negative_prompt: StringProperty(name="Negative", description="What to steer away from (needs Guidance above 1)")
    strength: FloatProperty(name="Strength", description="How far Stable Diffusion may move from the BigGAN frame "
                            "(0: not at all). Animatable; with few steps it acts in steps of 1/Steps",
                            default=0.5, min=0.0, max=1.0)
    guidance: FloatProperty(name="Guidance", description="Classifier-free guidance scale; 1 or less turns it off "
                            "(sd-turbo and sdxl-turbo are made for 0)", default=0.0, min=0.0, soft_max=15.0)
    steps: IntProperty(name="Steps", description="Denoising steps (Strength x Steps of them run)",
                       default=2, min=1, soft_max=50)
    seed: IntProperty(name="Noise Seed", description="Stable Diffusion's noise; the same for every frame unless "
                      "animated, so a still source gives a still image", default=0, min=0, max=2**24 - 1)
    prompt_blend_ms: FloatProperty(name="Prompt Blend (ms)", description="How long a new prompt takes to fade in "
                                   "after its marker, in ms", default=1000.0, min=0.0, soft_max=10000.0)
    tiny_vae: StringProperty(name="Tiny VAE", description="Optional AutoencoderTiny (e.g. madebyollin/taesd, or "
                             "madebyollin/taesdxl for SDXL, or a folder: the folder button picks one): faster encoding "
                             "and decoding, slightly softer images", subtype="DIR_PATH", options=compat.PATH_OPTIONS)
    output_folder: StringProperty(name="Output", description="Folder for the frames (and the encoded video); "
                                  "{blend_name} and {scene_name} are the .blend's and the scene's names, so files in "
                                  "one folder (or scenes in one file) never share frames",
                                  subtype="DIR_PATH", default="//latentwalk_frames/{blend_name}/{scene_name}/",
                                  options=compat.PATH_OPTIONS)
    batch_size: IntProperty(name="Batch Size", description="Frames per batch; 0: 4 on the CPU, 16 on a GPU",
                            default=0, min=0, soft_max=64)
    devices: StringProperty(name="Devices", description="Render on several devices at once, one worker each, "
                            "e.g. cuda:0,cuda:1 (cpu,cpu: two CPU workers); the frames are the same as on one. "
                            "Empty: one worker on Device")

# (identifier, name, description) of the settings a modulation may change: plan array names.
_TARGET_ITEMS = (("strength", "Strength", "Stable Diffusion's strength"),
                 ("guidance", "Guidance", "Stable Diffusion's guidance scale"),
                 ("steps", "Steps", "Stable Diffusion's steps (rounded to whole steps)"),
                 ("truncation", "Truncation", "BigGAN's truncation"),
                 ("pulse", "Pulse", "How hard onsets kick the image"),
                 ("speed", "Speed", "Travel speed (travel mode)"),
                 ("jitter", "Jitter", "Random wobble per frame"),
                 ("noise_strength", "Noise", "StyleGAN2's per-layer noise (1: as trained)"),
                 ("rotation_deg", "Rotation", "StyleGAN3's input rotation, in degrees"),
                 ("translate_x", "Translate X", "StyleGAN3's input translation across"),
                 ("translate_y", "Translate Y", "StyleGAN3's input translation down"))
assert tuple(item[0] for item in _TARGET_ITEMS) == modulation.TARGETS

_curve_items_alive = []  # Blender keeps only pointers to a dynamic enum's strings: keep them alive


def _curve_items(modulation_item, _context=None):
    settings = modulation_item.id_data.latentwalk  # the scene the modulation belongs to
    items = [(modulation.ONSET, "Onset", "The onset curve"), (modulation.LOUDNESS, "Loudness", "The loudness curve"),
             (modulation.BEAT, "Beat", "The beat curve: 1 on each beat, falling to 0 over the beat"),
             (modulation.BAR, "Bar", "The bar curve: 1 on each bar's first beat, falling to 0 over the bar"),
             (modulation.DROP, "Drop", "The drop curve: 1 on a drop, falling to 0 over its bar (a burst)")]
    for band in settings.bands:
        key = modulation.curve_key_for_band(band.title)
        if all(key != item[0] for item in items):
            items.append((key, band.title, f"The band {band.name}"))
    items = [(key, name, description, number) for number, (key, name, description) in enumerate(items)]
    _curve_items_alive[:] = items
    return items


def _get_curve(modulation_item):
    # The choice is stored as its key (curve), not as the enum's number, so removing or
    # reordering bands never makes a modulation follow another band.
    for key, _name, _description, number in _curve_items(modulation_item):
        if key == modulation_item.curve:
            return number
    return -1  # the band is gone: shown empty; sampling the plan refuses and says which


def _set_curve(modulation_item, number):
    for key, _name, _description, item_number in _curve_items(modulation_item):
        if item_number == number:
            modulation_item.curve = key


class LatentWalkModulation(bpy.types.PropertyGroup):
    """A render setting following a curve: setting + amount x curve, sampled into the plan."""

    target: EnumProperty(name="Setting", description="The render or walk setting that follows the curve",
                         items=_TARGET_ITEMS, default="strength")
    curve: StringProperty(name="Curve Key", description="onset, rms, beat, bar, drop, or band:<band name>",
                          default=modulation.ONSET, options={"HIDDEN"})
    curve_choice: EnumProperty(name="Curve", description="The baked curve the setting follows: Onset, Loudness, "
                               "Beat, Bar, Drop or a band",
                               items=_curve_items, get=_get_curve, set=_set_curve)
    amount: FloatProperty(name="Amount", description="Added to the setting per unit of the curve "
                          "(the curve is 0..1); negative values subtract. Animatable",
                          default=0.3, soft_min=-1.0, soft_max=1.0)
    mute: BoolProperty(name="Mute", description="Leave the setting as it is")


def _update_look_name(look, _context):
    if look.name != look.label:  # the list's filter searches the name
        look.name = look.label


class LatentWalkSectionLook(bpy.types.PropertyGroup):
    """The look of the sections of one label: from each ``section: LABEL`` marker to the next section marker,
    the render uses its prompt (if any) and its walk seed (if Use Seed)."""

    label: StringProperty(name="Label", description="The sections it applies to: those of the timeline markers "
                          "named 'section: LABEL'", update=_update_look_name)
    prompt: StringProperty(name="Prompt", description="The prompt from each of this label's section markers to the "
                           "next section marker (empty: the base Prompt, once any section has a prompt)")
    use_seed: BoolProperty(name="Own Seed", description="Walk with a seed of its own in these sections: the same "
                           "label gets the same look")
    seed: IntProperty(name="Seed", description="The walk's seed in these sections (with Own Seed)", default=0, min=0)


class LatentWalkSettings(bpy.types.PropertyGroup):
    # No FILE_PATH subtype: its browse button cannot filter by type; the panel's button (Choose Song) shows
    # sound files only. "//" paths stay relative to the .blend, as everywhere.
    audio_path: StringProperty(name="Song", description="Audio file to analyse (wav, flac, ogg, mp3); the folder "
                               "button beside it browses sound files only")
    bands: CollectionProperty(type=LatentWalkBand)
    active_band_index: IntProperty(name="Active Band")
    offset_ms: FloatProperty(name="Latency (ms)", description="Shift every curve in time, in ms; "
                             "positive values react later, negative values anticipate the music",
                             default=0.0, soft_min=-500.0, soft_max=500.0)
    add_beat_markers: BoolProperty(name="Beat Markers", description="Put a timeline marker on every beat",
                                   default=False)
    add_section_markers: BoolProperty(name="Section Markers", description="Put a timeline marker 'section: A' "
                                      "where each section starts and 'drop' on each drop; a re-bake keeps them "
                                      "once you moved, added or deleted one", default=True)
    fit_frame_range: BoolProperty(name="Fit Frame Range", description="Set the scene's end frame to the song's end",
                                  default=True)
    # How curves are scaled to 0..1 (engine.analysis.shaping.NORMALISE_MODES and defaults).
    normalise: EnumProperty(
        name="Normalise", default="song",
        items=(("song", "Song", "Every curve against its song's loud passages: a quiet intro stays low, "
                "a loud drop reaches high"),
               ("window", "Window", "Every curve against the loud moments of the Window seconds around "
                "each frame: every passage reaches high")))
    normalise_window_s: FloatProperty(name="Window (s)", description="With Normalise: Window, how many "
                                      "seconds around each frame set its 1.0",
                                      default=10.0, soft_min=1.0, soft_max=60.0)
    onset_source: EnumProperty(
        name="Onset Source", description="What the onset curve (and the beats) listen to", default="mix",
        items=(("mix", "Mix", "The whole song"),
               ("percussive", "Percussive", "The song's percussive part: the hits without the held notes"),
               ("harmonic", "Harmonic", "The song's harmonic part: note and chord changes without the hits"),
               ("stem", "Stem", "A stem file of the song (e.g. drums.wav), exported from its first sample")))
    onset_stem_path: StringProperty(name="Onset Stem", description="The stem file the onset curve listens to",
                                    subtype="FILE_PATH", options=compat.PATH_OPTIONS)
    chroma_source: EnumProperty(
        name="Chroma Source", description="What the chroma curves listen to", default="mix",
        items=(("mix", "Mix", "The whole song"),
               ("harmonic", "Harmonic", "The song's harmonic part: chords without the hits"),
               ("stem", "Stem", "A stem file of the song (e.g. keys.wav), exported from its first sample")))
    chroma_stem_path: StringProperty(name="Chroma Stem", description="The stem file the chroma curves listen to",
                                     subtype="FILE_PATH", options=compat.PATH_OPTIONS)
    lock_onset: BoolProperty(name="Lock Onset", description="Keep the onset curve when re-baking")
    lock_rms: BoolProperty(name="Lock Loudness", description="Keep the loudness curve when re-baking")
    lock_chroma: BoolProperty(name="Lock Chroma", description="Keep the chroma curves when re-baking")
    lock_beat: BoolProperty(name="Lock Beat", description="Keep the beat curve when re-baking")
    lock_bar: BoolProperty(name="Lock Bar", description="Keep the bar curve when re-baking")
    lock_section: BoolProperty(name="Lock Section", description="Keep the section curve when re-baking")
    lock_drop: BoolProperty(name="Lock Drop", description="Keep the drop curve when re-baking")

    onset: FloatProperty(name="Onset", description="Baked percussive pulse (0..1)",
                         default=0.0, soft_min=0.0, soft_max=1.0)
    rms: FloatProperty(name="Loudness", description="Baked overall loudness (0..1)",
                       default=0.0, soft_min=0.0, soft_max=1.0)
    chroma: CollectionProperty(type=LatentWalkPitch)
    beat: FloatProperty(name="Beat", description="Baked beat pulse: 1 on each beat, falling to 0 over the beat",
                        default=0.0, soft_min=0.0, soft_max=1.0)
    bar: FloatProperty(name="Bar", description="Baked bar pulse: 1 on each bar's first beat (a downbeat), falling "
                       "to 0 over the bar; Snap Markers to Bars snaps to the frames where it is 1",
                       default=0.0, soft_min=0.0, soft_max=1.0)
    section: FloatProperty(name="Section", description="Baked section: its label's number (A = 0, B = 1, ...), "
                           "held over the section", default=0.0, soft_min=0.0, soft_max=8.0)
    drop: FloatProperty(name="Drop", description="Baked drop pulse: 1 on a drop, falling to 0 over its bar",
                        default=0.0, soft_min=0.0, soft_max=1.0)
    section_looks: CollectionProperty(type=LatentWalkSectionLook)
    active_section_look_index: IntProperty(name="Active Section Look")
    walk: PointerProperty(type=LatentWalkWalk)
    diffusion: PointerProperty(type=LatentWalkDiffusion)
    modulations: CollectionProperty(type=LatentWalkModulation)

    # Bookkeeping of the last bake, written by the bake operator.
    baked_fingerprints: StringProperty(options={"HIDDEN"})  # JSON {"path[index]": hash}
    sound_strip_name: StringProperty(options={"HIDDEN"})
    last_bake_summary: StringProperty(name="Last Bake", options={"HIDDEN"})
    baked_timing: StringProperty(options={"HIDDEN"})  # JSON: fps, song start and file of the bake (bake_state.py)
    baked_markers: StringProperty(options={"HIDDEN"})  # JSON [[name, frame], ...]: the section and drop markers placed

    def ensure_default_bands(self):
        if len(self.bands):
            return
        for band in DEFAULT_BANDS:
            item = self.bands.add()
            item.title, item.low_hz, item.high_hz = band.name, band.low_hz, band.high_hz


    def ensure_default_classes(self):
        from ..engine.walk.imagenet import class_name
        from ..engine.walk.plan import DEFAULT_SETTINGS

        if len(self.walk.classes):
            return
        for index in DEFAULT_SETTINGS["classes"]:
            item = self.walk.classes.add()
            item.index, item.name = index, class_name(index)


classes = (LatentWalkBand, LatentWalkPitch, LatentWalkClass, LatentWalkWalk, LatentWalkDiffusion, LatentWalkModulation,
           LatentWalkSectionLook, LatentWalkSettings)


def register():
    for cls in classes:
        bpy.utils.register_class(cls)
    bpy.types.Scene.latentwalk = PointerProperty(type=LatentWalkSettings)


def unregister():
    del bpy.types.Scene.latentwalk
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
