"""Operators: bake, show curves, and editing the band list."""

import os

import bpy
from bpy.props import BoolProperty

from . import compat, curves, engine_client, preferences, sequencer
from ..engine import timing
from ..engine.bands import check_bands
from ..engine.errors import LatentWalkError
from ..engine.features import PITCH_CLASSES

def _source(source, stem_path, what):
    """A curve's source for the engine: "mix", "percussive", "harmonic", or a stem's absolute path."""
    if source != "stem":
        return source
    if not stem_path:
        raise LatentWalkError(f"{what} listens to a stem, but no stem file is chosen: "
                              "choose one, or set its source back to Mix.")
    return os.path.abspath(bpy.path.abspath(stem_path))


def band_source(band):
    return _source(band.source, band.stem_path, f"band '{band.title}'")


def build_request(scene):
    """The engine's analysis request for this scene; raises `LatentWalkError` on bad settings."""
    settings = scene.latentwalk
    if not settings.audio_path:
        raise LatentWalkError("no song is set: choose an audio file in the Latent Walk panel (Song).")
    audio_path = os.path.abspath(bpy.path.abspath(settings.audio_path))
    timing.check_fps(scene.render.fps, scene.render.fps_base)
    check_bands([b.as_band() for b in settings.bands])
    return {
        "audio": audio_path,
        "fps": scene.render.fps,
        "fps_base": scene.render.fps_base,
        "offset_ms": settings.offset_ms,
        "normalise": settings.normalise,
        "normalise_window_s": settings.normalise_window_s,
        "onset_source": _source(settings.onset_source, settings.onset_stem_path, "the onset curve"),
        "chroma_source": _source(settings.chroma_source, settings.chroma_stem_path, "the chroma"),
        "bands": [
            {"name": b.title, "low_hz": b.low_hz, "high_hz": b.high_hz, "gain": b.gain,
             "threshold": b.threshold, "attack_ms": b.attack_ms, "release_ms": b.release_ms,
             "source": band_source(b)}
            for b in settings.bands
        ],
    }


def bake(scene, overwrite_edited=False, python=None):
    """Analyse the scene's song and write its curves.

    Returns ``(written, kept)``: the targets written and those kept because the
    artist edited them. Nothing in the scene changes if analysis fails.
    """
    settings = scene.latentwalk
    settings.ensure_default_bands()
    request = build_request(scene)
    if python is None:
        python = engine_client.engine_python(preferences.get().engine_python)
    features = engine_client.analyze(request, python)  # may raise: nothing written yet
    try:
        features.check_shapes()
    except ValueError as error:
        raise LatentWalkError(f"the engine returned unusable features ({error}); nothing was changed.") from None
    if len(features.band_names) != len(settings.bands):
        raise LatentWalkError("the engine returned a different number of bands; nothing was changed.")

    settings.ensure_default_classes()
    while len(settings.chroma) < len(PITCH_CLASSES):
        settings.chroma.add().name = PITCH_CLASSES[len(settings.chroma)]
    targets = curves.targets_for(settings, features)
    kept = [] if overwrite_edited else [t for t in curves.edited_targets(scene, targets) if not t.locked]
    strip = sequencer.ensure_sound_strip(scene, request["audio"], features.n_frames)
    first_frame = int(strip.frame_start) if strip is not None else scene.frame_start
    written = curves.write_bake(scene, targets, first_frame, skip_keys={t.key for t in kept})
    if settings.add_beat_markers:
        sequencer.set_beat_markers(scene, features.beats, first_frame)
    if settings.fit_frame_range:
        scene.frame_end = first_frame + features.n_frames - 1
    scene.use_audio_scrub = True
    scene.sync_mode = "AUDIO_SYNC"
    settings.baked_fps = scene.render.fps / scene.render.fps_base
    settings.last_bake_summary = (
        f"{features.n_frames} frames from {first_frame}, {len(written)} curves, {len(features.beats)} beats"
        + ("" if strip is not None else " (this Blender build has no audio: song not added to the sequencer)")
    )
    return written, kept


class LATENTWALK_OT_bake(bpy.types.Operator):
    """Analyse the song and bake its bands, onset, loudness and chroma into editable F-curves"""

    bl_idname = "latentwalk.bake"
    bl_label = "Bake Curves"
    bl_options = {"REGISTER", "UNDO"}

    overwrite_edited: BoolProperty(
        name="Overwrite Edited Curves",
        description="Replace curves edited by hand since the last bake (locked bands are always kept)",
        default=False,
        options={"SKIP_SAVE"},  # never remembered: every bake asks again before replacing edits
    )

    def invoke(self, context, event):
        scene = context.scene
        settings = scene.latentwalk
        edited = [t for t in curves.edited_targets(scene, curves.targets_for(settings)) if not t.locked]
        if edited and not self.overwrite_edited:
            self._edited_labels = [t.label for t in edited]
            return context.window_manager.invoke_props_dialog(self, width=360)
        return self.execute(context)

    def draw(self, context):
        layout = self.layout
        labels = getattr(self, "_edited_labels", [])
        layout.label(text=f"{len(labels)} curve(s) were edited by hand since the last bake:", icon="INFO")
        layout.label(text=", ".join(labels[:6]) + (" ..." if len(labels) > 6 else ""))
        layout.prop(self, "overwrite_edited")

    def execute(self, context):
        try:
            written, kept = bake(context.scene, self.overwrite_edited)
        except LatentWalkError as error:
            self.report({"ERROR"}, f"Latent Walk: {error}")
            return {"CANCELLED"}
        if kept:
            self.report({"WARNING"}, f"Baked {len(written)} curves; kept {len(kept)} edited by hand: "
                        + ", ".join(t.label for t in kept) + " (tick Overwrite Edited Curves to replace them)")
        else:
            self.report({"INFO"}, f"Baked {len(written)} curves: {context.scene.latentwalk.last_bake_summary}")
        return {"FINISHED"}


def our_fcurves(scene):
    """The scene's F-curves that drive scene.latentwalk.*."""
    return [fc for fc in compat.fcurves_of(scene) or [] if fc.data_path.startswith("latentwalk.")]


class LATENTWALK_OT_show_curves(bpy.types.Operator):
    """Show the baked curves in a Graph Editor, framed and selected"""

    bl_idname = "latentwalk.show_curves"
    bl_label = "Show Curves"

    def execute(self, context):
        scene = context.scene
        ours = our_fcurves(scene)
        if not ours:
            self.report({"WARNING"}, "Latent Walk: nothing is baked yet; press Bake Curves first.")
            return {"CANCELLED"}
        area = _graph_editor_area(context)
        for fcurve in compat.fcurves_of(scene):
            is_ours = fcurve.data_path.startswith("latentwalk.")
            fcurve.select = is_ours
            fcurve.hide = not is_ours
        space = area.spaces.active
        space.dopesheet.show_only_selected = False
        region = next((r for r in area.regions if r.type == "WINDOW"), None)
        with context.temp_override(area=area, region=region):
            bpy.ops.graph.view_all()
        return {"FINISHED"}


def _graph_editor_area(context):
    """A Graph Editor in the current screen: an existing one, else the timeline or this area turned into one."""
    areas = list(context.screen.areas)
    for area in areas:
        if area.type == "GRAPH_EDITOR":
            return area
    for area in areas:
        if area.type == "DOPESHEET_EDITOR":
            break
    else:
        area = context.area
    area.type = "GRAPH_EDITOR"
    area.ui_type = "FCURVES"
    return area


class LATENTWALK_OT_band_add(bpy.types.Operator):
    """Add a frequency band"""

    bl_idname = "latentwalk.band_add"
    bl_label = "Add Band"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        settings = context.scene.latentwalk
        band = settings.bands.add()
        taken = {b.title for b in settings.bands}
        number = len(settings.bands)
        while f"Band {number}" in taken:
            number += 1
        band.title, band.low_hz, band.high_hz = f"Band {number}", 100.0, 200.0
        settings.active_band_index = len(settings.bands) - 1
        return {"FINISHED"}


class LATENTWALK_OT_band_remove(bpy.types.Operator):
    """Remove the selected band and its curve; the other bands keep theirs"""

    bl_idname = "latentwalk.band_remove"
    bl_label = "Remove Band"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        settings = context.scene.latentwalk
        return 0 <= settings.active_band_index < len(settings.bands)

    def execute(self, context):
        scene = context.scene
        settings = scene.latentwalk
        index = settings.active_band_index
        curves.remove_band_curve(scene, index, len(settings.bands))
        settings.bands.remove(index)
        settings.active_band_index = min(index, len(settings.bands) - 1)
        return {"FINISHED"}


class LATENTWALK_OT_bands_default(bpy.types.Operator):
    """Fill an empty band list with the default musician bands (sub, bass, mids...)"""

    bl_idname = "latentwalk.bands_default"
    bl_label = "Default Bands"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return len(context.scene.latentwalk.bands) == 0

    def execute(self, context):
        context.scene.latentwalk.ensure_default_bands()
        return {"FINISHED"}


classes = (
    LATENTWALK_OT_bake,
    LATENTWALK_OT_show_curves,
    LATENTWALK_OT_band_add,
    LATENTWALK_OT_band_remove,
    LATENTWALK_OT_bands_default,
)
