"""Operators: bake (in the UI a job of jobs.py, see bake_job.py), show curves, and editing the band list."""

import json
import os
from dataclasses import dataclass, field

import bpy
from bpy.props import BoolProperty, EnumProperty

from . import (bake_job, bake_state, compat, curves, engine_client, jobs, output, preferences, sections, sequencer,
               worker_client)
from ..engine.analysis import timing
from ..engine.analysis.bands import DEFAULT_BANDS, Band, check_bands
from ..engine.errors import LatentWalkError
from ..engine.analysis.features import PITCH_CLASSES
from ..engine.walk.prompts import marker_prompt


def _band_settings(settings):
    """The bands to analyse: the scene's, or the defaults for a scene with none (added on success)."""
    if len(settings.bands):
        return [{"name": b.title, "low_hz": b.low_hz, "high_hz": b.high_hz, "gain": b.gain,
                 "threshold": b.threshold, "attack_ms": b.attack_ms, "release_ms": b.release_ms,
                 "source": band_source(b)}
                for b in settings.bands]
    defaults = settings.bl_rna.properties["bands"].fixed_type.bl_rna.properties
    return [{"name": b.name, "low_hz": b.low_hz, "high_hz": b.high_hz, "gain": defaults["gain"].default,
             "threshold": defaults["threshold"].default, "attack_ms": defaults["attack_ms"].default,
             "release_ms": defaults["release_ms"].default, "source": b.source} for b in DEFAULT_BANDS]


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
    bands = _band_settings(settings)
    check_bands([Band(b["name"], b["low_hz"], b["high_hz"]) for b in bands])
    return {
        "audio": audio_path,
        "fps": scene.render.fps,
        "fps_base": scene.render.fps_base,
        "offset_ms": settings.offset_ms,
        "normalise": settings.normalise,
        "normalise_window_s": settings.normalise_window_s,
        "onset_source": _source(settings.onset_source, settings.onset_stem_path, "the onset curve"),
        "chroma_source": _source(settings.chroma_source, settings.chroma_stem_path, "the chroma"),
        "bands": bands,
    }


@dataclass
class BakeResult:
    """What a bake did, for its report.

    written: targets re-baked; kept: edited targets kept; retimed: labels of kept curves
    moved to the new timing; not_retimed: phrases saying what could not be; kept_markers: how many section
    and drop markers the artist changed were kept (None: the bake placed them, or does not place any).
    """

    written: list
    kept: list
    retimed: list = field(default_factory=list)
    not_retimed: list = field(default_factory=list)
    frame_range_note: str = ""
    playback_note: str = ""  # the scene's playback settings the bake changed, said once
    kept_markers: int = None

    def messages(self):
        """One line per thing the artist should know, beyond the summary."""
        lines = []
        if self.kept:
            lines.append(f"kept {len(self.kept)} curve(s) edited by hand: " + ", ".join(t.label for t in self.kept))
        if self.kept_markers is not None:
            lines.append("kept the section and drop markers as you changed them "
                         + (f"({self.kept_markers} marker(s))" if self.kept_markers else "(you removed them all)"))
        if self.retimed:
            lines.append("retimed to the new timing: " + ", ".join(self.retimed))
        lines += [f"not retimed: {phrase}" for phrase in self.not_retimed]
        if self.frame_range_note:
            lines.append(self.frame_range_note)
        if self.playback_note:
            lines.append(self.playback_note)
        return lines


def _retime_kept_animation(scene, frame_map, rewritten_keys, structure_markers_kept=False):
    """Retime every F-curve on scene.latentwalk.* the bake does not rewrite, prompt markers, and the section and
    drop markers when the bake keeps them (``structure_markers_kept``).

    Returns (labels retimed, phrases for what could not be).
    """
    settings = scene.latentwalk
    retimed, problems = [], []
    for fcurves in compat.fcurve_collections(scene):
        for fcurve in fcurves:
            key = f"{fcurve.data_path}[{fcurve.array_index}]"
            if not fcurve.data_path.startswith("latentwalk.") or key in rewritten_keys:
                continue
            label = curves.curve_label(settings, fcurve.data_path, fcurve.array_index)
            before = curves.fingerprint(fcurve)
            problems += [f"{label}: {p}" for p in curves.retime_fcurve(fcurve, frame_map)]
            retimed.append(label)
            recorded = curves.load_fingerprints(settings)
            if recorded.get(key) == before:  # an unedited curve (a locked band) stays unedited
                recorded[key] = curves.fingerprint(fcurve)
                settings.baked_fingerprints = json.dumps(recorded, sort_keys=True)
    for driver_curve in scene.animation_data.drivers if scene.animation_data else []:
        expression = driver_curve.driver.expression if driver_curve.driver.type == "SCRIPTED" else ""
        if driver_curve.data_path.startswith("latentwalk.") and "frame" in expression:
            problems.append(f"the driver on {curves.curve_label(settings, driver_curve.data_path)} uses the frame "
                            f"number ({expression}): left as it is")
    markers = [m for m in scene.timeline_markers if marker_prompt(m.name) is not None]
    beats = [] if settings.add_beat_markers else [m for m in scene.timeline_markers  # else the bake remakes them
                                                   if m.name == sequencer.BEAT_MARKER_NAME]
    for marker in markers + beats:
        marker.frame = int(round(float(frame_map(marker.frame))))
    if markers:
        retimed.append(f"{len(markers)} prompt marker(s)")
    if beats:
        retimed.append(f"{len(beats)} beat marker(s)")
    if structure_markers_kept:
        count = sections.retime_markers(scene, frame_map)
        if count:
            retimed.append(f"{count} section and drop marker(s)")
    return retimed, problems


_ARTIST_RANGE, _FIT_OFF = -1, -2  # recorded instead of a fitted end frame


def bake(scene, overwrite_edited=False, python=None):
    """Analyse the scene's song and write its curves, blocking (scripts, background mode, the headless
    scripts); returns a `BakeResult`. Nothing in the scene changes if the analysis fails.
    """
    request = build_request(scene)
    if python is None:
        python = engine_client.engine_python(preferences.get().engine_python)
    features = engine_client.analyze(request, python)  # may raise: nothing written yet
    return write_features(scene, request, features, overwrite_edited)


def write_features(scene, request, features, overwrite_edited=False, overwrite_keys=None):
    """Write the curves of ``features`` (the analysis of ``request``) into ``scene``; returns a `BakeResult`.

    Nothing in the scene changes if the features do not fit the request. Curves the artist edited are
    kept (unless ``overwrite_edited``; then only those of ``overwrite_keys`` when given: the curves the
    dialog listed, not ones edited while the bake ran) and, when the frame rate or the song's start
    changed since the last bake, retimed so their keys stay at the same time in the song.
    """
    settings = scene.latentwalk
    try:
        features.check_shapes()
    except ValueError as error:
        raise LatentWalkError(f"the engine returned unusable features ({error}); nothing was changed.") from None
    if len(features.band_names) != len(request["bands"]):
        raise LatentWalkError("the engine returned a different number of bands; nothing was changed.")

    settings.ensure_default_bands()
    settings.ensure_default_classes()
    while len(settings.chroma) < len(PITCH_CLASSES):
        settings.chroma.add().name = PITCH_CLASSES[len(settings.chroma)]
    settings.name = "Song"  # the Graph Editor names a curve "Onset (Song)" after it, not "Onset ()"
    before = bake_state.recorded(settings) if bake_state.is_baked(settings) else None
    song_changed = before is None or not bake_state.is_baked_song(before, settings.audio_path)
    targets = curves.targets_for(settings, features)
    edited = [t for t in curves.edited_targets(scene, targets) if not t.locked]
    if overwrite_edited:
        edited = [] if overwrite_keys is None else [t for t in edited if t.key not in overwrite_keys]
    kept = edited
    # The section and drop markers: replaced while they are what the last bake placed, else kept (and retimed).
    markers_edited = sections.markers_edited(scene)
    if overwrite_edited and (overwrite_keys is None or sections.MARKERS_KEY in overwrite_keys):
        markers_edited = False
    place_markers = settings.add_section_markers and not markers_edited
    strip = sequencer.ensure_sound_strip(scene, request["audio"], features.n_frames)
    first_frame = int(strip.frame_start) if strip is not None else scene.frame_start
    kept_keys = {t.key for t in kept}
    rewritten = {t.key for t in targets if not t.locked and t.key not in kept_keys}
    result = BakeResult(written=[], kept=kept)
    frame_map = None
    if before is not None:
        ratio = bake_state.rate(scene.render.fps, scene.render.fps_base) / bake_state.rate(before["fps"], before["fps_base"])
        frame_map = curves.FrameMap(before["song_start"], first_frame, ratio)
        if frame_map.is_identity:
            frame_map = None
        else:
            result.retimed, result.not_retimed = _retime_kept_animation(scene, frame_map, rewritten,
                                                                        structure_markers_kept=not place_markers)
    result.written = curves.write_bake(scene, targets, first_frame, skip_keys=kept_keys)
    if settings.add_beat_markers:
        sequencer.set_beat_markers(scene, features.beats, first_frame)
    if place_markers:
        sections.place_markers(scene, features, first_frame)
    elif settings.add_section_markers:
        result.kept_markers = len(sections.structure_markers(scene))
    # A look per label: the song's, and those of the section markers on the timeline (kept ones included).
    sections.ensure_looks(settings, (list(features.section_labels) if sections.has_structure(features) else [])
                          + [label for _frame, label in sections.section_markers(scene)])
    song_end = first_frame + features.n_frames - 1
    # Fit Frame Range fits on the first bake, for a new song, and while the range is still the fitted one;
    # a range the artist set is kept (and retimed with the curves).
    fitted_before = before.get("fitted_end", _FIT_OFF) if before is not None else _FIT_OFF
    range_is_artists = before is not None and fitted_before != _FIT_OFF and scene.frame_end != fitted_before
    if settings.fit_frame_range and (song_changed or not range_is_artists):
        scene.frame_end = fitted_end = song_end
    else:
        fitted_end = _ARTIST_RANGE if settings.fit_frame_range else _FIT_OFF
        if frame_map is not None:
            start = int(round(float(frame_map(scene.frame_start))))
            end = int(round(float(frame_map(scene.frame_end + 1)))) - 1
            scene.frame_start, scene.frame_end = start, max(start, end)
            result.frame_range_note = f"the frame range was retimed to {start}-{scene.frame_end}"
    result.playback_note = follow_the_song(scene)
    bake_state.record(scene, first_frame, fitted_end)
    settings.last_bake_summary = (
        f"{features.n_frames} frames from {first_frame} at "
        f"{bake_state.format_rate(scene.render.fps, scene.render.fps_base)}, {len(result.written)} curves, "
        f"{len(features.beats)} beats{_sections_summary(features)}"
        + ("" if strip is not None else " (this Blender build has no audio: song not added to the sequencer)")
    )
    return result


def _sections_summary(features):
    """', 3 section(s) (A B A), 1 drop(s)', or '' for features without the song's structure."""
    if not sections.has_structure(features):
        return ""
    labels = list(features.section_labels)
    shown = " ".join(labels[:8]) + (" ..." if len(labels) > 8 else "")
    return f", {len(labels)} section(s) ({shown}), {len(features.drops)} drop(s)"


def follow_the_song(scene):
    """Make playback keep to the song (Sync to Audio: frames drop rather than the music drifting) and scrubbing
    play it, as the tutorial's listening to the curves needs; returns the sentence saying what changed ("" when
    both were set already: a bake that changes nothing says nothing)."""
    changed = []
    if scene.sync_mode != "AUDIO_SYNC":
        scene.sync_mode = "AUDIO_SYNC"
        changed.append("Sync to Audio")
    if not scene.use_audio_scrub:
        scene.use_audio_scrub = True
        changed.append("Scrubbing on")
    return f"Playback set to {' and '.join(changed)}, so the picture follows the song" if changed else ""


def bake_if_stale(scene, audio_path=None):
    """Headless: re-bake when the bake does not match the scene (or ``audio_path``); returns lines to print."""
    found = bake_state.changes(scene, audio_path)
    if not found:
        return []
    if audio_path is not None:
        scene.latentwalk.audio_path = audio_path
    result = bake(scene)
    return ([f"baking: {'; '.join(found)}"]
            + [f"baked {len(result.written)} curves: {scene.latentwalk.last_bake_summary}"] + result.messages())


CANCELLED_BAKE = "Bake cancelled: the curves are as they were."


def finish_bake(job, overwrite_edited=False, overwrite_keys=None):
    """Write the curves a finished `bake_job.BakeJob` brought back; returns (scene, `BakeResult`), or None when
    it was cancelled. Raises LatentWalkError, nothing written, when the analysis failed, or the scene is gone
    or asks for another analysis now."""
    features = job.features()
    if features is None:
        return None
    scene = job.scene()
    if scene is None:
        raise LatentWalkError(f"the scene '{job.scene_name}' was deleted or renamed while it baked: nothing was "
                              "written.")
    try:
        unchanged = build_request(scene) == job.request
    except LatentWalkError:
        unchanged = False
    if not unchanged:  # the curves would not be of the song and settings the panel shows
        raise LatentWalkError("the song or the analysis settings changed while the bake ran: nothing was "
                              "changed; press Bake Curves again.")
    return scene, write_features(scene, job.request, features, overwrite_edited, overwrite_keys)


class LATENTWALK_OT_bake(jobs.JobOperator, bpy.types.Operator):
    """Analyse the song and bake its bands, onset, loudness and chroma into editable F-curves. Esc cancels; the curves stay as they were"""

    bl_idname = "latentwalk.bake"
    bl_label = "Bake Curves"
    bl_options = {"UNDO"}  # not REGISTER: Adjust Last Operation would re-run it blocking, without Esc

    overwrite_edited: BoolProperty(
        name="Overwrite Edited Curves",
        description="Replace curves edited by hand since the last bake (locked bands are always kept)",
        default=False,
        options={"SKIP_SAVE"},  # never remembered: every bake asks again before replacing edits
    )

    @classmethod
    def poll(cls, context):
        # One job at a time: a render would sample the curves this rewrites, and the jobs share the status bar.
        return not jobs.busy()

    def invoke(self, context, event):
        scene = context.scene
        edited = [t for t in curves.edited_targets(scene, curves.targets_for(scene.latentwalk)) if not t.locked]
        markers = scene.latentwalk.add_section_markers and sections.markers_edited(scene)
        if (edited or markers) and not self.overwrite_edited:
            self._edited_labels = [edited_description(scene, t) for t in edited]
            self._markers_edited = markers
            return context.window_manager.invoke_props_dialog(self, width=420)
        return self.execute(context)

    def draw(self, context):
        layout = self.layout
        labels = getattr(self, "_edited_labels", [])
        markers = getattr(self, "_markers_edited", False)
        if markers:
            curves_too = f"{len(labels)} curve(s) and the" if labels else "The"
            layout.label(text=f"{curves_too} section markers were edited by hand since the last bake:", icon="INFO")
            labels = [sections.MARKERS_LABEL] + labels
        else:
            layout.label(text=f"{len(labels)} curve(s) were edited by hand since the last bake:", icon="INFO")
        column = layout.column(align=True)
        for label in labels[:8]:
            column.label(text=label)
        if len(labels) > 8:
            column.label(text=f"... and {len(labels) - 8} more")
        layout.prop(self, "overwrite_edited", text="Overwrite Edited Curves and Markers" if markers
                    else "Overwrite Edited Curves (their keys and modifiers)")
        layout.label(text="Unticked: they are kept" + (" and retimed" if bake_state.changes(context.scene) else ""))

    def execute(self, context):
        if self.options.is_invoke and not bpy.app.background:
            # A click (after the dialog, if it showed): the analysis runs in a worker, Blender stays usable.
            return self.run_modal(context)
        try:  # scripts and background mode: blocking, as they always were
            result = bake(context.scene, self.overwrite_edited)
        except LatentWalkError as error:
            self.report({"ERROR"}, f"Latent Walk: {error}")
            return {"CANCELLED"}
        self._report_bake(context.scene, result)
        return {"FINISHED"}

    def start_job(self, context):
        request = build_request(context.scene)  # bad settings are reported before anything starts
        python = worker_client.worker_python(preferences.get().engine_python)
        # Overwrite replaces the curves edited when it was ticked; edits made while the bake runs are kept.
        self._overwrite_keys = {t.key for t in curves.edited_targets(context.scene, curves.targets_for(
            context.scene.latentwalk)) if not t.locked}
        if sections.markers_edited(context.scene):
            self._overwrite_keys.add(sections.MARKERS_KEY)
        return bake_job.BakeJob(context.scene, request, python)

    def end_job(self, context, job):
        # raises LatentWalkError: nothing written
        finished = finish_bake(job, self.overwrite_edited, getattr(self, "_overwrite_keys", None))
        if finished is None:
            self.report({"INFO"}, f"Latent Walk: {CANCELLED_BAKE}")
            return {"CANCELLED"}
        self._report_bake(*finished)
        return {"FINISHED"}

    def press_escape(self, job):
        if job.cancel_requested:
            job.kill()  # a worker still starting (imports under load) ends now
        else:
            job.cancel()

    def escape_hint(self, job):
        return jobs.ESC_AGAIN_HINT if job.cancel_requested else jobs.ESC_HINT

    def _report_bake(self, scene, result):
        notes = result.messages()
        summary = f"Baked {len(result.written)} curves: {scene.latentwalk.last_bake_summary}"
        if result.kept or result.not_retimed or result.kept_markers is not None:
            self.report({"WARNING"}, f"{summary}; " + "; ".join(notes)
                        + ("" if not (result.kept or result.kept_markers is not None)
                           else " (tick Overwrite Edited Curves to replace them)"))
        else:
            self.report({"INFO"}, "; ".join([summary] + notes))


class LATENTWALK_OT_bake_cancel(jobs.CancelJobOperator, bpy.types.Operator):
    """Stop the bake; the curves stay as they were"""

    bl_idname = "latentwalk.bake_cancel"
    bl_label = "Cancel Bake"
    job_kind = "bake"


def edited_description(scene, target):
    """What Overwrite Edited Curves replaces on one curve: "Bass (60-250 Hz): keys, Noise modifier"."""
    fcurve = compat.find_fcurve(scene, target.data_path, target.index)
    modifiers = curves.modifier_names(fcurve) if fcurve is not None else []
    return f"{target.label}: keys" + "".join(f", {name} modifier" for name in modifiers)


def our_fcurves(scene):
    """The scene's F-curves that drive scene.latentwalk.*."""
    return [fc for fc in compat.fcurves_of(scene) or [] if fc.data_path.startswith("latentwalk.")]


def show_only_curve(scene, shown):
    """Make ``shown`` the one visible, selected F-curve of the scene (the others hidden, Alt+H shows them);
    returns how many were hidden. Keys keep their selection: the bake leaves them unselected."""
    hidden = 0
    for fcurve in compat.fcurves_of(scene) or []:
        is_shown = fcurve == shown
        fcurve.hide, fcurve.select = not is_shown, is_shown
        hidden += not is_shown
    if shown.group is not None:  # a collapsed "Latent Walk" group would hide its name in the channel list
        shown.group.show_expanded_graph = True
    return hidden


def active_curve(scene):
    """The F-curve Show Curves shows: the active band's, else the first baked one (None before a bake)."""
    settings = scene.latentwalk
    if 0 <= settings.active_band_index < len(settings.bands):
        fcurve = compat.find_fcurve(scene, f"latentwalk.bands[{settings.active_band_index}].value")
        if fcurve is not None:
            return fcurve
    return next(iter(our_fcurves(scene)), None)


# A Graph Editor of working size takes at least this share of the window's width and of its height:
# a 0..1 curve over a whole song is readable there, and its sidebar has its default width.
WORKING_SHARE = 0.4


def is_working_size(area, window, screen):
    # The bpy module's window reports no size; its screen's areas have one.
    width = window.width or max(a.x + a.width for a in screen.areas)
    height = window.height or max(a.y + a.height for a in screen.areas)
    return area.width >= WORKING_SHARE * width and area.height >= WORKING_SHARE * height


class LATENTWALK_OT_show_curves(bpy.types.Operator):
    """Show the active band's curve in a Graph Editor of working size, framed, the other curves hidden"""

    bl_idname = "latentwalk.show_curves"
    bl_label = "Show Curves"

    def execute(self, context):
        scene = context.scene
        shown = active_curve(scene)
        if shown is None:
            self.report({"WARNING"}, "Latent Walk: nothing is baked yet; press Bake Curves first.")
            return {"CANCELLED"}
        if context.window is None or context.screen is None:
            self.report({"WARNING"}, "Latent Walk: Show Curves needs a Blender window.")
            return {"CANCELLED"}
        area = _graph_editor_area(context)
        hidden = show_only_curve(scene, shown)
        region = next(r for r in area.regions if r.type == "WINDOW")
        with context.temp_override(window=context.window, screen=context.screen, area=area, region=region):
            bpy.ops.graph.view_all()
        label = curves.curve_label(scene.latentwalk, shown.data_path, shown.array_index)
        self.report({"INFO"}, f"Latent Walk: showing {label}; Alt+H over the Graph Editor shows the other "
                              f"{hidden} curves.")
        return {"FINISHED"}


def _graph_editor_area(context):
    """A Graph Editor of working size: this one or another one already open, else half of the screen's
    largest area (see `_split_for_graph_editor`). Small editors such as the Timeline are never turned into it."""
    window, screen = context.window, context.screen
    graphs = [a for a in screen.areas if a.type == "GRAPH_EDITOR" and is_working_size(a, window, screen)]
    graphs.sort(key=lambda a: (a != context.area, a.ui_type != "FCURVES"))  # this one, then curves over drivers
    if graphs:
        area = graphs[0]
    else:
        largest = max(screen.areas, key=lambda a: a.width * a.height)
        direction = _split_for_graph_editor(largest, window, screen)
        before = {a.as_pointer() for a in screen.areas}
        with context.temp_override(window=window, screen=screen, area=largest):
            split = bpy.ops.screen.area_split(direction=direction, factor=0.5)
        added = [a for a in screen.areas if a.as_pointer() not in before]
        # The split adds the bottom (or left) half; its size is set when the screen next refreshes.
        area = added[0] if split == {"FINISHED"} and added else largest
    area.type = "GRAPH_EDITOR"
    area.ui_type = "FCURVES"
    return area


def _split_for_graph_editor(area, window, screen):
    """How to halve ``area`` for the Graph Editor: "HORIZONTAL" (the curves below, on the same time line as a
    Sequencer above, as in Blender's Animation workspace) when the bottom half is of working size, else
    "VERTICAL" (the curves on the left, Blender's new half) when that half is. Blender's Video Editing workspace needs
    the second: its Sequencer is under half the window's height, so its bottom half would be a strip."""
    width = window.width or max(a.x + a.width for a in screen.areas)
    height = window.height or max(a.y + a.height for a in screen.areas)

    def share_of_window(half_width, half_height):
        return min(half_width / width, half_height / height)

    below = share_of_window(area.width, area.height / 2)
    beside = share_of_window(area.width / 2, area.height)
    return "HORIZONTAL" if below >= WORKING_SHARE or below >= beside else "VERTICAL"


class LATENTWALK_OT_choose_song(bpy.types.Operator):
    """Choose the song: a file browser that shows sound files only"""

    bl_idname = "latentwalk.choose_song"
    bl_label = "Choose Song"
    bl_options = {"REGISTER", "UNDO"}

    filepath: bpy.props.StringProperty(subtype="FILE_PATH", options={"SKIP_SAVE"})
    # The file browser reads these: sound files (wav, flac, ogg, mp3, ...) and folders only.
    filter_sound: BoolProperty(default=True, options={"HIDDEN", "SKIP_SAVE"})
    filter_folder: BoolProperty(default=True, options={"HIDDEN", "SKIP_SAVE"})
    relative_path: BoolProperty(name="Relative Path", description="Store the song's path relative to the .blend",
                                default=True)

    def invoke(self, context, event):
        current = context.scene.latentwalk.audio_path
        if current:
            self.filepath = bpy.path.abspath(current)
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        path = self.filepath
        if not os.path.isfile(path):
            self.report({"ERROR"}, f"Latent Walk: no song file at '{path}': choose a sound file.")
            return {"CANCELLED"}
        if self.relative_path:
            path = output.relative_to_blend(path)
        context.scene.latentwalk.audio_path = path
        return {"FINISHED"}


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
    """Remove the selected band with its curves and drivers; the other bands keep theirs"""

    bl_idname = "latentwalk.band_remove"
    bl_label = "Remove Band"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        settings = context.scene.latentwalk
        return 0 <= settings.active_band_index < len(settings.bands)

    def execute(self, context):
        settings = context.scene.latentwalk
        index = settings.active_band_index
        orphaned = curves.remove_band(context.scene, index)
        settings.active_band_index = min(index, len(settings.bands) - 1)
        if orphaned:
            self.report({"WARNING"}, "Latent Walk: " + "; ".join(orphaned))
        return {"FINISHED"}


class LATENTWALK_OT_band_move(bpy.types.Operator):
    """Move the selected band up or down the list; its curves and drivers go with it"""

    bl_idname = "latentwalk.band_move"
    bl_label = "Move Band"
    bl_options = {"REGISTER", "UNDO"}

    direction: EnumProperty(items=(("UP", "Up", ""), ("DOWN", "Down", "")))

    @classmethod
    def poll(cls, context):
        settings = context.scene.latentwalk
        return 0 <= settings.active_band_index < len(settings.bands) and len(settings.bands) > 1

    def execute(self, context):
        settings = context.scene.latentwalk
        index = settings.active_band_index
        new_index = index - 1 if self.direction == "UP" else index + 1
        if not 0 <= new_index < len(settings.bands):
            return {"CANCELLED"}
        curves.move_band(context.scene, index, new_index)
        settings.active_band_index = new_index
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
    LATENTWALK_OT_bake_cancel,
    LATENTWALK_OT_show_curves,
    LATENTWALK_OT_choose_song,
    LATENTWALK_OT_band_add,
    LATENTWALK_OT_band_remove,
    LATENTWALK_OT_band_move,
    LATENTWALK_OT_bands_default,
)
